#!/usr/bin/env bash
# Whole-process time of `sevvm measure` vs sev-snp-measure on the same inputs (SNP, 4M OVMF, 64 vCPUs,
# with and without a kernel); checks the digests are equal and prints the speed ratio (target >= 5x).
# Usage: Benchmarks/measure.sh   (env: SCRATCH=.build-bench  RUNS=30)
set -euo pipefail
cd "$(dirname "$0")/.."
scratch="${SCRATCH:-.build-bench}"
runs="${RUNS:-30}"

oracle=".venv-tools/bin/sev-snp-measure"
[ -x "$oracle" ] || oracle="$(command -v sev-snp-measure || true)"
[ -n "$oracle" ] || { echo "measure bench: sev-snp-measure missing; run scripts/setup.sh --test-tools" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "measure bench: hyperfine missing (apt-get install hyperfine)" >&2; exit 1; }

swift build -c release --scratch-path "$scratch" --product sevvm >/dev/null
sevvm="$(swift build -c release --scratch-path "$scratch" --show-bin-path)/sevvm"

ovmf=/usr/share/OVMF/OVMF_CODE_4M.fd
[ -f "$ovmf" ] || { echo "measure bench: $ovmf missing (apt-get install ovmf)" >&2; exit 1; }
# SNP kernel hashes need firmware with the kernel-hashes section: Debian's builds lack it, so the
# kernel case uses the AmdSev fixture suffix (same page count per hash is irrelevant: the kernel
# and initrd hashing dominate there).
amdsev=Tests/MeasureTests/Fixtures/ovmf_AmdSev_suffix.bin
kernel=images/tiny/vmlinuz
initrd=images/tiny/initrd.img
if [ ! -f "$kernel" ]; then
    scripts/tiny-guest.sh images/tiny >/dev/null
fi

results="$(mktemp -d)"
trap 'rm -rf "$results"' EXIT
status=0

bench() {
    local label="$1"
    shift
    local args=("$@")
    local ours theirs
    ours="$("$sevvm" measure "${args[@]}")"
    theirs="$("$oracle" "${args[@]}")"
    if [ "$ours" != "$theirs" ]; then
        echo "$label: DIGESTS DIFFER: sevvm $ours, sev-snp-measure $theirs" >&2
        status=1
        return
    fi
    local quoted=""
    for a in "${args[@]}"; do quoted+=" $(printf '%q' "$a")"; done
    hyperfine --warmup 3 --runs "$runs" --style none --export-json "$results/$label.json" \
        -n sevvm "$sevvm measure$quoted" -n sev-snp-measure "$oracle$quoted" >/dev/null
    python3 - "$results/$label.json" "$label" "$ours" <<'PY'
import json, sys
data = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
ours, theirs = data["sevvm"], data["sev-snp-measure"]
ratio = theirs["mean"] / ours["mean"]
print(f"{sys.argv[2]:<34} sevvm {ours['mean']*1000:7.1f} ms ± {ours['stddev']*1000:5.1f}   "
      f"sev-snp-measure {theirs['mean']*1000:7.1f} ms ± {theirs['stddev']*1000:5.1f}   "
      f"ratio {ratio:5.1f}x {'(>= 5x target met)' if ratio >= 5 else '(BELOW the 5x target)'}")
print(f"{'':<34} digests equal: {sys.argv[3][:32]}...")
PY
}

common=(--mode snp --vcpus 64 --vcpu-type EPYC-v4)
bench "snp 4M-OVMF 64 vCPUs, no kernel" "${common[@]}" --ovmf "$ovmf"
bench "snp 64 vCPUs, kernel+initrd" "${common[@]}" --ovmf "$amdsev" --kernel "$kernel" --initrd "$initrd" \
    --append "console=ttyS0 root=/dev/vda1"
bench "sev-es 4M-OVMF 64 vCPUs" --mode seves --vcpus 64 --vcpu-type EPYC-v4 --ovmf "$ovmf"
exit $status
