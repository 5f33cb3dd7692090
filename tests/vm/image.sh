#!/usr/bin/env bash
# Builds (or finds in the cache) the Debian 12 image make check-vm boots:
# debootstrap minbase bookworm, systemd as PID 1, Debian's kernel, and
# gen's build and run dependencies. Prints the image's directory (rootfs.img,
# vmlinuz, initrd.img) on stdout; progress goes to stderr.
#   VM_DEBS="..." tests/vm/image.sh [--cached]     (VM_DEBS: the Makefile's DEBS)
# --cached builds nothing: status 0 and the directory when the image is there.
# The cache (GEN_VM_CACHE, default /var/cache/gen-vm) is keyed by a hash of
# this recipe, the package list and the mirror: a changed recipe rebuilds.
# GEN_VM_IMAGE_STATE names a file that gets "cached" or "built in N s".
# The packages come from the Debian mirror this machine's apt sources use.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${GEN_VM_CACHE:-/var/cache/gen-vm}
SUITE=bookworm
SIZE=${GEN_VM_DISK:-4G}
# Beyond gen's own DEBS: what boots and what the guest runner needs.
BASE_DEBS="systemd-sysv udev dbus kmod linux-image-amd64 initramfs-tools procps psmisc less"
DEBS=$(echo $BASE_DEBS ${VM_DEBS:?VM_DEBS: the DEBS of the Makefile})
say() { echo "check-vm: $*" >&2; }

# The first URI of the apt sources (deb822 or one-line) that serves SUITE.
mirror_for() {  # SUITE
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk -v s="$1" 'BEGIN { RS = ""; FS = "\n" }
			{ u = ""; ok = 0; deb = 0
			  for (i = 1; i <= NF; i++) {
				if ($i ~ /^URIs:/) { split($i, a, /[ \t]+/); u = a[2] }
				if ($i ~ /^Types:/ && $i ~ /[ \t]deb([ \t]|$)/) deb = 1
				if ($i ~ /^Suites:/) { n = split($i, a, /[ \t]+/); for (k = 2; k <= n; k++) if (a[k] == s) ok = 1 }
			  }
			  if (deb && ok && u != "") { print u; exit } }' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		sed 's/\[[^]]*\]//' "$f" | awk -v s="$1" '$1 == "deb" && $3 == s { print $2 }'
	done
}
MIRROR=$(mirror_for $SUITE | head -1)
SECURITY=$(mirror_for $SUITE-security | head -1)
[ -n "$MIRROR" ] || { say "no apt source for $SUITE in /etc/apt: cannot build the image"; exit 1; }

KEY=$( { cat "$0" "$HERE/runner"; echo "$DEBS $MIRROR $SECURITY $SIZE"; } | sha256sum | cut -c1-16)
IMG=$CACHE/$SUITE-$KEY
if [ "${1:-}" = --cached ]; then   # only says whether the image is in the cache
	[ -f "$IMG/complete" ] && echo "$IMG"
	exit $([ -f "$IMG/complete" ] && echo 0 || echo 1)
fi
if [ -f "$IMG/complete" ]; then
	say "image $IMG (cached)"
	[ -z "${GEN_VM_IMAGE_STATE:-}" ] || echo cached > "$GEN_VM_IMAGE_STATE"
	echo "$IMG"
	exit 0
fi

for tool in debootstrap mke2fs; do
	command -v $tool > /dev/null || { say "needs $tool (make check-vm installs it)"; exit 1; }
done
mkdir -p "$CACHE"
WORK=$(mktemp -d "$CACHE/build.XXXXXX")
ROOT=$WORK/root
cleanup() {
	local m
	for m in "$ROOT/dev" "$ROOT/proc" "$ROOT/sys"; do
		mountpoint -q "$m" 2>/dev/null && umount -l "$m"
	done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
start=$SECONDS

say "building the image: debootstrap --variant=minbase $SUITE from $MIRROR (log: $WORK/build.log)"
debootstrap --variant=minbase $SUITE "$ROOT" "$MIRROR" > "$WORK/build.log" 2>&1 ||
	{ tail -20 "$WORK/build.log" >&2; say "debootstrap failed"; exit 1; }
say "debootstrap done after $((SECONDS - start)) s"

{
	echo "deb $MIRROR $SUITE main"
	echo "deb $MIRROR $SUITE-updates main"
	[ -z "$SECURITY" ] || echo "deb $SECURITY $SUITE-security main"
} > "$ROOT/etc/apt/sources.list"
printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"
mount -t proc proc "$ROOT/proc"
mount --bind /dev "$ROOT/dev"
mount -t sysfs sysfs "$ROOT/sys"
in_root() { chroot "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 "$@"; }
{
	in_root apt-get update -q &&
	in_root apt-get install -y -q --no-install-recommends $DEBS &&
	in_root apt-get clean
} >> "$WORK/build.log" 2>&1 || { tail -20 "$WORK/build.log" >&2; say "apt-get in the image failed"; exit 1; }
say "kernel, systemd and gen's packages installed after $((SECONDS - start)) s"
umount "$ROOT/sys" "$ROOT/dev" "$ROOT/proc"
rm -f "$ROOT/usr/sbin/policy-rc.d"

# The guest: root on /dev/vda, no password on the serial console (the VM
# has no network), and the runner that starts the tree's tests/vm/guest.sh.
echo gen-vm > "$ROOT/etc/hostname"
echo '/dev/vda / ext4 rw,errors=remount-ro 0 1' > "$ROOT/etc/fstab"
in_root passwd -d root > /dev/null
install -m 0755 "$HERE/runner" "$ROOT/usr/local/sbin/gen-vm-runner"
cat > "$ROOT/etc/systemd/system/gen-vm-runner.service" <<'UNIT'
[Unit]
Description=gen check-vm: run the tree's tests/vm/guest.sh, then power off
After=basic.target systemd-user-sessions.service
[Service]
Type=exec
ExecStart=/usr/local/sbin/gen-vm-runner
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=infinity
[Install]
WantedBy=multi-user.target
UNIT
in_root systemctl enable gen-vm-runner.service > /dev/null 2>&1
in_root systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
	fstrim.timer > /dev/null 2>&1 || true

cp "$ROOT"/boot/vmlinuz-* "$WORK/vmlinuz"
cp "$ROOT"/boot/initrd.img-* "$WORK/initrd.img"
chmod 644 "$WORK/vmlinuz" "$WORK/initrd.img"
mke2fs -q -t ext4 -L gen-vm -d "$ROOT" "$WORK/rootfs.img" "$SIZE" >> "$WORK/build.log" 2>&1 ||
	{ tail -5 "$WORK/build.log" >&2; say "mke2fs failed"; exit 1; }
rm -rf "$ROOT"
mkdir -p "$IMG.new"
mv "$WORK/rootfs.img" "$WORK/vmlinuz" "$WORK/initrd.img" "$IMG.new/"
echo "$DEBS" > "$IMG.new/packages"
touch "$IMG.new/complete"
rm -rf "$IMG"
mv "$IMG.new" "$IMG"
# Images of older recipes are this script's own: only the newest is kept.
for old in "$CACHE/$SUITE"-*; do
	[ "$old" = "$IMG" ] || rm -rf "$old"
done
say "image $IMG built in $((SECONDS - start)) s"
[ -z "${GEN_VM_IMAGE_STATE:-}" ] || echo "built in $((SECONDS - start)) s" > "$GEN_VM_IMAGE_STATE"
echo "$IMG"
