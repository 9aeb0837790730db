#!/usr/bin/env bash
# Benchmark: `sevvm list` over 1,000 definitions and `sevvm show NAME`, against plain process start
# (`true`) and sevvm's own start-up (`sevvm --version`). Target: list of 1,000 under 100 ms.
# Usage: Benchmarks/definitions.sh            (builds sevvm in release mode into .build-bench)
#        SEVVM_BIN=path/to/sevvm COUNT=1000 Benchmarks/definitions.sh
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
if [ -z "${SEVVM_BIN:-}" ]; then
    swift build -c release --scratch-path "$repo/.build-bench" --product sevvm >/dev/null
    SEVVM_BIN="$repo/.build-bench/release/sevvm"
fi
count="${COUNT:-1000}"
command -v hyperfine >/dev/null || { echo "definitions bench: hyperfine is not installed" >&2; exit 2; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
ws="$work/ws"
mkdir -p "$ws"

# One real definition written by sevvm itself, then copies under other names (create would take minutes).
"$SEVVM_BIN" create --workspace "$ws" template --mode snp --memory 4G --vcpus 4 --network user --forward 2222:22 \
    --snp-flag debug --extra-arg -d --extra-arg guest_errors >/dev/null
for i in $(seq -w 1 "$count"); do
    sed "s/\"name\" : \"template\"/\"name\" : \"vm-$i\"/" "$ws/vms/template.json" >"$ws/vms/vm-$i.json"
done
rm "$ws/vms/template.json"
middle="vm-$(printf "%0${#count}d" $((count / 2)))"
"$SEVVM_BIN" list --workspace "$ws" | tail -n +2 | wc -l | grep -qx "$count" || { echo "list did not show $count VMs" >&2; exit 1; }

hyperfine --shell=none --warmup 3 --min-runs "${RUNS:-20}" --export-json "$work/result.json" \
    -n true true \
    -n "sevvm --version" "$SEVVM_BIN --version" \
    -n "sevvm list ($count)" "$SEVVM_BIN list --workspace $ws" \
    -n "sevvm list --json ($count)" "$SEVVM_BIN list --json --workspace $ws" \
    -n "sevvm show" "$SEVVM_BIN show $middle --workspace $ws" >/dev/null

python3 - "$work/result.json" "$count" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))["results"]
wall = {r["command"]: r["mean"] * 1000 for r in rows}
cpu = {r["command"]: (r["user"] + r["system"]) * 1000 for r in rows}
count = sys.argv[2]
base = wall["true"]
start = wall["sevvm --version"]
print(f"{'command':28} {'wall ms':>8} {'cpu ms':>7} {'x true':>7} {'wall - sevvm start':>19}")
for name, ms in wall.items():
    print(f"{name:28} {ms:8.2f} {cpu[name]:7.2f} {ms / base:7.1f} {ms - start:19.2f}")
listing = wall[f"sevvm list ({count})"]
print(f"target: list of {count} under 100 ms -> {listing:.1f} ms wall ({cpu[f'sevvm list ({count})']:.1f} ms CPU): "
      f"{'PASS' if listing < 100 else 'FAIL'}")
print("note: on a busy machine wall time includes waiting for a CPU; the CPU column is the work itself")
PY
