"""The ``gfm-accel`` command line (also ``python -m gfm_accel``).

Subcommands are imported lazily so ``gfm-accel --help`` is instant and a subcommand's
heavy dependencies load only when it runs. Each subcommand module exposes
``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

__all__ = ["main", "COMMANDS"]

#: name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("gfm_accel.lab.generate.cli", "generate the paper's trajectory datasets"),
    "train": ("gfm_accel.forecast.train_cli", "train a GFM forecaster on trajectory files"),
    "forecast": ("gfm_accel.forecast.forecast_cli", "forecast w_m from the prefixes in a trajectory file"),
    "bench": ("gfm_accel.lab.bench.cli", "run a benchmark (table1, table3, table4, sensitivity, mlp, cifar, accel)"),
    "zoo": ("gfm_accel.lab.zoo_tuned", "build the forecaster's trajectory zoo (--tuned: at tuned learning rates)"),
    "demo": ("gfm_accel.lab.demo", "train a model plainly and with GFMJump, side by side"),
    "info": ("gfm_accel.info", "print versions and the shipped forecaster's metadata"),
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="gfm-accel", description="Gradient Flow Matching training accelerator.")
    parser.add_argument("--version", action="version", version=f"gfm_accel {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = next((a for a in argv if a in COMMANDS), None)
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        if name == wanted:
            importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not args.command:
        parser.print_help()
        return 0
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args) or 0)
    except (ValueError, FileNotFoundError) as exc:
        # User errors get one clear line, not a traceback.
        print(f"gfm-accel {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        # An optional extra is missing (scikit-learn, mnist1d, matplotlib, tqdm, ...).
        print(f"gfm-accel {args.command}: error: {exc}. Install the extras: pip install 'gfm_accel[all]'",
              file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
