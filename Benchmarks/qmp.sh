#!/usr/bin/env bash
# QMP benchmark: sequential query-status round trips on one connection to one QEMU (-machine none,
# TCG) for sevvm's client, a minimal C client and the qemu.qmp Python library, plus decode
# throughput of the query-qmp-schema reply (json-c path vs Foundation's JSONSerialization).
#
#   Benchmarks/qmp.sh            (QMP_BENCH_COUNT=N round trips per run, default 20000, N/4 for
#                                 the slower qemu.qmp; QMP_BENCH_ROUNDS=R interleaved runs per
#                                 client, best kept, default 3: the machine is shared)
# Targets: sevvm >= 0.9x the C client and >= 3x qemu.qmp.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
count="${QMP_BENCH_COUNT:-20000}"
rounds="${QMP_BENCH_ROUNDS:-3}"
cd "$repo"

echo "== building (release, --scratch-path .build-bench)"
swift build -c release --scratch-path .build-bench --product qmp-bench 2>&1 | tail -1
bench="$(swift build -c release --scratch-path .build-bench --show-bin-path)/qmp-bench"
cc -O2 -Wall -o .build-bench/qmp-client Benchmarks/qmp/qmp-client.c
client=.build-bench/qmp-client

venv="$repo/.venv-tools"
python=""
if [ ! -x "$venv/bin/python" ]; then python3 -m venv "$venv" || true; fi
if [ -x "$venv/bin/python" ]; then
    if ! "$venv/bin/python" -c "import qemu.qmp" 2>/dev/null; then
        "$venv/bin/pip" install --quiet qemu.qmp || echo "warning: pip install qemu.qmp failed; the Python peer is skipped" >&2
    fi
    "$venv/bin/python" -c "import qemu.qmp" 2>/dev/null && python="$venv/bin/python"
fi

work="$(mktemp -d /tmp/sevvm-qmp-bench-XXXXXX)"
socket="$work/qmp.sock"
qemu-system-x86_64 -machine none -accel tcg -nodefaults -display none -S \
    -qmp "unix:$socket,server=on,wait=off" >"$work/qemu.log" 2>&1 &
qemu_pid=$!
cleanup() {
    kill "$qemu_pid" 2>/dev/null || true
    wait "$qemu_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# QEMU creates the socket file just before it listens: retry the first client briefly.
for _ in $(seq 1 200); do
    if [ -S "$socket" ] && "$client" "$socket" dump query-qmp-schema >"$work/schema.json" 2>/dev/null; then break; fi
    sleep 0.05
done
[ -s "$work/schema.json" ] || { echo "QEMU did not answer on $socket:" >&2; cat "$work/qemu.log" >&2; exit 1; }

best() { sort -n | tail -1; }
declare -A results=()
runs_c=() runs_sevvm=() runs_python=()
echo "== $count sequential query-status round trips, best of $rounds runs (commands/s)"
for round in $(seq 1 "$rounds"); do
    runs_c+=("$("$client" "$socket" bench "$count")")
    runs_sevvm+=("$("$bench" roundtrips "$socket" "$count")")
    last_python=skipped
    if [ -n "$python" ]; then
        last_python="$("$python" Benchmarks/qmp/qmp_python.py "$socket" "$((count / 4))")"
        runs_python+=("$last_python")
    fi
    echo "   round $round: C ${runs_c[-1]}  sevvm ${runs_sevvm[-1]}  qemu.qmp $last_python"
done
results[c]=$(printf '%s\n' "${runs_c[@]}" | best)
results[sevvm]=$(printf '%s\n' "${runs_sevvm[@]}" | best)
printf '%-28s %10s commands/s\n' "C client (Benchmarks/qmp)" "${results[c]}" "sevvm QMPClient" "${results[sevvm]}"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "sevvm / C        = $(ratio "${results[sevvm]}" "${results[c]}")x   (target >= 0.9)"
if [ -n "$python" ]; then
    results[python]=$(printf '%s\n' "${runs_python[@]}" | best)
    printf '%-28s %10s commands/s\n' "qemu.qmp (Python)" "${results[python]}"
    echo "sevvm / qemu.qmp = $(ratio "${results[sevvm]}" "${results[python]}")x   (target >= 3)"
else
    echo "qemu.qmp: skipped (no venv with qemu.qmp)"
fi

echo "== decoding the query-qmp-schema reply ($(wc -c <"$work/schema.json") bytes), best of 30 (MB/s)"
"$bench" decode "$work/schema.json" 30 >"$work/decode.txt"
jsonc=$(awk '$1 == "jsonc" { print $2 }' "$work/decode.txt")
converted=$(awk '$1 == "jsonc+convert" { print $2 }' "$work/decode.txt")
foundation=$(awk '$1 == "foundation" { print $2 }' "$work/decode.txt")
printf '%-46s %8s MB/s\n' "json-c stream decoder (sevvm's path, lazy)" "$jsonc" \
    "json-c + full conversion to JSONValue" "$converted" "Foundation JSONSerialization" "$foundation"
echo "json-c / Foundation = $(ratio "$jsonc" "$foundation")x (with full conversion $(ratio "$converted" "$foundation")x)"
