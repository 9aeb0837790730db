#!/usr/bin/env bash
# Builds the small real Linux guest used by tests and the demo: OUT_DIR/vmlinuz + OUT_DIR/initrd.img.
#
# The kernel is Debian 12's linux-image-6.1.0-N-amd64, fetched with `apt-get download` and unpacked
# with `dpkg -x` (never installed). The initramfs is busybox-static plus the two modules the guest
# needs to see the ACPI power button (button.ko, evdev.ko, and whatever they depend on). Its init
# prints `sevvm-tiny-guest: ready` on the serial console, reports the kernel's SEV lines, and
# powers off on any event of the "Power Button" input device (QMP system_powerdown).
#
# Idempotent: when both outputs exist and were built by this version of the script, it exits at once.
# Usage: scripts/tiny-guest.sh OUT_DIR [--force]
set -euo pipefail

out="${1:?usage: scripts/tiny-guest.sh OUT_DIR [--force]}"
force="${2:-}"
script_version=3

mkdir -p "$out"
out="$(cd "$out" && pwd)"
stamp="$out/.tiny-guest-version"
if [[ "$force" != "--force" && -s "$out/vmlinuz" && -s "$out/initrd.img" && -f "$stamp" && "$(cat "$stamp")" == "$script_version" ]]; then
    echo "tiny guest already built in $out"
    exit 0
fi

busybox="$(command -v busybox || true)"
if [[ -z "$busybox" ]] || ! file -L "$busybox" 2>/dev/null | grep -q 'statically linked'; then
    for candidate in /bin/busybox /usr/bin/busybox; do
        [[ -x "$candidate" ]] && busybox="$candidate"
    done
fi
[[ -x "$busybox" ]] || { echo "error: busybox not found; install busybox-static" >&2; exit 1; }
command -v cpio >/dev/null || { echo "error: cpio not found; install cpio" >&2; exit 1; }

work="$out/.work"
mkdir -p "$work"

# Pick the newest Debian 6.1 kernel the package index knows (refresh the index once if it knows none).
pick_kernel() {
    apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' 2>/dev/null |
        awk '{print $1}' | sort -V | tail -1
}
package="$(ls "$work"/linux-image-6.1.0-*-amd64_*.deb 2>/dev/null | sort -V | tail -1 || true)"
if [[ -z "$package" ]]; then
    name="$(pick_kernel)"
    if [[ -z "$name" ]]; then
        apt-get update -qq
        name="$(pick_kernel)"
    fi
    [[ -n "$name" ]] || { echo "error: no linux-image-6.1.0-*-amd64 package in the apt index" >&2; exit 1; }
    echo "downloading $name"
    (cd "$work" && apt-get download -q "$name" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
    package="$(ls "$work"/linux-image-6.1.0-*-amd64_*.deb 2>/dev/null | sort -V | tail -1 || true)"
    [[ -n "$package" ]] || { echo "error: apt-get download $name produced no package" >&2; exit 1; }
fi

kernel_tree="$work/kernel"
rm -rf "$kernel_tree"
dpkg -x "$package" "$kernel_tree"
vmlinuz="$(ls "$kernel_tree"/boot/vmlinuz-* | head -1)"
moddir="$(ls -d "$kernel_tree"/lib/modules/* | head -1)"
kver="$(basename "$moddir")"

# The initramfs tree.
root="$work/initramfs"
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,lib/modules}
cp "$busybox" "$root/bin/busybox"
for applet in sh mount cat grep dmesg insmod poweroff sleep echo ls basename hexdump dd head; do
    ln -s busybox "$root/bin/$applet"
done

# A module's file by name (modules may spell - or _ either way), its dependencies from its modinfo.
module_path() {
    local name="$1" alt="${1//_/-}" alt2="${1//-/_}"
    find "$moddir/kernel" \( -name "$name.ko*" -o -name "$alt.ko*" -o -name "$alt2.ko*" \) | head -1
}
module_depends() {
    tr '\0' '\n' <"$1" | sed -n 's/^depends=//p' | tr ',' ' '
}
load_order=()
add_module() {
    local name="$1" path dep
    for seen in "${load_order[@]:-}"; do [[ "$seen" == "$name" ]] && return 0; done
    path="$(module_path "$name")"
    [[ -n "$path" ]] || { echo "error: module $name not found in $kver" >&2; exit 1; }
    case "$path" in
        *.ko.xz) xz -dc "$path" >"$root/lib/modules/$name.ko" ;;
        *.ko.zst) zstd -qdc "$path" >"$root/lib/modules/$name.ko" ;;
        *) cp "$path" "$root/lib/modules/$name.ko" ;;
    esac
    for dep in $(module_depends "$root/lib/modules/$name.ko"); do add_module "$dep"; done
    load_order+=("$name")
}
add_module button
add_module evdev

cat >"$root/init" <<EOF
#!/bin/sh
# sevvm tiny guest: report readiness and SEV state, power off on the ACPI power button.
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in ${load_order[*]}; do insmod /lib/modules/\$m.ko; done
echo "sevvm-tiny-guest: kernel \$(cat /proc/sys/kernel/osrelease)"
dmesg | grep -i -e sev -e 'Memory Encryption' | sed 's/^/sevvm-tiny-guest: dmesg: /'
button=""
for tries in 1 2 3 4 5 6 7 8 9 10; do
    for dev in /sys/class/input/event*; do
        [ -r "\$dev/device/name" ] || continue
        if [ "\$(cat "\$dev/device/name")" = "Power Button" ]; then button="/dev/input/\$(basename "\$dev")"; fi
    done
    [ -n "\$button" ] && [ -e "\$button" ] && break
    sleep 0.2
done
if [ -z "\$button" ]; then
    echo "sevvm-tiny-guest: no Power Button input device; powering off"
    poweroff -f
fi
echo "sevvm-tiny-guest: ready"
# Any event on the power button means system_powerdown: read one event record, then power off.
dd if="\$button" of=/dev/null bs=24 count=1 2>/dev/null
echo "sevvm-tiny-guest: power button pressed, powering off"
poweroff -f
EOF
chmod 0755 "$root/init"

cp "$vmlinuz" "$work/vmlinuz.new"
(cd "$root" && find . | sort | cpio -o -H newc --quiet | gzip -9n) >"$work/initrd.img.new"
mv "$work/vmlinuz.new" "$out/vmlinuz"
mv "$work/initrd.img.new" "$out/initrd.img"
echo "$kver" >"$out/kernel-version"
echo "$script_version" >"$stamp"
rm -rf "$root" "$kernel_tree"
echo "tiny guest built in $out (kernel $kver)"
