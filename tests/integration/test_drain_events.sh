#!/usr/bin/env bash
# The drain is event-driven where the kernel has events: a connection that
# held a drain ends it as soon as it closes (a conntrack event, not a
# poll that has backed off to 2 s), and a generation whose processes all
# exit is retired at once although its policy polls its process count
# only every 5 s (cgroup.events and the main process's exit). What has no
# event source is said once in gend's log. A connection open at the drain
# timeout is named, with its peer, in what the forced drain cut.
. "$(dirname "$0")/lib.sh"
preflight

write_policy "$SVC"
POLICY_PORT=$((PORT + 1)) write_policy "${SVC}z" "[drain]" "quiet-procs = 0" \
	"stop-signal = SIGTERM" "poll-interval = 5s"
POLICY_PORT=$((PORT + 2)) write_policy "${SVC}t" "[drain]" "timeout = 2s"
POLICY_PORT=$((PORT + 3)) write_policy "${SVC}p" "[drain]" "poll-interval = 5s"
POLICY_PORT=$((PORT + 4)) write_policy "${SVC}l"
# gend raises its open-files limit (a pidfd per draining process), and
# gives its generations back the one it was started with.
hard=$(ulimit -Hn)
soft=1024
[ "$hard" = unlimited ] || [ "$hard" -gt 1024 ] || soft=$((hard / 2))
ulimit -Sn $soft
start_gend || exit 1

ms_now() { date +%s%3N; }
retired_at() {  # SERVICE GEN: when gen list stops showing it (ms), within 10 s
	for _ in $(seq 200); do
		[ -z "$(json_field "$1" "$2" state)" ] && { ms_now; return 0; }
		sleep 0.05
	done
	return 1
}

limit_of() { awk '/^Max open files/ {print $4 " " $5}' "/proc/$1/limits"; }
check "gend raises its soft limit of open files to the hard one ($hard), and says so" \
	bash -c "[ '$(limit_of "$GEND")' = '$hard $hard' ] && grep -q 'open files: limit $hard, raised from $soft' '$T/gend.log'"
G new "${SVC}l" > /dev/null 2>&1
check "... a generation gets the limit gend was started with ($soft)" \
	[ "$(limit_of "$(json_field "${SVC}l" 1 pid)")" = "$soft $hard" ]
G retire "${SVC}l" 1 --now --wait > /dev/null 2>&1

# A connection holds generation 1's drain for 6 s: a poll would have backed
# off to a count every 2 s by then.
G new "$SVC" > /dev/null 2>&1
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf 'GET / HTTP/1.0\r\n\r\n' >&3
G new "$SVC" > /dev/null 2>&1
sleep 6
check "a live connection holds the drain" [ "$(json_field "$SVC" 1 state)" = draining ]
closed=$(ms_now)
exec 3>&-
done_at=$(retired_at "$SVC" 1)
echo "# generation 1 gone $((done_at - closed)) ms after its last connection closed (settle 200 ms)"
check "... which ends within 1 s of the connection's close" \
	bash -c "[ -n '$done_at' ] && [ $((done_at - closed)) -le 1000 ]"
check "... clean" grep -q "$SVC: generation 1 retired: clean" "$T/gend.log"

# Every process exits on SIGTERM; the count is polled only every 5 s.
G new "${SVC}z" > /dev/null 2>&1
start=$(ms_now)
out=$(G new "${SVC}z" --wait 2>&1); rc=$?
end=$(ms_now)
echo "# generation 1 of ${SVC}z retired $((end - start)) ms after gen new began (poll-interval 5 s)"
check "a generation whose processes all exited retires without waiting for the 5 s poll" \
	bash -c "[ $rc = 0 ] && grep -q 'generation 1 retired: clean' <<<'$out' && [ $((end - start)) -lt 4000 ]"

# A task process (1 s) above the quiet level: its exit ends the drain
# (its pidfd), not the 5 s poll.
G new "${SVC}p" > /dev/null 2>&1
curl -s -m 2 "http://127.0.0.1:$((PORT + 3))/" > /dev/null
start=$(ms_now)
out=$(G new "${SVC}p" --wait 2>&1); rc=$?
end=$(ms_now)
task=$(ls "$T/markers" | grep -c '^done-1-')
echo "# generation 1 of ${SVC}p retired $((end - start)) ms after gen new began, behind a 1 s task (poll-interval 5 s)"
check "a task process's exit ends the drain without waiting for the 5 s poll" \
	bash -c "[ $rc = 0 ] && grep -q 'generation 1 retired: clean' <<<'$out' && [ $((end - start)) -lt 4000 ]"
check "... after the task finished" [ "$task" -ge 1 ]

# A connection still open at the drain timeout: forced, and the connection
# named with its peer.
G new "${SVC}t" > /dev/null 2>&1
exec 4<>"/dev/tcp/127.0.0.1/$((PORT + 2))"
printf 'GET / HTTP/1.0\r\n\r\n' >&4
out=$(G new "${SVC}t" --wait 2>&1); rc=$?
exec 4>&-
sed 's/^/#   /' <<<"$out"
check "a connection open at the drain timeout: gen new --wait exits 3, forced, 1 connection left" \
	bash -c "[ $rc = 3 ] && grep -qE 'generation 1 retired: forced after 2\.[0-9] s \(drain timeout\), not clean: 2 processes, 1 connection left' <<<'$out'"
check "... naming the connection's peer and where it connected to" \
	grep -qE "^  cut connection tcp 127\.0\.0\.1:[0-9]+ -> 127\.0\.0\.1:$((PORT + 2)) [A-Z_]+$" <<<"$out"
check "... and gend's log names it too" \
	grep -qE "warning: ${SVC}t: generation 1:   cut connection tcp 127\.0\.0\.1:[0-9]+ -> 127\.0\.0\.1:$((PORT + 2)) " "$T/gend.log"

check "gend's log says once that forks have no event, and what is looked at instead" \
	[ "$(grep -c "drain: a fork has no event here (the proc connector serves the initial network namespace only), so while a draining generation's settle window is open its processes are also counted every \[drain\] poll-interval; exits come by pidfd, connections by conntrack events" "$T/gend.log")" = 1 ]
check "... and uses pidfds (no fallback to polling processes)" \
	bash -c "! grep -q 'processes are counted every \[drain\] poll-interval instead' '$T/gend.log'"
check "... and uses conntrack events (no fallback to polling connections)" \
	bash -c "! grep -q 'connections are counted by polling instead' '$T/gend.log'"

G retire "$SVC" 2 --force --wait > /dev/null 2>&1
G retire "${SVC}z" 2 --force --wait > /dev/null 2>&1
G retire "${SVC}t" 2 --force --wait > /dev/null 2>&1
G retire "${SVC}p" 2 --force --wait > /dev/null 2>&1
stop_gend
check "gend's log has no sanitizer report" no_sanitizer_reports
