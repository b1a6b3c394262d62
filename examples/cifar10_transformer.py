"""A small Vision Transformer on real CIFAR-10 with GFMJump (``--dataset digits`` runs offline).

    python examples/cifar10_transformer.py --data-dir ~/data
    python examples/cifar10_transformer.py --dataset digits --epochs 4 --limit 300 --forecaster linear

The model: non-overlapping patches (4x4 on CIFAR-10, 2x2 on 8x8 digits), a class token,
learned positions, pre-norm Transformer blocks, a linear head. AdamW. ``--data-dir`` must hold
torchvision's ``cifar-10-batches-py``; nothing is downloaded.
"""

import argparse

import torch
from torch import nn

from _common import add_common_arguments, evaluate, fit, get_forecaster, load_data, periodic_schedule, print_summary
from gfm_accel import GFMJump


class ViT(nn.Module):
    def __init__(self, channels: int, side: int, patch: int, dim: int = 64, depth: int = 2, heads: int = 4, classes: int = 10):
        super().__init__()
        self.patch = patch
        tokens = (side // patch) ** 2
        self.embed = nn.Linear(channels * patch * patch, dim)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, tokens + 1, dim) * 0.02)
        block = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.0, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(block, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, classes)
        b, c, h, w = x.shape
        p = self.patch
        t = x.unfold(2, p, p).unfold(3, p, p).permute(0, 2, 3, 1, 4, 5).reshape(b, (h // p) * (w // p), c * p * p)
        t = torch.cat([self.cls.expand(b, -1, -1), self.embed(t)], dim=1) + self.pos
        return self.head(self.norm(self.blocks(t))[:, 0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=("cifar10", "digits"), default="cifar10")
    parser.add_argument("--data-dir", default=None, help="folder holding cifar-10-batches-py")
    parser.add_argument("--batch-size", type=int, default=128)
    add_common_arguments(parser, epochs=15)
    args = parser.parse_args()

    data = load_data(args.dataset, args.data_dir, args.limit)
    channels, side = data["x_train"].shape[1], data["x_train"].shape[-1]
    print(f"{args.dataset}: {len(data['x_train'])} train / {len(data['x_guard'])} guard / {len(data['x_val'])} val images")
    torch.manual_seed(args.seed)
    model = ViT(channels, side, patch=4 if side >= 32 else 2, dim=64 if side >= 32 else 32)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)

    jump = GFMJump(get_forecaster(args.forecaster), **periodic_schedule(args.epochs))
    gx, gy = data["x_guard"][:1000], data["y_guard"][:1000]
    jump.attach(model, optimizer, eval_fn=lambda m: evaluate(m, gx, gy)[0], total=args.epochs)
    vl, va, secs = fit(model, optimizer, data, args.epochs, args.batch_size, jump=jump, seed=args.seed)
    print_summary(jump.history, vl, va, secs)


if __name__ == "__main__":
    main()
