#!/usr/bin/env bash
# caps benchmark: `sevvm caps --json` whole-process time against the same checks by hand (QEMU start
# plus one QMP query through socat) and against QEMU's own start-up. Prints both ratios.
# Usage: Benchmarks/caps.sh            (builds sevvm in release mode with .build-release)
#        SEVVM=path/to/sevvm Benchmarks/caps.sh
set -euo pipefail
cd "$(dirname "$0")/.."

QEMU=${QEMU:-$(command -v qemu-system-x86_64)}
for tool in hyperfine socat python3 "$QEMU"; do
    command -v "$tool" >/dev/null || { echo "caps.sh: $tool is missing (install it)" >&2; exit 2; }
done
if [ -z "${SEVVM:-}" ]; then
    swift build -c release --scratch-path .build-release --product sevvm >&2
    SEVVM=.build-release/release/sevvm
fi

work=$(mktemp -d /tmp/sevvm-caps-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/ws"

# QEMU's own start-up: spawn the probe QEMU, wait for its QMP socket, kill it by PID.
cat >"$work/qemu-start.sh" <<SCRIPT
#!/usr/bin/env bash
sock=\$(mktemp -u "$work/q.XXXXXX")
"$QEMU" -machine none -accel kvm -S -nodefaults -no-user-config -display none -qmp unix:\$sock,server=on,wait=off &
pid=\$!
while [ ! -S "\$sock" ]; do sleep 0.001; done
kill -9 \$pid; wait \$pid 2>/dev/null; rm -f "\$sock"
SCRIPT
# By hand: the same, plus negotiation and query-sev-capabilities through socat.
cat >"$work/by-hand.sh" <<SCRIPT
#!/usr/bin/env bash
sock=\$(mktemp -u "$work/q.XXXXXX")
"$QEMU" -machine none -accel kvm -S -nodefaults -no-user-config -display none -qmp unix:\$sock,server=on,wait=off &
pid=\$!
while [ ! -S "\$sock" ]; do sleep 0.001; done
printf '{"execute":"qmp_capabilities"}\n{"execute":"query-sev-capabilities"}\n' | socat -t 5 - UNIX-CONNECT:\$sock | grep -q -e '"return": {"' -e '"error"'
kill -9 \$pid; wait \$pid 2>/dev/null; rm -f "\$sock"
SCRIPT
chmod +x "$work/qemu-start.sh" "$work/by-hand.sh"

# caps exits 3 on a host that is not SEV-ready (every machine here): -i keeps that from aborting.
hyperfine -N -i --warmup 3 --runs 30 --export-json "$work/result.json" \
    -n "sevvm caps --json" "$SEVVM caps --json --workspace $work/ws" \
    -n "by hand (QEMU + socat query)" "$work/by-hand.sh" \
    -n "QEMU start-up alone" "$work/qemu-start.sh"

python3 - "$work/result.json" <<'PY'
import json, sys
results = {r["command"]: r["mean"] for r in json.load(open(sys.argv[1]))["results"]}
caps = results["sevvm caps --json"]
hand = results["by hand (QEMU + socat query)"]
qemu = results["QEMU start-up alone"]
print(f"sevvm caps --json: {caps * 1000:.1f} ms (target < 150 ms: {'met' if caps < 0.150 else 'MISSED'})")
print(f"ratio caps / by hand:          {caps / hand:.2f}x")
print(f"ratio caps / QEMU start-up:    {caps / qemu:.2f}x (target <= 1.2x: {'met' if caps <= 1.2 * qemu else 'MISSED'})")
PY
