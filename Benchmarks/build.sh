#!/usr/bin/env bash
# Benchmark: `sevvm build` with nothing changed vs the first build, on the test repositories
# (Tests/BuilderTests/Fixtures/repos served through file:// URLs). Target: no-op under 1 second.
# Peer: AMD's build.sh always rebuilds, which `sevvm build --force` reproduces.
# Usage: Benchmarks/build.sh            (builds sevvm in release mode into .build-bench)
#        SEVVM_BIN=path/to/sevvm Benchmarks/build.sh
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
fixtures="$repo/Tests/BuilderTests/Fixtures/repos"
if [ -z "${SEVVM_BIN:-}" ]; then
    if ! log="$(swift build -c release --scratch-path "$repo/.build-bench" --product sevvm 2>&1)"; then
        echo "$log" | tail -30
        exit 1
    fi
    SEVVM_BIN="$repo/.build-bench/release/sevvm"
fi
runs="${RUNS:-10}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.invalid GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.invalid
for name in qemu ovmf linux; do
    cp -r "$fixtures/$name" "$work/$name"
    branch=snp-latest
    [ "$name" = linux ] && branch=snp-host-latest
    git -C "$work/$name" init --quiet -b "$branch"
    git -C "$work/$name" add -A
    git -C "$work/$name" commit --quiet -m initial
done
git -C "$work/linux" branch snp-guest-latest
mkdir -p "$work/ws" "$work/tools" "$work/include"
cat > "$work/ws/stable-commits" <<EOT
KERNEL_GIT_URL="file://$work/linux"
KERNEL_HOST_BRANCH="snp-host-latest"
KERNEL_GUEST_BRANCH="snp-guest-latest"
QEMU_GIT_URL="file://$work/qemu"
QEMU_BRANCH="snp-latest"
OVMF_GIT_URL="file://$work/ovmf"
OVMF_BRANCH="snp-latest"
EOT
printf 'CONFIG_X86_64=y\n' > "$work/config"
# Tools the fixtures never run but the tool check asks for: stand-ins only where this machine lacks them.
for tool in git make gcc g++ ninja python3 pkg-config nasm iasl dpkg-buildpackage rsync flex bison bc cpio; do
    command -v "$tool" >/dev/null || ln -s /bin/true "$work/tools/$tool"
done
for header in glib-2.0/glib.h pixman-1/pixman.h uuid/uuid.h openssl/ssl.h libelf.h; do
    mkdir -p "$work/include/$(dirname "$header")"
    touch "$work/include/$header"
done
export PATH="$work/tools:$PATH" C_INCLUDE_PATH="$work/include"
build=("$SEVVM_BIN" build --workspace "$work/ws" --kernel-config "$work/config" --kernel-package deb -j 2)

now() { date +%s.%N; }
start=$(now)
"${build[@]}" >"$work/first.log"
first=$(echo "$(now) - $start" | bc)
start=$(now)
"${build[@]}" --force >"$work/force.log"
force=$(echo "$(now) - $start" | bc)

total=0
for _ in $(seq "$runs"); do
    start=$(now)
    "${build[@]}" >"$work/noop.log"
    total=$(echo "$total + $(now) - $start" | bc)
done
noop=$(echo "scale=4; $total / $runs" | bc)
grep -q "nothing to do" "$work/noop.log" || { echo "FAIL: the second build was not a no-op:"; cat "$work/noop.log"; exit 1; }

printf 'first build (4 components, test repositories): %.3f s\n' "$first"
printf 'forced rebuild (AMD build.sh behaviour):        %.3f s\n' "$force"
printf 'no-op rebuild, mean of %d runs:                  %.3f s\n' "$runs" "$noop"
printf 'ratio first/no-op: %.1fx   forced/no-op: %.1fx\n' "$(echo "$first / $noop" | bc -l)" "$(echo "$force / $noop" | bc -l)"
if [ "$(echo "$noop < 1" | bc)" = 1 ]; then echo "PASS: no-op under 1 s"; else echo "FAIL: no-op took ${noop}s (target < 1 s)"; exit 1; fi
