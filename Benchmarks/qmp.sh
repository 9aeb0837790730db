#!/usr/bin/env bash
# QMP benchmark: sequential query-status round trips on one connection to one QEMU (-machine none,
# TCG) for sevvm's client, a minimal C client and the qemu.qmp Python library, plus decode
# throughput of the query-qmp-schema reply (json-c path vs Foundation's JSONSerialization).
#
#   Benchmarks/qmp.sh            (QMP_BENCH_COUNT=N round trips per run, default 20000, N/4 for
#                                 the slower qemu.qmp; QMP_BENCH_ROUNDS=R interleaved runs per
#                                 client, default 5; ratios are medians of the paired rounds)
# Targets: sevvm >= 0.9x the C client and >= 3x qemu.qmp.
#
# QEMU reads its QMP socket one byte per main-loop turn, so each request byte costs QEMU time and
# QEMU's own work dominates a round trip. The C client's "bench-id" run (every command with an id,
# as qemu.qmp sends) is printed for context: it shows what an id costs QEMU. sevvm's client sends
# an id only when commands overlap or a reply is owed to an abandoned one. sevvm runs its loop on
# the connection's own thread (client.withExecutor); "global executor" is the same loop without it.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
count="${QMP_BENCH_COUNT:-20000}"
rounds="${QMP_BENCH_ROUNDS:-5}"
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
runs_c=() runs_sevvm=() runs_python=() runs_cid=() runs_global=()
echo "== $count sequential query-status round trips, $rounds interleaved rounds (commands/s)"
for round in $(seq 1 "$rounds"); do
    runs_c+=("$("$client" "$socket" bench "$count")")
    runs_sevvm+=("$("$bench" roundtrips "$socket" "$count")")
    runs_global+=("$("$bench" roundtrips-global "$socket" "$count")")
    runs_cid+=("$("$client" "$socket" bench-id "$count")")
    last_python=skipped
    if [ -n "$python" ]; then
        last_python="$("$python" Benchmarks/qmp/qmp_python.py "$socket" "$((count / 4))")"
        runs_python+=("$last_python")
    fi
    echo "   round $round: C ${runs_c[-1]}  sevvm ${runs_sevvm[-1]}  qemu.qmp $last_python  (C with ids ${runs_cid[-1]}, sevvm on the global executor ${runs_global[-1]})"
done
results[c]=$(printf '%s\n' "${runs_c[@]}" | best)
results[sevvm]=$(printf '%s\n' "${runs_sevvm[@]}" | best)
results[cid]=$(printf '%s\n' "${runs_cid[@]}" | best)
results[global]=$(printf '%s\n' "${runs_global[@]}" | best)
printf '%-40s %10s commands/s\n' "C client (Benchmarks/qmp)" "${results[c]}" "sevvm QMPClient" "${results[sevvm]}" \
    "  context: C client with an id per command" "${results[cid]}" "  context: sevvm on the global executor" "${results[global]}"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
# On a shared machine one round can be disturbed: the median of the per-round (paired) ratios
# is the steadier figure; best-of is printed beside it.
paired_median() {
    local -n top=$1 bottom=$2
    for i in "${!top[@]}"; do ratio "${top[$i]}" "${bottom[$i]}"; echo; done | sort -n |
        awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
echo "sevvm / C        = $(paired_median runs_sevvm runs_c)x median of rounds, $(ratio "${results[sevvm]}" "${results[c]}")x best-of   (target >= 0.9)"
if [ -n "$python" ]; then
    results[python]=$(printf '%s\n' "${runs_python[@]}" | best)
    printf '%-40s %10s commands/s\n' "qemu.qmp (Python)" "${results[python]}"
    echo "sevvm / qemu.qmp = $(paired_median runs_sevvm runs_python)x median of rounds, $(ratio "${results[sevvm]}" "${results[python]}")x best-of   (target >= 3)"
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
