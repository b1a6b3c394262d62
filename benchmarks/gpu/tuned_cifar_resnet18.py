"""Tuned comparison on CIFAR-10 with a ResNet-18: does any method reach the tuned baseline's
target sooner than plain SGD at its tuned lr with warmup + cosine? (Issue 14; GPU.)

Real data only: ``--data-dir`` is torchvision's CIFAR-10 folder (holding
``cifar-10-batches-py``), read with ``download=False``. The 10,000 test images are the
validation split the target is measured on; 2,000 fixed training images are the jump guard's
(``gfm_accel.lab.datasets.load_split``, through ``ResNetTask``).
Model: torchvision's ``resnet18(num_classes=10)`` with the usual CIFAR stem (3x3 stride-1
first convolution, no max-pool): 11.2M parameters. Recipe: SGD (Nesterov momentum 0.9, weight
decay 5e-4), batch 256, lr grid centred on 0.1, 3900 steps (20 epochs), warmup 5% + cosine.

    python benchmarks/gpu/tuned_cifar_resnet18.py --data-dir ~/data/cifar10 --out benchmarks/results/accel_tuned/gpu_cifar_resnet18

``--tiny --dataset digits`` is the CPU smoke run (sklearn digits, a small ResNet, a few steps).
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _tuned import add_args, compare  # noqa: E402

from gfm_accel.lab.tasks.resnet import ResNetTask  # noqa: E402


@dataclass
class CifarResNet18(ResNetTask):
    """:class:`ResNetTask` with torchvision's ResNet-18 (CIFAR stem) as the model."""

    name: str = "cifar10_resnet18"

    def make_model(self) -> nn.Module:
        from torchvision.models import resnet18

        model = resnet18(num_classes=self.splits().classes)
        model.conv1 = nn.Conv2d(self.splits().x_train.shape[1], 64, 3, 1, 1, bias=False)
        model.maxpool = nn.Identity()
        return model


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_args(parser)
    parser.add_argument("--data-dir", default=None, help="CIFAR-10 folder (holding cifar-10-batches-py); never downloaded")
    parser.add_argument("--dataset", choices=("cifar10", "digits"), default="cifar10")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.dataset == "cifar10" and args.data_dir is None:
        parser.error("--data-dir is required for cifar10 (the real files; nothing is downloaded)")
    if args.tiny:
        workload = ResNetTask(name=f"{args.dataset}_resnet_tiny", dataset=args.dataset, data_dir=args.data_dir,
                              width=8, blocks=(1, 1, 1), total_steps=8, batch_size=32, eval_batch_size=256)
    else:
        workload = CifarResNet18(dataset=args.dataset, data_dir=args.data_dir, lr=0.1, total_steps=3900,
                                 batch_size=256, eval_batch_size=1000)
    return compare(workload, args)


if __name__ == "__main__":
    main()
