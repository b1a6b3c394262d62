#!/usr/bin/env bash
# Regenerate benchmarks/results/demo/examples_output.txt: every example's output with the
# shipped forecaster, in its offline setting (the README quotes from it).
#
#   bash benchmarks/examples_output.sh [PYTHON]      # PYTHON defaults to .venv/bin/python
#   bash benchmarks/examples_output.sh --list        # only print the commands it would run
#
# The commands are the "smallest run" column of the README's Examples table (one list, kept
# in the README).
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t CMDS < <(sed -n '/^## Examples/,/^## [^E]/p' README.md | grep -o '`python examples/[^`]*`' | tr -d '`' | sed 's/^python //')
if [ "${#CMDS[@]}" -eq 0 ]; then
  echo "no example commands found in README.md's Examples table" >&2
  exit 1
fi
if [ "${1:-}" = "--list" ]; then
  printf '%s\n' "${CMDS[@]}"
  exit 0
fi
PY="${1:-.venv/bin/python}"
OUT=benchmarks/results/demo/examples_output.txt
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONWARNINGS=ignore
machine=$("$PY" -c "from gfm_accel.info import machine_line; print(machine_line())")
tmp="$OUT.tmp"
{
  echo "# Output of each example with the shipped forecaster (offline settings), $(date -u +%F)"
  echo "# command: bash benchmarks/examples_output.sh; git commit $(git rev-parse --short HEAD)"
  echo "# machine: $machine; OMP_NUM_THREADS=1"
  for cmd in "${CMDS[@]}"; do
    echo
    echo "\$ python $cmd"
    # shellcheck disable=SC2086
    "$PY" $cmd 2>/dev/null
  done
} > "$tmp"
mv "$tmp" "$OUT"
echo "wrote $OUT"
