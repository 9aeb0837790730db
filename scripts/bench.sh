#!/usr/bin/env bash
# Runs every benchmark in Benchmarks/ (each prints its peers and ratios). Usage: scripts/bench.sh [AREA...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test-tools >/dev/null
areas=("$@")
if [ ${#areas[@]} -eq 0 ]; then
    for f in Benchmarks/*.sh; do areas+=("$(basename "$f" .sh)"); done
fi
for area in "${areas[@]}"; do
    [ -x "Benchmarks/$area.sh" ] || { echo "bench: no Benchmarks/$area.sh (have: $(ls Benchmarks/*.sh | xargs -n1 basename | sed 's/\.sh$//' | tr '\n' ' '))" >&2; exit 2; }
    echo "== $area"
    "Benchmarks/$area.sh"
done
