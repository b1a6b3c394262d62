"""Shared benchmark plumbing: the result record, provenance and file writing.

Every benchmark run writes ``<out>/results.json`` and ``<out>/table.md`` (plus figures),
where ``<out>`` defaults to ``benchmarks/results/<name>/``. ``results.json`` has this
schema (checked by ``tests/lab/bench/test_paper_benchmarks.py``)::

    {
      "benchmark": str,            # e.g. "table1"
      "schema_version": 1,
      "command": str,              # the exact command line
      "git_commit": str | null,
      "machine": str,              # CPU, cores, torch version and threads
      "seeds": [int, ...],
      "quick": bool,
      "config": {...},             # everything that defines the run
      "wall_time_s": float,
      "results": {...},            # benchmark-specific numbers
      "figures": [str, ...]        # file names beside results.json
    }
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...info import machine_line

__all__ = [
    "BenchResult", "write_result", "write_script_result", "git_commit", "atomic_write_text", "SCHEMA_VERSION",
    "RESULT_KEYS",
]

SCHEMA_VERSION = 1
RESULT_KEYS = (
    "benchmark", "schema_version", "command", "git_commit", "machine", "seeds", "quick", "config",
    "wall_time_s", "results", "figures",
)


@dataclass
class BenchResult:
    """What a benchmark returns to the harness.

    Attributes:
        results: benchmark-specific numbers (JSON-able).
        table_md: the Markdown table(s), ours beside the paper's numbers where they exist.
        config: the configuration that defines the run (JSON-able).
        seeds: seeds used.
        figures: paths of figures written into the output folder.
    """

    results: dict[str, Any]
    table_md: str
    config: dict[str, Any] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file beside it and a rename (never half-written)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent, timeout=10)
        commit = out.stdout.strip() or None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True,
                               cwd=Path(__file__).parent, timeout=10).stdout.strip()
        return f"{commit}{'+dirty' if dirty and commit else ''}" if commit else None
    except (OSError, subprocess.SubprocessError):
        return None


def write_result(name: str, result: BenchResult, out_dir: Path, *, quick: bool, wall_time_s: float,
                 command: str | None = None, commit: str | None = None) -> Path:
    """Write results.json and table.md into ``out_dir``; returns the results.json path.

    ``commit`` should be taken when the run starts (:func:`git_commit`): HEAD may move
    during a long run. Without it the commit is read now.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    command = command or " ".join(["gfm-accel", *sys.argv[1:]]) if Path(sys.argv[0]).name in ("gfm-accel", "__main__.py") else " ".join(sys.argv)
    record = {
        "benchmark": name,
        "schema_version": SCHEMA_VERSION,
        "command": command,
        "git_commit": commit or git_commit(),
        "machine": machine_line(),
        "seeds": list(result.seeds),
        "quick": bool(quick),
        "config": result.config,
        "wall_time_s": round(float(wall_time_s), 2),
        "results": result.results,
        "figures": [Path(f).name for f in result.figures],
    }
    path = out_dir / "results.json"
    atomic_write_text(path, json.dumps(record, indent=2, sort_keys=False, default=float) + "\n")
    header = (
        f"# {name}{' (quick)' if quick else ''}\n\n"
        f"- command: `{record['command']}`\n- git commit: `{record['git_commit']}`\n"
        f"- machine: {record['machine']}\n- seeds: {record['seeds']}\n- wall time: {record['wall_time_s']:.1f} s\n\n"
    )
    atomic_write_text(out_dir / "table.md", header + result.table_md.rstrip() + "\n")
    return path


def write_script_result(out_dir: str | Path, lines: list[str], record: dict[str, Any]) -> None:
    """Write what a ``benchmarks/*.py`` script found: ``output.txt`` and ``results.json`` in ``out_dir``.

    ``output.txt`` is the printed ``lines`` under the exact command; ``results.json`` is
    ``{"command", **record, "machine"}``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cmd = "OMP_NUM_THREADS=1 .venv/bin/python " + " ".join(sys.argv)
    (out / "output.txt").write_text(f"# command: {cmd}\n" + "\n".join(lines) + "\n")
    (out / "results.json").write_text(json.dumps({"command": cmd, **record, "machine": machine_line()}, indent=1))
