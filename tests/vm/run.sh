#!/usr/bin/env bash
# make check-vm: boots Debian 12 (systemd as PID 1, pure cgroup v2,
# Debian's kernel) under qemu, with a copy of this tree, and runs
# tests/vm/guest.sh there: build, make install, gend through its systemd
# unit, [limits] on the generation's cgroup, systemctl restart with a live
# generation, then make check. Prints the suite's result and times; fails
# when anything in the guest failed. Root (debootstrap, the image cache).
#   VM_DEBS="..." tests/vm/run.sh
# GEN_VM_ACCEL=tcg skips the KVM probe; GEN_VM_TIMEOUT bounds the guest
# (seconds, default 3600); GEN_VM_KEEP=1 keeps the whole temp dir. The
# guest's logs are copied to GEN_VM_LOGS (default /var/tmp/gen-vm-logs).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TIMEOUT=${GEN_VM_TIMEOUT:-3600}
say() { echo "check-vm: $*"; }
[ "$(id -u)" = 0 ] || { say "needs root (debootstrap, the image cache in /var/cache/gen-vm)"; exit 1; }
command -v qemu-system-x86_64 > /dev/null || { say "needs qemu-system-x86_64 (make check-vm installs it)"; exit 1; }

TMP=$(mktemp -d /tmp/gen-vm.XXXXXX)
QPID=
stop_qemu() {
	[ -n "$QPID" ] || return 0
	kill -TERM "$QPID" 2>/dev/null
	for _ in $(seq 50); do kill -0 "$QPID" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$QPID" 2>/dev/null
	wait "$QPID" 2>/dev/null
	QPID=
}
cleanup() {
	local rc=$?
	stop_qemu
	if [ "${GEN_VM_KEEP:-0}" = 1 ]; then say "kept $TMP"; else rm -rf "$TMP"; fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# qemu in the background, bounded: returns its status, or 124 when it was
# still running at the deadline (then it is stopped).
run_qemu() {  # SECONDS ARGS...
	local limit=$1 start=$SECONDS rc; shift
	qemu-system-x86_64 -nodefaults -display none -no-reboot -nic none "$@" 2>> "$TMP/qemu.err" &
	QPID=$!
	while kill -0 "$QPID" 2>/dev/null; do
		if [ $((SECONDS - start)) -ge "$limit" ]; then stop_qemu; return 124; fi
		[ -n "${FOLLOW:-}" ] && follow
		sleep 1
	done
	wait "$QPID"; rc=$?
	QPID=
	return $rc
}
shown=0
follow() {  # the guest's progress lines, as they come
	local n
	[ -f "$TMP/results/progress" ] || return 0
	n=$(wc -l < "$TMP/results/progress")
	[ "$n" -gt "$shown" ] && tail -n +$((shown + 1)) "$TMP/results/progress" | head -n $((n - shown)) |
		while read -r l; do say "guest: $l"; done
	shown=$n
}

t0=$SECONDS
IMG=$(GEN_VM_IMAGE_STATE=$TMP/image-state "$ROOT/tests/vm/image.sh") || exit 1
t_image=$((SECONDS - t0))

# KVM when it really runs a guest: a kernel that finds no root panics and
# (panic=-1, -no-reboot) ends qemu within seconds; a KVM that stalls does not.
ACCEL=tcg CPU=max why="GEN_VM_ACCEL=tcg"
if [ "${GEN_VM_ACCEL:-}" != tcg ]; then
	why="no usable /dev/kvm"
	if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
		t=$SECONDS
		run_qemu 20 -accel kvm -cpu host -m 256 -serial "file:$TMP/kvm-probe.log" \
			-kernel "$IMG/vmlinuz" -append "console=ttyS0 panic=-1 root=/dev/gen-vm-none"
		rc=$?
		if [ $rc -ne 124 ] && grep -q "Kernel panic" "$TMP/kvm-probe.log"; then
			ACCEL=kvm CPU=host why="a probe boot reached the kernel's panic in $((SECONDS - t)) s"
		elif [ $rc -eq 124 ]; then
			why="KVM opens but a probe boot stalled (no kernel panic within 20 s)"
		else
			why="KVM probe failed (qemu status $rc: $(tail -1 "$TMP/qemu.err"))"
		fi
	fi
fi
say "accelerator: $ACCEL ($why)"

# The tree as it is now, committed or not, without build output.
mkdir -p "$TMP/tree" "$TMP/results"
if git -C "$ROOT" rev-parse --git-dir > /dev/null 2>&1; then
	(cd "$ROOT" && git ls-files -z -co --exclude-standard | tar --null --ignore-failed-read -T - -cf -) |
		tar -xf - -C "$TMP/tree"
else
	tar -C "$ROOT" --exclude=./build --exclude=./build-san --exclude=./.git -cf - . | tar -xf - -C "$TMP/tree"
fi

say "booting $IMG with $ACCEL, 2 CPUs; the guest's console: $TMP/console.log"
t1=$SECONDS
FOLLOW=1 run_qemu "$TIMEOUT" -accel "$ACCEL" -cpu "$CPU" -smp 2 -m 4096 \
	-serial "file:$TMP/console.log" \
	-kernel "$IMG/vmlinuz" -initrd "$IMG/initrd.img" -append "root=/dev/vda rw console=ttyS0 panic=-1" \
	-drive "file=$IMG/rootfs.img,if=virtio,format=raw,snapshot=on" \
	-virtfs "local,path=$TMP/tree,mount_tag=tree,security_model=none,readonly=on" \
	-virtfs "local,path=$TMP/results,mount_tag=results,security_model=none"
qrc=$?
follow
t_vm=$((SECONDS - t1))
R=$TMP/results

if [ $qrc -eq 124 ]; then
	say "the guest did not finish within $TIMEOUT s; its console's last lines:"
	tail -30 "$TMP/console.log"
fi
if [ ! -f "$R/guest.log" ]; then
	say "the guest never started its tests (qemu status $qrc); its console's last lines:"
	tail -40 "$TMP/console.log"
	cat "$TMP/qemu.err"
	exit 1
fi
echo "== the systemd checks in the guest"
grep -E '^(ok|not ok) - ' "$R/guest.log" | sed 's/^/   /'
if [ -f "$R/check.log" ]; then
	echo "== make check in the guest (the failures, if any)"
	grep -E '^ *not ok|^== ' "$R/check.log" | grep -B1 'not ok' | sed 's/^/   /'
fi
read -r cp cf 2>/dev/null < "$R/checks" || { cp=$(grep -c '^ok - ' "$R/guest.log"); cf=$(( $(grep -c '^not ok - ' "$R/guest.log") + 1 )); }
suite_line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$R/check.log" 2>/dev/null | tail -1)
time_of() { awk -v k="$1" '$1 == k {print $2}' "$R/times" 2>/dev/null; }
echo
say "image: $(cat "$TMP/image-state" 2>/dev/null) ($t_image s)"
say "VM ($ACCEL): $t_vm s in all; boot $(time_of boot) s, build $(time_of build) s, install $(time_of install) s, restart $(time_of restart) s, suite $(time_of suite) s"
say "systemd checks: $cp passed, $cf failed"
say "suite in the VM: ${suite_line:-no result (see $R/check.log)}"
sp=$(awk '{print $1}' <<<"$suite_line") sf=$(awk '{print $3}' <<<"$suite_line")
[ -n "$sp" ] || { sp=0 sf=1; }
LOGS=${GEN_VM_LOGS:-/var/tmp/gen-vm-logs}
rm -rf "$LOGS" && mkdir -p "$LOGS" && cp "$R"/*.log "$TMP/console.log" "$LOGS/" 2>/dev/null &&
	say "the guest's logs (this run's; the next replaces them): $LOGS"
say "total $((SECONDS - t0)) s"
echo "$((cp + sp)) passed, $((cf + sf)) failed"
[ "$cf" -eq 0 ] && [ "$sf" -eq 0 ] && [ "$(cat "$R/exit" 2>/dev/null)" = 0 ]
