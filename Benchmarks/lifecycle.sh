#!/usr/bin/env bash
# Lifecycle latency: `sevvm start` against QEMU's own -daemonize start-up plus a QMP `cont` (same argv),
# and `sevvm status` against a one-shot socat QMP query-status. Prints medians and ratios.
# Targets (DESIGN.md): start within 10% of QEMU's own; status under 10 ms.
# Usage: Benchmarks/lifecycle.sh [RUNS]   (SEVVM=path/to/sevvm to skip the release build)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
runs="${1:-15}"

for tool in hyperfine socat qemu-system-x86_64 python3; do
    command -v "$tool" >/dev/null || { echo "lifecycle bench: $tool is missing (scripts/setup.sh --test-tools)" >&2; exit 2; }
done

if [[ -z "${SEVVM:-}" ]]; then
    echo "building sevvm (release)..." >&2
    swift build -c release --product sevvm --scratch-path .build-bench >&2
    SEVVM="$repo/.build-bench/release/sevvm"
fi
scripts/tiny-guest.sh images/tiny >&2

work=$(mktemp -d /tmp/sevvm-lifecycle-bench-XXXXXX)
baseline="$work/baseline"
mkdir -p "$work/vms" "$baseline"
cleanup() {
    # Every QEMU and recorder started here is ended by the PID in its pidfile/state.
    "$SEVVM" kill bench --workspace "$work" >/dev/null 2>&1 || true
    if [[ -s "$baseline/qemu.pid" ]]; then kill -9 "$(cat "$baseline/qemu.pid")" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/vms/bench.json" <<EOF
{"schemaVersion": 1, "name": "bench", "mode": "none", "memory": "256M", "vcpus": 1,
 "directBoot": {"kernel": "$repo/images/tiny/vmlinuz", "initrd": "$repo/images/tiny/initrd.img", "append": "console=ttyS0"}}
EOF

# One start to learn the exact argv sevvm uses; the baseline runs the same argv in its own folder.
"$SEVVM" start bench --accel tcg --workspace "$work" >/dev/null
python3 - "$work/run/bench/state.json" "$work/run/bench" "$baseline" >"$baseline/argv" <<'EOF'
import json, sys
argv = json.load(open(sys.argv[1]))["argv"]
print("\0".join(a.replace(sys.argv[2], sys.argv[3]) for a in argv), end="")
EOF
"$SEVVM" kill bench --workspace "$work" >/dev/null

cat >"$baseline/start.sh" <<EOF
#!/usr/bin/env bash
# QEMU's own start: -daemonize returns after init, then one QMP cont through socat.
set -e
cd "$baseline"
rm -f qmp.sock events.sock serial.sock
xargs -0 -a argv sh -c 'exec "\$0" "\$@"'
printf '{"execute":"qmp_capabilities"}\n{"execute":"cont"}\n' | socat - UNIX-CONNECT:qmp.sock >/dev/null
EOF
chmod +x "$baseline/start.sh"
kill_baseline="if [ -s $baseline/qemu.pid ]; then kill -9 \$(cat $baseline/qemu.pid) 2>/dev/null; sleep 0.05; fi; true"

echo "== start latency (command to running guest CPUs), $runs runs each"
hyperfine --style basic --runs "$runs" --export-json "$work/start.json" \
    --prepare "$SEVVM kill bench --workspace $work >/dev/null 2>&1; $kill_baseline" \
    -n "sevvm start" "$SEVVM start bench --accel tcg --workspace $work" \
    -n "qemu -daemonize + socat cont" "$baseline/start.sh"

# Status against a running guest.
"$SEVVM" kill bench --workspace "$work" >/dev/null 2>&1 || true
eval "$kill_baseline"
"$SEVVM" start bench --accel tcg --workspace "$work" >/dev/null
echo "== status latency, $((runs * 4)) runs each"
hyperfine --style basic --warmup 3 --runs "$((runs * 4))" --export-json "$work/status.json" -N \
    -n "sevvm status" "$SEVVM status bench --workspace $work" \
    -n "socat query-status" "sh -c 'printf \"{\\\"execute\\\":\\\"qmp_capabilities\\\"}\\n{\\\"execute\\\":\\\"query-status\\\"}\\n\" | socat - UNIX-CONNECT:$work/run/bench/qmp.sock'"

python3 - "$work/start.json" "$work/status.json" <<'EOF'
import json, sys
def medians(path):
    return {r["command"]: r["median"] * 1000 for r in json.load(open(path))["results"]}
start, status = medians(sys.argv[1]), medians(sys.argv[2])
s, q = start["sevvm start"], start["qemu -daemonize + socat cont"]
print(f"start:  sevvm {s:.1f} ms, QEMU's own {q:.1f} ms, ratio {s / q:.2f}x (target <= 1.10x)")
t, c = status["sevvm status"], status["socat query-status"]
print(f"status: sevvm {t:.1f} ms, socat query-status {c:.1f} ms, ratio {t / c:.2f}x (target < 10 ms)")
EOF
