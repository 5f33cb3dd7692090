# Shared by the root integration tests. Every kernel object a test makes
# carries its per-run prefix (service t<PID>..., netns gen-t<PID>-..., veth
# g..., cgroup gen-test-<PID>), and the trap removes all of it, also when
# the test fails. Results are TAP-like lines: "ok - ...", "not ok - ...".
set -u

B=$(cd "${B:?build directory}" && pwd)
# The sample service and the load are fixtures, not under test: from the
# plain build (LeakSanitizer cannot work inside a seccomp-confined generation).
TOOLS=$(cd "${TOOLS:-$B}" && pwd)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RUN=$$
SVC=${SVC:-t$RUN}
T=$(mktemp -d /tmp/gen-test.XXXXXX)
POOL=10.213.240.0/20
PORT=$((18000 + RUN % 1000))
CLIENT_NS=gen-t$RUN-cli
CLIENT_IF=gt${RUN}c
CLIENT_HOST_ADDR=10.213.239.253
FAILED=0
GEND=
EXTRA_DIRS=()
CG2=$(awk '{for (i = 1; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") print $5; break }}' /proc/self/mountinfo | head -1)
TESTCG=$CG2/gen-test-$RUN
# Hybrid hosts: gend also starts in per-run cgroups of the v1 hierarchies
# that carry limit controllers, so its v1 limit groups are the test's too.
V1CGS=()
for ctl in memory pids cpu; do
	mnt=$(awk -v c=$ctl '{for (i = 1; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup" && ("," $(i + 3) ",") ~ ("," c ",")) print $5; break }}' /proc/self/mountinfo | head -1)
	rel=$(awk -F: -v c=$ctl '("," $2 ",") ~ ("," c ",") {print $3}' /proc/self/cgroup | head -1)
	[ -n "$mnt" ] && [ -n "$rel" ] && V1CGS+=("$mnt${rel%/}/gen-test-$RUN")
done

ok() { echo "ok - $*"; }
notok() { echo "not ok - $*"; FAILED=$((FAILED + 1)); }
check() { local name=$1; shift; if "$@"; then ok "$name"; else notok "$name"; fi; }
skip_all() { echo "skip - $*"; exit 0; }
G() { "$B/gen" -s "$T/run/gend.sock" "$@"; }
quiet() { "$@" > /dev/null 2>&1; }

preflight() {
	[ "$(id -u)" = 0 ] || skip_all "$(basename "$0"): needs root (CI runs it as root)"
	[ -n "$CG2" ] || skip_all "no cgroup2 mount"
	if iptables -w 5 -t nat -S 2>/dev/null | grep -q '^-N GEN-' ||
	   iptables -w 5 -S 2>/dev/null | grep -q '^-N GEN-'; then
		skip_all "GEN-* chains exist (a gend serves on this host); root tests leave it alone"
	fi
	ORIG_FORWARD=$(cat /proc/sys/net/ipv4/ip_forward)
	mkdir -p "$T"/{etc,run,state,log,markers}
	trap cleanup EXIT
	trap 'exit 1' INT TERM
}

write_policy() {  # NAME [extra lines...]: an extra key replaces its default
	local name=$1 sec= l k; shift
	local -A given=()
	for l in "$@"; do
		case $l in
		\[*\]) sec=$l ;;
		*=*) k=${l%%=*}; given["$sec ${k// /}"]=1 ;;
		esac
	done
	policy_default() { [ -n "${given[$1 $2]:-}" ] || printf '%s = %s\n' "$2" "$3"; }
	{
		printf '[service]\n'; policy_default '[service]' exec "$TOOLS/sample"
		printf 'environment = SAMPLE_MARKERS=%s/markers\n' "$T"
		printf '[listen]\nport = %s:%s/tcp\n' "${POLICY_PORT:-$PORT}" "${INNER_PORT:-9501}"
		printf '[ready]\n'; policy_default '[ready]' probe 'http GET /health 200'
		policy_default '[ready]' timeout 3s
		printf '[drain]\n'; policy_default '[drain]' settle 200ms; policy_default '[drain]' timeout 30s
		for l in "$@"; do printf '%s\n' "$l"; done
	} > "$T/etc/$name.policy"
}

start_gend() {
	local join="" d
	mkdir -p "$TESTCG"
	for d in "${V1CGS[@]}"; do mkdir -p "$d" && join+="echo \$\$ > '$d/cgroup.procs' && "; done
	# gend starts in a cgroup of the test's own: its generations go below it.
	# GEND_WRAP runs before it (e.g. unshare), GEND_PRE in it just before exec.
	${GEND_WRAP:-} bash -c "echo \$\$ > '$TESTCG/cgroup.procs' && $join ${GEND_PRE:-} exec '$B/gend' -c '$T/etc' -r '$T/run' \
		-s '$T/state' -l '$T/log' -p $POOL -P '$ROOT/policy/profiles'" >> "$T/gend.log" 2>&1 &
	GEND=$!
	for _ in $(seq 100); do
		[ -S "$T/run/gend.sock" ] && return 0
		kill -0 "$GEND" 2>/dev/null || break
		sleep 0.05
	done
	echo "gend did not start:"; cat "$T/gend.log"
	return 1
}

stop_gend() {
	[ -n "$GEND" ] || return 0
	kill -TERM "$GEND" 2>/dev/null
	for _ in $(seq 100); do kill -0 "$GEND" 2>/dev/null || break; sleep 0.05; done
	kill -KILL "$GEND" 2>/dev/null
	wait "$GEND" 2>/dev/null
	GEND=
}

json_field() {  # SERVICE GEN FIELD: from gen list --json
	G list "$1" --json | jq -r --argjson n "$2" --arg f "$3" \
		'.services[0].generations[] | select(.generation == $n) | .[$f]'
}

make_client_host() {
	# A separate network namespace that plays an external client host.
	ip netns add "$CLIENT_NS" &&
	ip link add "$CLIENT_IF" type veth peer name eth0 netns "$CLIENT_NS" &&
	ip addr add $CLIENT_HOST_ADDR/30 dev "$CLIENT_IF" && ip link set "$CLIENT_IF" up &&
	ip -n "$CLIENT_NS" addr add 10.213.239.254/30 dev eth0 &&
	ip -n "$CLIENT_NS" link set eth0 up && ip -n "$CLIENT_NS" link set lo up
}

# The route to a generation must go through its own veth link (and so
# nowhere else) before any load is sent.
route_is_ours() {  # ADDR VETH
	ip -o route get "$1" | grep -q "dev $2 "
}

no_sanitizer_reports() {
	! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T/gend.log"
}

cleanup() {
	local rc=$?
	stop_gend
	# Processes: by cgroup, never by name.
	if [ -d "$TESTCG" ]; then
		for cg in $(find "$TESTCG" -mindepth 1 -depth -type d); do
			[ -f "$cg/cgroup.kill" ] && echo 1 > "$cg/cgroup.kill" 2>/dev/null
			for _ in $(seq 50); do [ -s "$cg/cgroup.procs" ] || break; sleep 0.05; done
			rmdir "$cg" 2>/dev/null
		done
		rmdir "$TESTCG" 2>/dev/null
	fi
	for d in "${V1CGS[@]}"; do
		[ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
	done
	# Network namespaces of this run, with the host ends of their links.
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^gen-($SVC|t$RUN)"); do
		peer=$(ip -n "$ns" -o link show eth0 2>/dev/null | sed -n 's/.*eth0@if\([0-9]*\).*/\1/p')
		[ -n "$peer" ] && ip link del "$(ip -o link | awk -F': ' -v i="$peer" '$1 == i {print $2}' | cut -d@ -f1)" 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
	ip link del "$CLIENT_IF" 2>/dev/null
	# GEN-* rules: there were none before this test (preflight), so all are its.
	for table in nat filter; do
		iptables -w 5 -t $table -S 2>/dev/null | grep -E '^-A (PREROUTING|OUTPUT|POSTROUTING|FORWARD|INPUT) .*-j GEN-' |
			while read -r _ rule; do eval "iptables -w 5 -t $table -D $rule"; done
		for c in $(iptables -w 5 -t $table -S 2>/dev/null | awk '/^-N GEN-/ {print $2}'); do
			iptables -w 5 -t $table -F "$c"
		done
		for c in $(iptables -w 5 -t $table -S 2>/dev/null | awk '/^-N GEN-/ {print $2}'); do
			iptables -w 5 -t $table -X "$c"
		done
	done
	[ -n "${ORIG_FORWARD:-}" ] && echo "$ORIG_FORWARD" > /proc/sys/net/ipv4/ip_forward
	if [ "$FAILED" -gt 0 ] || [ $rc -ne 0 ]; then
		echo "# gend log of the failed test:"; sed 's/^/#   /' "$T/gend.log" 2>/dev/null | tail -40
	fi
	rm -rf "$T" "${EXTRA_DIRS[@]}"
	exit $((rc ? rc : FAILED > 0))
}
