#!/usr/bin/env bash
# The main job, end to end: set up the machine, build sevvm, check the host, then define, start,
# watch and stop a small real Linux guest (TCG where KVM cannot run guests, KVM where it can).
# Usage: scripts/demo.sh [--accel kvm|tcg]   (default: kvm when it can boot the guest, else tcg)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

accel=auto
while [ $# -gt 0 ]; do
    case "$1" in
        --accel) accel="${2:?--accel needs kvm or tcg}"; shift 2 ;;
        -h|--help) sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "demo: unknown argument $1 (allowed: --accel kvm|tcg)" >&2; exit 2 ;;
    esac
done

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "set up this machine"
scripts/setup.sh
step "build sevvm"
swift build --product sevvm 2>&1 | tail -n 1
sevvm="$repo/.build/debug/sevvm"
step "build the tiny guest (Debian kernel + busybox initramfs) into images/tiny"
scripts/tiny-guest.sh images/tiny

export SEVVM_WORKSPACE="$repo"
name=demo-tiny

step "sevvm caps: is this host ready for SEV, SEV-ES and SNP?"
"$sevvm" caps || echo "(caps exits non-zero when the host cannot run encrypted guests; the demo goes on unencrypted)"

# An earlier demo may have left the VM defined or running: start from a clean definition.
"$sevvm" kill "$name" >/dev/null 2>&1 || true
"$sevvm" rm "$name" >/dev/null 2>&1 || true

boot() {
    local a="$1"
    step "sevvm create $name --accel $a, then sevvm start"
    "$sevvm" create "$name" --memory 256M --vcpus 1 --cpu EPYC-v4 \
        --kernel images/tiny/vmlinuz --initrd images/tiny/initrd.img --append "console=ttyS0" --accel "$a"
    "$sevvm" start "$name"
    printf 'waiting for the guest to report ready'
    for _ in $(seq 1 90); do
        if "$sevvm" logs "$name" 2>/dev/null | grep -q 'sevvm-tiny-guest: ready'; then echo; return 0; fi
        if "$sevvm" status "$name" --json 2>/dev/null | grep -q '"state" *: *"crashed"'; then echo; return 1; fi
        printf '.'; sleep 1
    done
    echo; return 1
}

try_accel() {
    if boot "$1"; then return 0; fi
    echo "the guest did not boot with --accel $1:"
    "$sevvm" status "$name" || true
    "$sevvm" kill "$name" >/dev/null 2>&1 || true
    "$sevvm" rm "$name" >/dev/null 2>&1 || true
    return 1
}

case "$accel" in
    auto)
        if [ -w /dev/kvm ] && try_accel kvm; then :; else
            echo "falling back to TCG (software emulation)"
            try_accel tcg
        fi ;;
    *) try_accel "$accel" ;;
esac

step "sevvm logs $name (the guest's serial console)"
"$sevvm" logs "$name"
step "sevvm status $name"
"$sevvm" status "$name"
step "sevvm pause / resume"
"$sevvm" pause "$name" && "$sevvm" status "$name" | head -n 3
"$sevvm" resume "$name"
step "sevvm stop $name (ACPI power button; the guest powers off)"
"$sevvm" stop "$name" --timeout 30
"$sevvm" status "$name"
step "sevvm events $name (kept by the per-VM event recorder)"
"$sevvm" events "$name"
step "an SNP guest: the launch plan, its expected digest, and what this host says"
"$sevvm" kill demo-snp >/dev/null 2>&1 || true
"$sevvm" rm demo-snp >/dev/null 2>&1 || true
# cbitpos comes from the host's CPUID; this machine reports no SEV, so give Genoa's as a user would.
"$sevvm" create demo-snp --mode snp --memory 1G --vcpus 2 --cbitpos 51 --reduced-phys-bits 1 \
    --kernel images/tiny/vmlinuz --initrd images/tiny/initrd.img --append "console=ttyS0"
"$sevvm" start demo-snp --dry-run
"$sevvm" measure demo-snp || true
"$sevvm" start demo-snp || echo "(expected on a host without SEV-SNP: sevvm explains QEMU's refusal and leaves nothing behind)"
"$sevvm" rm demo-snp >/dev/null
echo
echo "Done. Try: $sevvm console $name   (after $sevvm start $name; Ctrl-] detaches)"
