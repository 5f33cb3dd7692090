# Shared by the root integration tests, make demo and make bench.
#
# A run is two processes. The outer one stays in the host's network
# namespace: it makes the run's network namespace gen-t<RUN>-host (lo up)
# and cgroup gen-test-<RUN>, runs the test script again inside both
# (nsenter --net only: the mounts stay the host's, so gend sees
# /sys/fs/cgroup and /run/netns), and afterwards removes everything of the
# run, also when the test fails, hangs or is interrupted. The inner one is
# the test: its gend, rules, ip_forward and 127.0.0.1 are the namespace's
# own, so the host's iptables rules and sysctls are never read or changed,
# and a gend serving on the host neither disturbs nor is disturbed by it.
#
# Every object of a run carries its prefix: netns gen-t<RUN>-... (the
# generations' are gen-<service>-<n>, services t<RUN>...), cgroups
# gen-test-<RUN>, veths inside the run's namespace only. Results are
# TAP-like lines: "ok - ...", "not ok - ...", "skip - ...".
set -u

B=$(cd "${B:?build directory}" && pwd)
# The sample service and the load are fixtures, not under test: from the
# plain build (LeakSanitizer cannot work inside a seccomp-confined generation).
TOOLS=$(cd "${TOOLS:-$B}" && pwd)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SCRIPT=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
SCRIPT_ARGS=("$@")
# The inner process: started by this run's outer one (its parent), in the
# run's namespace. Anything else, a test started by a test included, is an
# outer process of a run of its own.
if [ "${GEN_TEST_RUN:-}" = "$PPID" ] && [ "${GEN_TEST_NETNS:-}" = "gen-t$PPID-host" ]; then
	INSIDE=1 RUN=$GEN_TEST_RUN T=$GEN_TEST_DIR
else
	# No run directory yet: preflight makes one. Until then T names nothing,
	# so a script that writes below $T without preflight fails, not /.
	INSIDE=0 RUN=$$ T=/nonexistent-gen-test-no-run-dir
fi
unset GEN_TEST_RUN GEN_TEST_NETNS GEN_TEST_DIR
SVC=t$RUN
HOST_NS=gen-t$RUN-host
POOL=10.213.240.0/20
PORT=$((18000 + RUN % 1000))
CLIENT_NS=gen-t$RUN-cli
CLIENT_IF=gt${RUN}c
CLIENT_HOST_ADDR=10.213.239.253
FAILED=0
GEND=
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
	[ "$INSIDE" = 1 ] || run_outside       # does not return
	# Inside: only in the run's own namespace, never in the host's.
	if [ "$(stat -L -c %i /proc/self/ns/net)" != "$(stat -L -c %i "/run/netns/$HOST_NS" 2>/dev/null)" ]; then
		notok "$(basename "$0") runs in network namespace $HOST_NS"
		exit 1
	fi
	mkdir -p "$T"/{etc,run,state,log,markers}
	trap cleanup EXIT
	trap 'exit 1' INT TERM
	tools_outside_tmp
}

# A generation gets a private /tmp by default: a tree cloned below /tmp
# (as CI may do) would hide the test programs from it. They are copied,
# readable by every uid (a contained generation's root is not the host's),
# to a run directory below /var/tmp, removed with the run.
tools_outside_tmp() {
	local d
	case $TOOLS/ in /tmp/*) ;; *) return 0 ;; esac
	d=$(extra_dir /var/tmp) || { notok "a run directory below /var/tmp for the test programs"; exit 1; }
	cp -p "$TOOLS"/* "$d"/ 2>/dev/null
	chmod -R a+rX "$d"
	TOOLS=$d
}

# A directory outside $T (e.g. for a program that must not live below
# /tmp): made here, removed with the run.
extra_dir() {  # PARENT
	local d
	d=$(mktemp -d "$1/gen-test.XXXXXX") || return 1
	echo "$d" >> "$T/extra-dirs"
	echo "$d"
}

# The outer process: the run's namespace and cgroup, the test inside them,
# then the removal of all of it. GEN_TEST_TIMEOUT bounds the test (600 s).
run_outside() {
	local deadline=$((SECONDS + ${GEN_TEST_TIMEOUT:-600}))
	INNER= STOPPED=
	trap outer_cleanup EXIT
	trap 'STOPPED="interrupted"' INT TERM
	if ! T=$(mktemp -d /tmp/gen-test.XXXXXX) || ! ip netns add "$HOST_NS" ||
	   ! ip -n "$HOST_NS" link set lo up || ! mkdir -p "$TESTCG/test"; then
		notok "make the run's temp dir, network namespace $HOST_NS and cgroup $TESTCG"
		exit 1
	fi
	# In the run's cgroup before it starts anything, so everything it
	# starts can be killed by cgroup.
	GEN_TEST_RUN=$RUN GEN_TEST_NETNS=$HOST_NS GEN_TEST_DIR=$T \
		bash -c 'echo $$ > "$1/cgroup.procs" && exec nsenter --net="/run/netns/$2" bash "${@:3}"' \
		inner "$TESTCG/test" "$HOST_NS" "$SCRIPT" "${SCRIPT_ARGS[@]}" &
	INNER=$!
	while [ -z "$STOPPED" ] && kill -0 "$INNER" 2>/dev/null; do
		[ $SECONDS -lt $deadline ] || STOPPED="still running after ${GEN_TEST_TIMEOUT:-600} s"
		sleep 0.2
	done
	[ -z "$STOPPED" ] || { notok "$(basename "$0"): $STOPPED; stopped"; stop_inner; }
	wait "$INNER"
	exit $?
}

# TERM to the test (it stops its gend in its trap); after STOP_GRACE
# seconds (30), KILL to all of the run.
stop_inner() {
	kill -TERM "$INNER" 2>/dev/null
	for _ in $(seq $((${STOP_GRACE:-30} * 5))); do kill -0 "$INNER" 2>/dev/null || return 0; sleep 0.2; done
	kill_run
}

kill_run() {  # every process of the run's cgroup
	local cg
	[ -d "$TESTCG" ] || return 0
	if [ -f "$TESTCG/cgroup.kill" ]; then
		echo 1 > "$TESTCG/cgroup.kill"
	else
		for cg in $(find "$TESTCG" -type d); do xargs -r kill -KILL < "$cg/cgroup.procs" 2>/dev/null; done
	fi
	for _ in $(seq 100); do grep -q '^populated 0' "$TESTCG/cgroup.events" && return 0; sleep 0.05; done
}

outer_cleanup() {
	local rc=$? d ns left
	trap '' INT TERM
	[ -n "$INNER" ] && kill -0 "$INNER" 2>/dev/null && stop_inner
	# Processes: by cgroup (the test, its gend, generations, loads), never by name.
	kill_run
	[ -d "$TESTCG" ] && find "$TESTCG" -depth -type d -exec rmdir {} + 2>/dev/null
	for d in "${V1CGS[@]}"; do
		for _ in $(seq 50); do
			[ -d "$d" ] || break
			find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
			sleep 0.05
		done
	done
	# Network namespaces of this run: its own, the client's, the
	# generations'. Their links, rules and sysctls go with them.
	for ns in $(run_netns); do ip netns del "$ns"; done
	if [ -n "$T" ]; then
		[ -f "$T/extra-dirs" ] && grep -E '^/(var/)?tmp/gen-test\.[A-Za-z0-9]+$' "$T/extra-dirs" | xargs -r rm -rf
		rm -rf "$T"
	fi
	left="$(run_netns) $( { [ -d "$TESTCG" ] && echo "$TESTCG"; for d in "${V1CGS[@]}"; do [ -d "$d" ] && echo "$d"; done; } )"
	[ -n "${left// /}" ] && { notok "$(basename "$0"): nothing of the run is left (left: $(echo $left))"; rc=1; }
	exit $((rc ? rc : FAILED > 0))
}

run_netns() {
	ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^gen-(t$RUN|$SVC)[a-z]*-[0-9a-z]+\$"
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
		# The sample's task markers are outside its release directory.
		mkdir -p "$T/markers"; printf '[sandbox]\nwritable = %s/markers\n' "$T"
		for l in "$@"; do printf '%s\n' "$l"; done
	} > "$T/etc/$name.policy"
}

# A shell prefix that puts the process it runs in (a gend) into the
# run's cgroups: the v2 leaf V2CG and, on hybrid hosts, the run's v1
# limit hierarchies, so that everything it makes there is the run's too.
join_run_cgroups() {  # V2CG
	local d join
	mkdir -p "$1" || return 1
	join="echo \$\$ > '$1/cgroup.procs' && "
	for d in "${V1CGS[@]}"; do mkdir -p "$d" && join+="echo \$\$ > '$d/cgroup.procs' && "; done
	echo "$join"
}

start_gend() {
	local join
	join=$(join_run_cgroups "$TESTCG/gen/supervisor")
	# gend starts in a cgroup of the test's own: its generations go below it.
	# It starts in the leaf gen/supervisor, where it would move itself anyway:
	# on pure cgroup v2, once gend has enabled controllers below $TESTCG, no
	# process may join $TESTCG itself (EBUSY), but a restarted gend still
	# joins its leaf. GEND_WRAP runs before it (e.g. unshare), GEND_PRE in it
	# just before exec.
	${GEND_WRAP:-} bash -c "$join ${GEND_PRE:-} exec '$B/gend' -c '$T/etc' -r '$T/run' \
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

# SIGKILL: gend dies where it stands, without a last word (the chaos and
# race tests). Its socket file stays behind; it goes too, so that
# start_gend waits for the next gend's own.
kill_gend() {
	[ -n "$GEND" ] || return 0
	kill -KILL "$GEND" 2>/dev/null
	wait "$GEND" 2>/dev/null
	GEND=
	rm -f "$T/run/gend.sock"
}

json_field() {  # SERVICE GEN FIELD: from gen list --json
	G list "$1" --json | jq -r --argjson n "$2" --arg f "$3" \
		'.services[0].generations[] | select(.generation == $n) | .[$f]'
}

make_client_host() {
	# A separate network namespace that plays an external client host,
	# linked to the run's namespace (the "host" of this test).
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

# A link of the run's namespace is gone (ip, not /sys/class/net: sysfs is
# mounted for the host's namespace and shows the host's links).
link_gone() { [ -n "$1" ] && ! ip link show dev "$1" > /dev/null 2>&1; }
# A retired generation's link goes with its namespace, in the kernel's time.
link_goes() { for _ in $(seq 30); do link_gone "$1" && return 0; sleep 0.1; done; return 1; }

no_sanitizer_reports() {
	! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T/gend.log"
}

# The test's own trap; the outer process removes the rest. A test may
# define test_cleanup, run first.
cleanup() {
	local rc=$?
	trap '' INT TERM
	declare -F test_cleanup > /dev/null && test_cleanup
	stop_gend
	if [ "$FAILED" -gt 0 ] || [ $rc -ne 0 ]; then
		echo "# gend log of the failed test:"; sed 's/^/#   /' "$T/gend.log" 2>/dev/null | tail -40
	fi
	exit $((rc ? rc : FAILED > 0))
}
