#!/usr/bin/env bash
# A server built like Swoole/easyswoole (tests/tools/taskpool.c): a fixed
# pool of pre-forked task workers runs the tasks requests queue, so its
# process count never changes while tasks run. With the documented policy
# (gen.policy(5): [drain] idle = exec ... --status) a deployment under a
# client that fetches every 100 ms fails no request and cuts no task, and
# gen status shows the old generation's own task table while it drains.
# A drain timeout shorter than the queued work forces the drain, and every
# surface says so: the retired event and gen new --wait's exit status 3,
# gend's log (a warning naming the idle probe's last output), gen list.
# gen retire --now says the same. The stop-signal policy (quiet-procs = 0,
# stop-signal = SIGTERM) cuts nothing either.
. "$(dirname "$0")/lib.sh"
preflight

TP=$TOOLS/taskpool
tp_policy() {  # NAME PORT [extra lines]: markers in $T/markers/NAME
	local name=$1 port=$2; shift 2
	mkdir -p "$T/markers/$name"
	POLICY_PORT=$port write_policy "$name" "[service]" "exec = $TP" \
		"environment = TASKPOOL_WORKERS=4" "environment = TASKPOOL_MARKERS=$T/markers/$name" "$@"
}
# The documented policy for a pre-forked task-worker server.
tp_policy "$SVC" "$PORT" "[drain]" "idle = exec $TP --status" "idle-interval = 200ms" \
	"settle = 500ms"
# The same with the http kind of idle probe, and a drain timeout of 2 s.
tp_policy "${SVC}f" $((PORT + 1)) "[drain]" "idle = http GET /tasks 200" "idle-interval = 200ms" \
	"settle = 500ms" "timeout = 2s"
tp_policy "${SVC}s" $((PORT + 2)) "[drain]" "quiet-procs = 0" "stop-signal = SIGTERM"
# The sample (tests/tools/sample.c), whose GET /handoff hands a task on.
POLICY_PORT=$((PORT + 3)) write_policy "${SVC}h"
start_gend || exit 1

count() { ls "$T/markers/$1" | grep -c "^$2-$3-"; }       # SERVICE KIND GEN
cut_tasks() {  # SERVICE GEN: queued, never done
	local f n=0
	for f in "$T/markers/$1"/queued-"$2"-*; do
		[ -e "$f" ] || continue
		[ -e "${f/queued-/done-}" ] || n=$((n + 1))
	done
	echo $n
}
# gen status of SERVICE until generation 1 drains with an idle probe
# result that shows its task table; into FILE.
status_while_draining() {  # SERVICE FILE
	for _ in $(seq 100); do
		G status "$1" > "$2" 2>&1
		grep -qE "idle probe .*: busy .* ago \((exit status 1|answered 503, not 200)\):" "$2" && return 0
		sleep 0.1
	done
	return 1
}

# 1. The documented policy, under a client: every 100 ms a new connection.
out=$(G new "$SVC" 2>&1)
check "taskpool generation 1 deploys" grep -q "switched: new connections to $SVC go to generation 1" <<<"$out"
check "... with its 4 task workers, main process and pid 1 (gen-init) as baseline" grep -q "baseline 6 processes" <<<"$out"
"$TOOLS/load" 127.0.0.1 "$PORT" 60 30 100 > "$T/load" 2> "$T/load.err" &
load=$!
sleep 2
G new "$SVC" --wait > "$T/new2" 2>&1 &
new2=$!
status_while_draining "$SVC" "$T/status1"; st=$?
check "gen status, while generation 1 drains, shows its idle probe's output: the task table" \
	bash -c "[ $st = 0 ] && grep -q '^ *taskpool generation 1: 4 workers, [1-4] running' '$T/status1' && grep -q '^ *worker 0 (pid [0-9]*): ' '$T/status1'"
sed 's/^/#   /' "$T/status1" | head -14
wait $new2; rc=$?
wait $load
out=$(cat "$T/new2")
echo "# load: $(cat "$T/load")"
check "gen new --wait exits 0" [ $rc = 0 ]
check "... says what generation 1's drain waits for, the idle probe too" \
	grep -q "generation 1 draining: waiting for at most 6 processes and no connections and its idle probe (exec $TP --status) passing for 500 ms, at most 30.0 s" <<<"$out"
check "... and that it retired clean" grep -q "generation 1 retired: clean after" <<<"$out"
check "the client: zero failed requests" grep -q "failed 0 " "$T/load"
check "the client: answers from generation 1, then generation 2" grep -q " order 1,2$" "$T/load"
q=$(count "$SVC" queued 1); d=$(count "$SVC" done 1); c=$(cut_tasks "$SVC" 1)
echo "# generation 1: $q tasks queued, $d finished, $c cut"
check "generation 1 had queued work when it was switched away from" [ "$q" -gt 8 ]
check "zero tasks of generation 1 cut: each queued task finished before it was killed" [ "$c" = 0 ]
check "gend's log says the idle probe went from busy to idle" \
	bash -c "grep -q '$SVC: generation 1: idle probe exec .*: busy (exit status 1)' '$T/gend.log' && grep -q '$SVC: generation 1: idle probe exec .*: idle (exit status 0)' '$T/gend.log'"

# 2. A drain timeout (2 s) shorter than the queued work: forced, and said so.
G new "${SVC}f" > /dev/null 2>&1
for i in $(seq 24); do curl -s -m 2 "http://127.0.0.1:$((PORT + 1))/" > /dev/null; done
G new "${SVC}f" --wait > "$T/newf" 2>&1 &
newf=$!
status_while_draining "${SVC}f" "$T/statusf"; st=$?
wait $newf; rc=$?
out=$(cat "$T/newf")
sed 's/^/#   /' <<<"$out"
check "gen status during the forced drain shows the idle probe's output" \
	bash -c "[ $st = 0 ] && grep -q '^ *taskpool generation 1: 4 workers, [1-4] running' '$T/statusf'"
check "gen new --wait exits 3: the replaced generation was forced" [ $rc = 3 ]
check "... says it was forced, not clean, by the drain timeout" \
	grep -qE "generation 1 retired: forced after 2\.[0-9] s \(drain timeout\), not clean: 6 processes, 0 connections left \(quiet level 6\)" <<<"$out"
check "... never that it was clean" bash -c "! grep -q 'clean after' <<<'$out'"
check "... with the idle probe's last output: tasks still running" \
	bash -c "grep -q 'idle probe http GET /tasks 200: busy .* before (answered 503, not 200):' <<<'$out' && grep -qE '^ +taskpool generation 1: 4 workers, [1-4] running, [0-9]+ queued' <<<'$out'"
check "gend's log warns that generation 1 was forced, naming the idle probe's output" \
	bash -c "grep -q 'warning: ${SVC}f: generation 1 retired: forced after .* (drain timeout), not clean' '$T/gend.log' && grep -q 'warning: ${SVC}f: generation 1:   | taskpool generation 1: 4 workers, [1-4] running' '$T/gend.log'"
check "... and never logs it as clean" bash -c "! grep -q '${SVC}f: generation 1 retired: clean' '$T/gend.log'"
q=$(count "${SVC}f" queued 1); c=$(cut_tasks "${SVC}f" 1)
echo "# forced generation 1: $q tasks queued, $c cut"
check "the drain really cut tasks (what it reports is true)" [ "$c" -gt 0 ]
list=$(G list "${SVC}f" 2>&1)
sed 's/^/#   /' <<<"$list"
check "gen list keeps showing generation 1 as retired, forced by the drain timeout" \
	bash -c "grep -qE '^${SVC}f +1 retired ' <<<'$list' && grep -q 'forced .* ago after 2\.[0-9] s (drain timeout), not clean' <<<'$list'"
check "gen list --json: retired generation 1 with forced_by timeout and the probe's output" \
	[ "$(G list "${SVC}f" --json | jq -r '.services[0].retired[0] | "\(.generation) \(.forced) \(.forced_by) \(.cut.idle.passed)"')" = "1 true timeout false" ]
check "the generation was really removed" [ ! -e "/run/netns/gen-${SVC}f-1" ]
check "gen logs still shows the retired generation's log" \
	grep -q "taskpool: generation 1 listening on port 9501" <<<"$(G logs "${SVC}f" 1 2>&1)"
out=$(G logs "${SVC}f" 99 2>&1); rc=$?
check "... and says so for a generation that never was" \
	bash -c "[ $rc = 1 ] && grep -q 'has no generation 99, and no log of one' <<<'$out'"

# 3. gen retire --now: the same, without a deadline.
for i in $(seq 8); do curl -s -m 2 "http://127.0.0.1:$((PORT + 1))/" > /dev/null; done
out=$(G retire "${SVC}f" 2 --force --now 2>&1); rc=$?
sed 's/^/#   /' <<<"$out"
check "gen retire --now exits 3 and says it forced generation 2 (--now)" \
	bash -c "[ $rc = 3 ] && grep -qE 'generation 2 retired: forced after [0-9]+ ms \(--now\), not clean: 6 processes' <<<'$out'"
check "gend's log: generation 2 forced by --now" grep -q "warning: ${SVC}f: generation 2 retired: forced after .* (--now), not clean" "$T/gend.log"

# 4. The stop-signal policy: SIGTERM, and a drain until every process exited.
G new "${SVC}s" > /dev/null 2>&1
for i in $(seq 10); do curl -s -m 2 "http://127.0.0.1:$((PORT + 2))/" > /dev/null; done
out=$(G new "${SVC}s" --wait 2>&1); rc=$?
check "stop-signal policy: gen new --wait exits 0, generation 1 retired clean" \
	bash -c "[ $rc = 0 ] && grep -q 'sent SIGTERM' <<<'$out' && grep -q 'generation 1 retired: clean after' <<<'$out'"
q=$(count "${SVC}s" queued 1); c=$(cut_tasks "${SVC}s" 1)
echo "# stop-signal generation 1: $q tasks queued, $c cut"
check "... and generation 1 finished its queued tasks on SIGTERM before it exited" \
	bash -c "[ $q -gt 0 ] && [ $c = 0 ] && grep -q 'taskpool: every task done (' '$T/log/${SVC}s/1.log'"

# 5. A task handed on to a process forked after the drain began, once the
# process that had it exits: the drain reads the cgroup again when the
# exits bring the count down to the quiet level, finds the new process,
# and waits for it.
G new "${SVC}h" > /dev/null 2>&1
curl -s -m 2 "http://127.0.0.1:$((PORT + 3))/handoff" > /dev/null
first=$(ls "$T/markers" | sed -n 's/^start-1-//p' | head -1)
G new "${SVC}h" > /dev/null 2>&1
check "handoff: generation 1 drains while its task process waits" \
	[ "$(json_field "${SVC}h" 1 state)" = draining ]
# From here gend is not asked (gen list counts exactly): its log says when.
touch "$T/markers/handoff-go"
for _ in $(seq $((150 * ${GEN_TEST_TIME_SCALE:-1}))); do
	grep -q "${SVC}h: generation 1 retired" "$T/gend.log" && break
	sleep 0.1
done
done_pid=$(ls "$T/markers" | sed -n 's/^done-1-//p' | head -1)
echo "# handoff: task process $first, the task in ${done_pid:-none}"
handed_on() { [ -n "$first" ] && [ -n "$done_pid" ] && [ "$done_pid" != "$first" ]; }
check "... finishes the task in a process forked since the drain began" handed_on
check "... and only then retires, clean" grep -q "${SVC}h: generation 1 retired: clean after" "$T/gend.log"

G retire "${SVC}" 2 --force --wait > /dev/null 2>&1
G retire "${SVC}s" 2 --force --wait > /dev/null 2>&1
G retire "${SVC}h" 2 --force --wait > /dev/null 2>&1
stop_gend
check "gend's log has no sanitizer report" no_sanitizer_reports
