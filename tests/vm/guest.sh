#!/usr/bin/env bash
# Runs inside the check-vm guest (Debian 12, systemd as PID 1, pure cgroup
# v2), started by the image's gen-vm-runner service:
#   guest.sh TREE RESULTS
# TREE is a read-only copy of the source tree; RESULTS is shared with the
# host. It builds, installs, starts gend through the shipped unit, deploys
# a service with [limits], restarts gend with a live generation, then runs
# make check. Every step is bounded in time. Writes RESULTS/guest.log
# (these checks, "ok - ..." / "not ok - ..."), RESULTS/check.log (make
# check), RESULTS/times and RESULTS/progress.
set -u
TREE=$1 RES=$2
# Below a world-traversable directory: a contained generation runs as an
# unprivileged host uid and cannot enter /root (0700).
SRC=/srv/gen
SVC=vmt
PORT=8080
UNITCG=/sys/fs/cgroup/system.slice/gen-generations.scope
FAILED=0 PASSED=0
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8

exec > >(tee -a "$RES/guest.log") 2>&1
progress() { echo "# $*"; echo "$*" >> "$RES/progress"; }
ok() { echo "ok - $*"; PASSED=$((PASSED + 1)); }
notok() { echo "not ok - $*"; FAILED=$((FAILED + 1)); }
check() { local name=$1; shift; if "$@"; then ok "$name"; else notok "$name"; fi; }
timed() {  # NAME COMMAND...: runs it, records its time
	local name=$1 t=$SECONDS rc; shift
	"$@"; rc=$?
	echo "$name $((SECONDS - t))" >> "$RES/times"
	return $rc
}
get() { curl -s -m 5 "http://127.0.0.1:$PORT$1"; }
main_pid() { systemctl show -P MainPID gend; }
show_cgroups() {  # the unit's cgroup tree: processes and controllers
	echo "# cgroup tree of gen-generations.scope:"
	find "$UNITCG" -type d 2>/dev/null | while read -r d; do
		echo "#   ${d#$UNITCG}/ procs: $(tr '\n' ' ' < "$d/cgroup.procs") subtree_control: $(cat "$d/cgroup.subtree_control")"
	done
}

progress "booted after $(cut -d' ' -f1 /proc/uptime) s of guest uptime"
echo "boot $(cut -d. -f1 /proc/uptime)" >> "$RES/times"
echo "# kernel $(uname -r), $(systemctl --version | head -1), $(iptables -V)"
check "systemd is PID 1" [ "$(cat /proc/1/comm)" = systemd ]
check "pure cgroup v2: /sys/fs/cgroup is cgroup2 and no v1 hierarchy is mounted" \
	bash -c "[ \"\$(stat -fc %T /sys/fs/cgroup)\" = cgroup2fs ] && ! grep -q ' cgroup ' /proc/mounts"
check "iptables is iptables-nft" bash -c "iptables -V | grep -q nf_tables"

# Leaves no generation, rule or namespace behind for make check (whose
# tests skip when GEN-* chains exist): gen retire when gend answers, by
# hand when it does not. Everything here is this script's own.
vm_cleanup() {
	local n
	for n in $(gen list "$SVC" --json 2>/dev/null | jq -r '.services[0].generations[].generation' 2>/dev/null); do
		timeout 60 gen retire "$SVC" "$n" --now --force --wait > /dev/null 2>&1
	done
	timeout 60 systemctl stop gend
	for d in "$UNITCG"/gen/"$SVC"/*/; do
		[ -d "$d" ] || continue
		echo "# removing by hand: cgroup $d"
		echo 1 > "$d/cgroup.kill"
		for _ in $(seq 50); do [ -s "$d/cgroup.procs" ] || break; sleep 0.1; done
	done
	find "$UNITCG/gen" -depth -mindepth 1 -type d -exec rmdir {} \; 2>/dev/null
	for ns in $(ip netns list | awk '{print $1}' | grep "^gen-$SVC-"); do
		echo "# removing by hand: netns $ns"; ip netns del "$ns"
	done
	for l in $(ip -o link show type veth | awk -F': ' '{print $2}' | cut -d@ -f1 | grep '^g'); do
		ip link del "$l"
	done
	for table in nat filter; do
		iptables -w 5 -t $table -S | grep -E '^-A [A-Z]+ .*-j GEN-' |
			while read -r _ rule; do eval "iptables -w 5 -t $table -D $rule"; done
		for c in $(iptables -w 5 -t $table -S | awk '/^-N GEN-/ {print $2}'); do iptables -w 5 -t $table -F "$c"; done
		for c in $(iptables -w 5 -t $table -S | awk '/^-N GEN-/ {print $2}'); do iptables -w 5 -t $table -X "$c"; done
	done
	systemctl reset-failed gend 2>/dev/null
	return 0
}

progress "copying the tree and building"
rm -rf "$SRC" && cp -a "$TREE" "$SRC" && rm -rf "$SRC/build" "$SRC/build-san" && chmod -R a+rX "$SRC"
cd "$SRC" || exit 1
timed build timeout 1200 make -j2 all tools > "$RES/build.log" 2>&1
check "make all tools" [ $? -eq 0 ] || { tail -30 "$RES/build.log"; exit 1; }
timed install timeout 300 make install > "$RES/install.log" 2>&1
check "make install" [ $? -eq 0 ] || { tail -30 "$RES/install.log"; exit 1; }
systemctl daemon-reload
systemd-tmpfiles --create /usr/local/lib/tmpfiles.d/gen.conf
check "tmpfiles.d made /run/gen 0700, /var/lib/gen 0755, /var/log/gen 0750" \
	[ "$(stat -c %a /run/gen /var/lib/gen /var/log/gen | tr '\n' ' ')" = "700 755 750 " ]

progress "gend through its unit"
mkdir -p /etc/gen
cat > /etc/gen/$SVC.policy <<POLICY
[service]
exec = $SRC/build/sample
[listen]
port = $PORT:9501/tcp
[ready]
probe = http GET /health 200
timeout = 10s
[drain]
settle = 200ms
timeout = 30s
[limits]
memory = 64M
pids = 32
cpu = 0.5
POLICY
timeout 120 systemctl start gend
check "systemctl start gend (Type=notify: returns once gend said READY=1)" [ "$(systemctl is-active gend)" = active ]
check "... its status line comes from gend (STATUS=)" bash -c "systemctl show -P StatusText gend | grep -q '^serving 1 service, 0 generations'"
pid1=$(main_pid)
check "... gend moved itself into gen/supervisor of gen-generations.scope (delegated)" \
	grep -qx "0::/system.slice/gen-generations.scope/gen/supervisor" "/proc/$pid1/cgroup"
check "... the journal has its lines at their priority (ready: info, 6)" \
	bash -c "journalctl -t gend -o json | jq -r 'select(.MESSAGE | test(\"^ready: \")) | .PRIORITY' | grep -qx 6"
check "... and without a visible <N> prefix" bash -c "! journalctl -t gend -o cat | grep -q '^<[0-9]>'"
journalctl -t gend -o cat | sed 's/^/#   gend: /'

out=$(timeout 120 gen new $SVC 2>&1); rc=$?
echo "$out" | sed 's/^/#   /'
check "gen new $SVC (the installed gend, profiles from /usr/local/share/gen/profiles)" [ $rc -eq 0 ]
check "... generation 1 answers on 127.0.0.1:$PORT" grep -q "generation 1" <<<"$(get /)"
G1=$UNITCG/gen/$SVC/1
check "... memory = 64M is memory.max of its cgroup" [ "$(cat "$G1/memory.max" 2>&1)" = 67108864 ]
check "... pids = 32 is pids.max" [ "$(cat "$G1/pids.max" 2>&1)" = 32 ]
check "... cpu = 0.5 is cpu.max" [ "$(cat "$G1/cpu.max" 2>&1)" = "50000 100000" ]
check "... the scope's cgroup enables memory, pids, cpu for gen/" \
	bash -c "for c in memory pids cpu; do grep -qw \$c '$UNITCG/cgroup.subtree_control' || exit 1; done"
. /usr/local/share/bash-completion/completions/gen
COMP_WORDS=(gen retire "$SVC" ""); COMP_CWORD=3; COMPREPLY=(); _gen
check "bash completion offers generation 1 of $SVC (from gend)" [ "${COMPREPLY[*]}" = 1 ]
COMP_WORDS=(gen s); COMP_CWORD=1; COMPREPLY=(); _gen
check "... and commands" [ "${COMPREPLY[*]}" = "switch status" ]
show_cgroups

progress "systemctl restart gend with generation 1 live"
# A client during the restart, until 2 s after it (60 s at most).
rm -f /tmp/restart-done
( n=0 fails=0 end=$((SECONDS + 60))
  while [ ! -e /tmp/restart-done ] && [ $SECONDS -lt $end ]; do
	curl -s -m 2 "http://127.0.0.1:$PORT/" | grep -q "generation 1" || fails=$((fails + 1))
	n=$((n + 1)); sleep 0.05
  done
  echo "$n $fails" > /tmp/restart-client ) &
client=$!
t=$SECONDS
timeout 120 systemctl restart gend; rc=$?
echo "restart $((SECONDS - t))" >> "$RES/times"
sleep 2
touch /tmp/restart-done
pid2=$(main_pid)
systemctl status gend --no-pager -l 2>&1 | sed 's/^/#   /'
journalctl -u gend -t gend -o short-monotonic --no-pager | tail -25 | sed 's/^/#   /'
show_cgroups
check "systemctl restart gend succeeds with a live generation" [ $rc -eq 0 ]
check "... a new gend runs (active, new main PID, in gen/supervisor)" \
	bash -c "[ \"\$(systemctl is-active gend)\" = active ] && [ '$pid2' != 0 ] && [ '$pid2' != '$pid1' ] &&
		grep -qx 0::/system.slice/gen-generations.scope/gen/supervisor /proc/$pid2/cgroup"
check "... generation 1 kept running in its cgroup" [ -n "$(cat "$G1/cgroup.procs" 2>/dev/null)" ]
wait $client
read -r n fails < /tmp/restart-client
check "... and kept serving: $fails of $n requests failed during the restart" bash -c "[ ${n:-0} -gt 0 ] && [ ${fails:-1} = 0 ]"
if [ "$(systemctl is-active gend)" = active ]; then
	out=$(timeout 120 gen new $SVC 2>&1); rc=$?
	echo "$out" | sed 's/^/#   /'
	check "the restarted gend deploys generation 2" [ $rc -eq 0 ]
	check "... with its limits" [ "$(cat "$UNITCG/gen/$SVC/2/memory.max" 2>&1)" = 67108864 ]
	check "... and it answers" grep -q "generation 2" <<<"$(get /)"
fi
timeout 120 systemctl stop gend
check "systemctl stop gend (STOPPING=1) stops gend alone" [ "$(systemctl is-active gend)" != active ]
vm_cleanup
check "nothing of this part is left (GEN-* chains, namespaces)" \
	bash -c "! iptables -w 5 -t nat -S | grep -q GEN- && [ -z \"\$(ip netns list)\" ]"

progress "make check"
t=$SECONDS
# Under TCG the CPU itself is emulated, several times slower: the few
# bounds that are about time (a stock server ready within 2 s) stretch.
[ "$(systemd-detect-virt 2>/dev/null)" = qemu ] && export GEN_TEST_TIME_SCALE=5
timeout 2700 make check > "$RES/check.log" 2>&1
suite=$?
echo "suite $((SECONDS - t))" >> "$RES/times"
echo $suite > "$RES/suite-exit"
tail -1 "$RES/check.log"
progress "done: $PASSED passed, $FAILED failed here; suite exit $suite"
echo "$PASSED $FAILED" > "$RES/checks"
[ "$FAILED" -eq 0 ] && [ "$suite" -eq 0 ]
