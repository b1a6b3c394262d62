"""``gfm-accel info``: versions and environment, the quickest real command."""

from __future__ import annotations

import argparse
import platform

__all__ = ["machine_line", "add_arguments", "run"]


def machine_line() -> str:
    """One line naming the CPU, threads and torch version (recorded beside results)."""
    import os

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{cpu}; {os.cpu_count()} cores; torch {torch.__version__} with {torch.get_num_threads()} threads; "
        f"python {platform.python_version()}"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    from . import __version__

    print(f"gfm_accel {__version__}")
    print(machine_line())
    from .pretrained import PRETRAINED_PATH, pretrained_forecaster

    try:
        f = pretrained_forecaster()
    except (FileNotFoundError, ValueError) as exc:
        print(f"shipped forecaster: unavailable ({exc})")
        return 0
    prov = f.provenance
    zoo = prov.get("zoo") or {}
    print(f"shipped forecaster: {PRETRAINED_PATH.name} ({PRETRAINED_PATH.stat().st_size} bytes), {f!r}")
    print(f"  trained on {zoo.get('trajectories', '?')} zoo trajectories ({', '.join(zoo.get('files', []))}) "
          f"by `{prov.get('command')}` in {prov.get('fit_seconds', '?')} s")
    return 0
