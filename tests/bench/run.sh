#!/usr/bin/env bash
# make bench: how long a switch takes through gend, against baselines
# measured in the same run on the same machine:
#   control   gen list of a service without generations: socket + JSON only
#   list      gen list of two generations: + cgroup and conntrack counting
#   raw       iptables-restore --noflush of the same one-chain transaction,
#             by hand, on a scratch chain (what a deploy script would run)
#   switch    gen switch between two ready generations: control + the
#             rule transaction + the old generation's drain start
#   drain CPU gend's CPU time over 5 s while a generation drains behind an
#             open connection, against 5 s of idle gend
# Prints medians and ratios; asserts nothing about speed. Like the tests,
# it runs its gend and the raw transaction in a network namespace of its own.
B=${1:-build}
export B
. "$(dirname "$0")/../integration/lib.sh"
preflight
N=${N:-40}

median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b - a) / 1e6}'; }
timeit() {  # N COMMAND...: one line per run, in ms
	local n=$1 i s; shift
	for i in $(seq "$n"); do
		s=$(date +%s%N); "$@" > /dev/null 2>&1 || { echo "bench: $* failed" >&2; return 1; }
		ms "$s" "$(date +%s%N)"; echo
	done
}

# quiet-procs = 0 keeps the generation switched away from draining, so it
# can be switched back to.
write_policy "$SVC" "[drain]" "quiet-procs = 0" "timeout = 10m"
POLICY_PORT=$((PORT + 1)) write_policy "${SVC}idle"
POLICY_PORT=$((PORT + 2)) write_policy "${SVC}held"
start_gend || exit 1
G new "$SVC" > /dev/null && G new "$SVC" --no-switch > /dev/null || exit 1
route_is_ours "$(json_field "$SVC" 1 address)" "$(json_field "$SVC" 1 veth)" || exit 1

control=$(timeit "$N" G list "${SVC}idle" | median)
list=$(timeit "$N" G list "$SVC" | median)

chain=GEN-BENCH-$RUN
iptables -w 5 -t nat -N "$chain"
raw_switch() {
	printf '*nat\n:%s - [0:0]\n-A %s -j CONNMARK --set-xmark 0x47450001/0xffffffff\n-A %s -p tcp -m tcp --dport %s -j DNAT --to-destination 10.213.240.2:9501\nCOMMIT\n' \
		"$chain" "$chain" "$chain" "$PORT" | iptables-restore --noflush -w 5
}
raw=$(timeit "$N" raw_switch | median)
iptables -w 5 -t nat -F "$chain"; iptables -w 5 -t nat -X "$chain"

switch_ms=$( { for i in $(seq "$N"); do
	to=$(( i % 2 ? 2 : 1 )); s=$(date +%s%N)
	G switch "$SVC" $to > /dev/null || { echo "bench: switch to $to failed" >&2; exit 1; }
	ms "$s" "$(date +%s%N)"; echo
done; } | median)
served=$(curl -s -m 3 "http://127.0.0.1:$PORT/")

cpu_ms() { awk '{printf "%d", ($14 + $15) * 1000 / '"$(getconf CLK_TCK)"'}' "/proc/$GEND/stat"; }
c0=$(cpu_ms); sleep 5; idle_cpu=$(( $(cpu_ms) - c0 ))
G new "${SVC}held" > /dev/null
exec 3<>/dev/tcp/127.0.0.1/$((PORT + 2)); printf 'GET / HTTP/1.0\r\n\r\n' >&3
G new "${SVC}held" > /dev/null; sleep 1.5    # generation 1 drains, its task done
c0=$(cpu_ms); sleep 5; drain_cpu=$(( $(cpu_ms) - c0 ))
held_state=$(json_field "${SVC}held" 1 state)
exec 3>&-

printf '\n%-40s %10s %8s\n' "median of $N runs" "ms" "ratio"
printf '%-40s %10s %8s\n' "control round trip (gen list)" "$control" "1.00"
printf '%-40s %10s %8s\n' "gen list, 2 generations (counting)" "$list" \
	"$(awk -v a="$list" -v b="$control" 'BEGIN {printf "%.2f", a / b}')"
printf '%-40s %10s %8s\n' "raw iptables-restore, same transaction" "$raw" \
	"$(awk -v a="$raw" -v b="$control" 'BEGIN {printf "%.2f", a / b}')"
printf '%-40s %10s %8s\n' "gen switch" "$switch_ms" \
	"$(awk -v a="$switch_ms" -v b="$control" 'BEGIN {printf "%.2f", a / b}')"
printf 'gen switch costs %s x the raw transaction; last answer: %s\n' \
	"$(awk -v a="$switch_ms" -v b="$raw" 'BEGIN {printf "%.2f", a / b}')" "$served"
printf '\n%-40s %10s\n' "gend CPU over 5 s" "ms"
printf '%-40s %10s\n' "idle" "$idle_cpu"
printf '%-40s %10s\n' "one generation draining ($held_state)" "$drain_cpu"
G retire "${SVC}held" 2 --force --wait > /dev/null 2>&1
for _ in $(seq 50); do [ -z "$(json_field "${SVC}held" 1 state)" ] && break; sleep 0.1; done
G retire "$SVC" 1 --force --now --wait > /dev/null 2>&1
G retire "$SVC" 2 --force --now --wait > /dev/null 2>&1
G retire "$SVC" 1 --now --wait > /dev/null 2>&1
G retire "$SVC" 2 --now --wait > /dev/null 2>&1
stop_gend
