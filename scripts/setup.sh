#!/usr/bin/env bash
# Installs what sevvm needs to build, run and test, idempotently, and checks the versions it got.
# Debian 12: QEMU >= 9.1 comes from bookworm-backports, enabled by deriving it from the
# existing apt source (no host name is written here). Other distributions: prints what to install.
set -euo pipefail

MIN_QEMU="9.1"
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEB_PACKAGES=(ovmf qemu-utils libjson-c-dev pkg-config socat busybox-static cpio gzip git make
              python3-venv hyperfine valgrind libssl3)

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

qemu_version() {
    command -v qemu-system-x86_64 >/dev/null 2>&1 || { echo 0; return; }
    qemu-system-x86_64 --version | sed -n 's/.*version \([0-9][0-9.]*\).*/\1/p' | head -n1
}

# Adds bookworm-backports next to the existing Debian suites, keeping the mirror the machine uses.
enable_backports() {
    local deb822=/etc/apt/sources.list.d/debian.sources
    if [ -f "$deb822" ]; then
        if grep -qE '^Suites:.*bookworm-backports' "$deb822"; then return 1; fi
        grep -qE '^Suites:.*\bbookworm\b' "$deb822" || die "$deb822 has no 'Suites: bookworm' line to extend"
        say "adding bookworm-backports to the Suites line of $deb822"
        as_root sed -i -E '0,/^Suites:(.*\bbookworm\b.*)$/s//Suites:\1 bookworm-backports/' "$deb822"
        return 0
    fi
    local list=/etc/apt/sources.list
    if grep -rqsE '^deb .* bookworm-backports' "$list" /etc/apt/sources.list.d/*.list 2>/dev/null; then return 1; fi
    local line
    line=$(grep -E '^deb (\[[^]]*\] )?[^ ]+ bookworm( |$)' "$list" 2>/dev/null | head -n1 || true)
    [ -n "$line" ] || die "no 'deb ... bookworm main' line in $list to derive bookworm-backports from"
    say "deriving bookworm-backports from: $line"
    echo "$line" | sed -E 's/ bookworm( |$)/ bookworm-backports\1/' |
        as_root tee /etc/apt/sources.list.d/bookworm-backports.list >/dev/null
    return 0
}

missing_packages() {
    local p missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    echo "${missing[@]:-}"
}

setup_debian() {
    local codename updated=0
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    export DEBIAN_FRONTEND=noninteractive
    if [ "$codename" = bookworm ] && ! version_ge "$(qemu_version)" "$MIN_QEMU"; then
        if enable_backports; then as_root apt-get update -q; updated=1; fi
        if ! apt-cache policy qemu-system-x86 2>/dev/null | grep -q bookworm-backports; then
            [ $updated = 1 ] || { as_root apt-get update -q; updated=1; }
        fi
        say "installing qemu-system-x86 from bookworm-backports"
        as_root apt-get install -y -qq -o Dpkg::Use-Pty=0 -t bookworm-backports qemu-system-x86 qemu-utils
    elif ! version_ge "$(qemu_version)" "$MIN_QEMU"; then
        [ $updated = 1 ] || { as_root apt-get update -q; updated=1; }
        as_root apt-get install -y -qq -o Dpkg::Use-Pty=0 qemu-system-x86
    fi
    local missing
    missing=$(missing_packages "${DEB_PACKAGES[@]}")
    if [ -n "$missing" ]; then
        [ $updated = 1 ] || { as_root apt-get update -q; updated=1; }
        say "installing: $missing"
        # shellcheck disable=SC2086
        as_root apt-get install -y -qq -o Dpkg::Use-Pty=0 $missing
    fi
}

print_other_distro_help() {
    cat >&2 <<'TXT'
setup: this script installs packages on Debian 12 only. On your distribution install:
  - QEMU >= 9.1 with qemu-system-x86_64 and qemu-img (Fedora: qemu-kvm qemu-img; Ubuntu 24.04+: qemu-system-x86 qemu-utils)
  - OVMF firmware (Fedora: edk2-ovmf; Ubuntu: ovmf)
  - json-c development files with pkg-config (Fedora: json-c-devel pkgconf; Ubuntu: libjson-c-dev pkg-config)
  - socat, busybox (static), cpio, git, make, python3 with venv
  - Swift 6.x from swift.org
TXT
}

check_versions() {
    local q ok=1
    q=$(qemu_version)
    if version_ge "$q" "$MIN_QEMU"; then say "QEMU $q (>= $MIN_QEMU) ok"; else say "QEMU $q is older than $MIN_QEMU (SNP needs $MIN_QEMU)"; ok=0; fi
    if pkg-config --exists json-c; then say "json-c $(pkg-config --modversion json-c) ok"; else say "json-c development files missing"; ok=0; fi
    if command -v swift >/dev/null 2>&1; then say "$(swift --version 2>/dev/null | head -n1)"; else say "swift not found on PATH"; ok=0; fi
    local f found=""
    for f in /usr/share/OVMF/OVMF_CODE_4M.fd /usr/share/OVMF/OVMF_CODE.fd /usr/share/edk2/ovmf/OVMF_CODE.fd; do
        [ -f "$f" ] && found=$f && break
    done
    if [ -n "$found" ]; then say "OVMF at $found ok"; else say "no OVMF firmware found"; ok=0; fi
    command -v socat >/dev/null 2>&1 && say "socat ok" || { say "socat missing"; ok=0; }
    [ $ok = 1 ] || die "some requirements are missing (see above)"
}

# Python tools the tests and benchmarks compare against, in a virtual environment of the repository.
setup_python_tools() {
    local venv="$REPO/.venv-tools"
    if [ ! -x "$venv/bin/python" ]; then
        say "creating $venv"
        python3 -m venv "$venv" || { as_root apt-get install -y -qq -o Dpkg::Use-Pty=0 python3-venv && python3 -m venv "$venv"; }
    fi
    if ! "$venv/bin/python" -c 'import sevsnpmeasure, qemu.qmp' 2>/dev/null; then
        say "installing sev-snp-measure and qemu.qmp into $venv"
        "$venv/bin/pip" install -q --disable-pip-version-check sev-snp-measure qemu.qmp
    fi
    say "sev-snp-measure $("$venv/bin/pip" show sev-snp-measure 2>/dev/null | sed -n 's/^Version: //p') ok"
}

main() {
    local tools=0
    for arg in "$@"; do
        case "$arg" in
            --test-tools) tools=1 ;;
            -h|--help) echo "usage: scripts/setup.sh [--test-tools]   (--test-tools: also sev-snp-measure and qemu.qmp in .venv-tools)"; exit 0 ;;
            *) die "unknown option $arg (allowed: --test-tools)" ;;
        esac
    done
    if [ -r /etc/os-release ] && [ "$(. /etc/os-release && echo "${ID:-}")" = debian ]; then
        setup_debian
    else
        print_other_distro_help
    fi
    check_versions
    if [ $tools = 1 ]; then setup_python_tools; fi
}

main "$@"
