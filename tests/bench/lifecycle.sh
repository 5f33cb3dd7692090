#!/usr/bin/env bash
# make bench, B4 and B5: what a generation's kernel objects cost to make
# and to remove, against the same plumbing done by hand.
#   set-up     gend: the request sent -> the "created" event (cgroup, netns,
#              veth pair, addresses, route, the process cloned into its
#              cgroup up to its exec), less a control round trip (gen
#              list of a service without generations).
#              by hand: mkdir of the cgroup, ip netns add, ip link add
#              veth, ip addr/link/route, route_localnet, and a process
#              that joins the cgroup and the netns and execs (true).
#   retire     gend: retire --now of a ready generation holding 1, 100 or
#              1000 processes: the request -> the "retired" event (frozen,
#              killed, cgroup empty and removed, netns let go; the veth
#              pair goes with the netns in the kernel's time, as by hand,
#              and gend deletes the conntrack entries right after).
#              by hand: echo 1 > cgroup.freeze, wait for frozen, echo 1 >
#              cgroup.kill, wait for empty, rmdir, ip netns del (the veth
#              pair goes with the namespace, in the kernel's own time):
#              the floor of what removing it can cost.
#   veth       (for the diagnosis) ip link del of a veth pair whose peer is
#              in a namespace: a synchronous unregister, what gend's
#              teardown no longer waits for (the pair goes with the netns).
B=${1:-build}
export B
. "$(dirname "$0")/../integration/lib.sh"
preflight
. "$(dirname "$0")/common.sh"
N=${N:-10}
PROCS=${PROCS:-1 100 1000}
HAND_NS=gen-t$RUN-hand HAND_IF=gt${RUN}h HAND_CG=$TESTCG/hand
HAND_HOST=10.213.238.1 HAND_GEN=10.213.238.2

ctl() { "$B/ctltime" "$T/run/gend.sock" "$1"; }
# The time stamp of the first line with PATTERN in ctltime's output.
stamp() { awk -v p="$1" 'index($0, p) {print $1; exit}'; }

hand_setup() {
	mkdir "$HAND_CG" &&
	ip netns add "$HAND_NS" &&
	ip link add "$HAND_IF" type veth peer name eth0 netns "$HAND_NS" &&
	echo 1 > "/proc/sys/net/ipv4/conf/$HAND_IF/route_localnet" &&
	ip addr add "$HAND_HOST/30" dev "$HAND_IF" && ip link set "$HAND_IF" up &&
	ip -n "$HAND_NS" link set lo up &&
	ip -n "$HAND_NS" addr add "$HAND_GEN/30" dev eth0 && ip -n "$HAND_NS" link set eth0 up &&
	ip -n "$HAND_NS" route add default via "$HAND_HOST" &&
	bash -c 'echo $$ > "$1/cgroup.procs" && exec ip netns exec "$2" true' - "$HAND_CG" "$HAND_NS"
}

wait_events() {  # CGROUP KEY VALUE: until cgroup.events says so (5 s at most)
	for _ in $(seq 5000); do grep -q "^$2 $3" "$1/cgroup.events" && return 0; sleep 0.001; done
	return 1
}

hand_teardown() {
	echo 1 > "$HAND_CG/cgroup.freeze" && wait_events "$HAND_CG" frozen 1 &&
	echo 1 > "$HAND_CG/cgroup.kill" && wait_events "$HAND_CG" populated 0 &&
	rmdir "$HAND_CG" && ip netns del "$HAND_NS"
	# (the veth pair goes with its peer's namespace)
}

hand_procs() {  # N processes in the hand cgroup, in its netns
	(bash -c 'echo $$ > "$1/cgroup.procs"; for ((i = 1; i < $2; i++)); do sleep 600 & done; exec ip netns exec "$3" sleep 600' \
		- "$HAND_CG" "$1" "$HAND_NS" > /dev/null 2>&1 &)
	for _ in $(seq 500); do [ "$(cat "$HAND_CG/cgroup.procs" | wc -l)" -ge "$1" ] && return 0; sleep 0.01; done
	return 1
}

test_cleanup() { [ -d "$HAND_CG" ] && { echo 1 > "$HAND_CG/cgroup.kill"; sleep 0.2; rmdir "$HAND_CG"; }; true; }

write_policy "$SVC" "[service]" "environment = SAMPLE_TASK_MS=600000" "[limits]" "pids = 4096" "[ready]" "timeout = 10s"
POLICY_PORT=$((PORT + 1)) write_policy "${SVC}idle"
start_gend || exit 1
# Generation 1 serves, as in a deployment: what is measured are the next ones.
G new "$SVC" > /dev/null || exit 1

# A control round trip, what every request costs before it starts.
for i in $(seq "$N"); do ctl '{"cmd":"list","service":"'"${SVC}idle"'"}' | stamp '"ok"'; done > "$T/rtt"
RTT=$(median < "$T/rtt")

# Set-up: made by gend (then removed again: retire --now of a ready one).
: > "$T/setup.gen"; : > "$T/setup.hand"; : > "$T/ready.gen"; : > "$T/veth.hand"
# Each set-up starts with no removal of an earlier one under way in the
# kernel (a namespace's cleanup runs in a worker and takes the locks a
# set-up needs): the retired generation's link gone, 0.1 s of quiet.
quiet_after() {  # LINK
	for _ in $(seq 300); do ip link show dev "$1" > /dev/null 2>&1 || break; sleep 0.01; done
	sleep 0.1
}
for i in $(seq "$N"); do
	quiet_after "$HAND_IF"
	out=$(ctl '{"cmd":"new","service":"'"$SVC"'","switch":false}') || { say "gen new: $out"; exit 1; }
	n=$(echo "$out" | grep -o '"generation":[0-9]*' | head -1 | cut -d: -f2)
	awk -v c="$(echo "$out" | stamp '"event":"created"')" -v r="$RTT" 'BEGIN {printf "%.3f\n", c - r}' >> "$T/setup.gen"
	echo "$out" | stamp '"ok"' >> "$T/ready.gen"
	veth=$(json_field "$SVC" "$n" veth)
	[ -n "$n" ] && ctl '{"cmd":"retire","service":"'"$SVC"'","generation":'"$n"',"now":true,"wait":true}' > /dev/null ||
		{ say "retire of generation $n failed"; exit 1; }
	quiet_after "$veth"
	s=$(now_ms); hand_setup || { say "by-hand set-up failed"; exit 1; }
	awk -v a="$s" -v b="$(now_ms)" 'BEGIN {printf "%.3f\n", b - a}' >> "$T/setup.hand"
	s=$(now_ms); ip link del "$HAND_IF" || { say "ip link del $HAND_IF failed"; exit 1; }
	awk -v a="$s" -v b="$(now_ms)" 'BEGIN {printf "%.3f\n", b - a}' >> "$T/veth.hand"
	hand_teardown || { say "by-hand tear-down failed"; exit 1; }
done
record "set-up: cgroup, netns, veth, addresses, route, process exec'd" "gend" ms lower $(cat "$T/setup.gen")
record "set-up: cgroup, netns, veth, addresses, route, process exec'd" "ip commands" ms lower $(cat "$T/setup.hand")
record "tear-down step: a veth pair deleted (ip link del, synchronous)" "ip link del" ms lower $(cat "$T/veth.hand")
note "lifecycle: control round trip (subtracted from gend's set-up): median $RTT ms; gen new --no-switch up to ready (the probe's first answer included): median $(median < "$T/ready.gen") ms."

# Retire --now of a ready generation holding P processes: the sample
# starts one 600 s task process per request, sent to the generation's own
# address (a namespace this run made).
for p in $PROCS; do
	: > "$T/retire.gen"; : > "$T/retire.hand"
	runs=$N; [ "$p" -ge 1000 ] && runs=$(( (N + 1) / 2 ))
	for i in $(seq "$runs"); do
		out=$(ctl '{"cmd":"new","service":"'"$SVC"'","switch":false}') || { say "gen new: $out"; exit 1; }
		n=$(echo "$out" | grep -o '"generation":[0-9]*' | head -1 | cut -d: -f2)
		addr=$(json_field "$SVC" "$n" address)
		route_is_ours "$addr" "$(json_field "$SVC" "$n" veth)" || exit 1
		[ "$p" -gt 1 ] && { "$B/load" --netns-peer "$addr" 9501 $((p - 1)) 30 0 > /dev/null || exit 1; }
		have=$(json_field "$SVC" "$n" procs)
		[ "$have" -ge "$p" ] || { say "generation $n holds $have processes, not $p"; exit 1; }
		veth=$(json_field "$SVC" "$n" veth)
		quiet_after "$HAND_IF"
		out=$(ctl '{"cmd":"retire","service":"'"$SVC"'","generation":'"$n"',"now":true,"wait":true}') ||
			{ say "retire: $out"; exit 1; }
		echo "$out" | stamp '"state":"retired"' >> "$T/retire.gen"
		quiet_after "$veth"
		hand_setup && hand_procs "$p" || { say "by-hand set-up of $p processes failed"; exit 1; }
		sleep 0.1
		s=$(now_ms); hand_teardown || { say "by-hand tear-down failed"; exit 1; }
		awk -v a="$s" -v b="$(now_ms)" 'BEGIN {printf "%.3f\n", b - a}' >> "$T/retire.hand"
	done
	g="retire --now: request to retired, $p process$([ "$p" = 1 ] || echo es)"
	record "$g" "gen retire --now" ms lower $(cat "$T/retire.gen")
	record "$g" "freeze, kill, rmdir, netns del by hand" ms lower $(cat "$T/retire.hand")
	say "$g: gen $(median < "$T/retire.gen") ms, by hand $(median < "$T/retire.hand") ms"
done
