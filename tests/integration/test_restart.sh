#!/usr/bin/env bash
# [service] restart = on-failure: a crashed active generation is replaced
# by a new one behind the same public port, with a backoff and a limit;
# without it, the rules go and clients are refused at once.
. "$(dirname "$0")/lib.sh"
preflight

write_policy "$SVC" "[service]" "restart = on-failure" "restart-delay = 100ms" "restart-burst = 2"
POLICY_PORT=$((PORT + 1)) write_policy "${SVC}n"
start_gend || exit 1

active() { G list "$1" --json | jq -r '.services[0].active'; }
wait_active() {  # SERVICE N
	for _ in $(seq 100); do [ "$(active "$1")" = "$2" ] && return 0; sleep 0.1; done
	return 1
}

G new "$SVC" > /dev/null 2>&1
check "generation 1 serves" grep -q "generation 1" <<<"$(curl -s -m 3 http://127.0.0.1:$PORT/)"
kill -KILL "$(json_field "$SVC" 1 pid)"
check "its crash is followed by generation 2, restarted" wait_active "$SVC" 2
check "... which says whom it replaced" [ "$(json_field "$SVC" 2 restart_of)" = 1 ]
check "... and serves on the same public port" grep -q "generation 2" <<<"$(curl -s -m 3 http://127.0.0.1:$PORT/)"
check "... generation 1 is failed, with why" grep -q "generation 1 (active) exited (signal KILL)" <<<"$(json_field "$SVC" 1 failure)"
check "gen status shows the restart" grep -q "restarts: 1" <<<"$(G status "$SVC")"
check "the log says it, with the backoff" grep -q "generation 1 crashed; a new generation in 100 ms (restart 1 of at most 2 in 10 min)" "$T/gend.log"

kill -KILL "$(json_field "$SVC" 2 pid)"
check "a second crash: generation 3, after a longer delay" wait_active "$SVC" 3
check "... 200 ms" grep -q "generation 2 crashed; a new generation in 200 ms (restart 2 of at most 2" "$T/gend.log"
kill -KILL "$(json_field "$SVC" 3 pid)"
for _ in $(seq 50); do grep -q "generation 3 crashed; not restarting" "$T/gend.log" && break; sleep 0.1; done
check "a third crash within 10 min: no more restarts, and the log says why" \
	grep -q "generation 3 crashed; not restarting: 2 restarts in 10 min already (restart-burst); no generation of $SVC is serving" "$T/gend.log"
sleep 0.5
check "... nothing is active" [ "$(active "$SVC")" = 0 ]
check "... and its rules are gone: clients are refused at once" bash -c \
	"! iptables -w 5 -t nat -S | grep -q GEN-S-$SVC && ! curl -s -m 2 http://127.0.0.1:$PORT/"

G new "${SVC}n" > /dev/null 2>&1
kill -KILL "$(json_field "${SVC}n" 1 pid)"
sleep 1
check "restart = no (the default): a crash leaves it failed, not replaced" \
	bash -c "[ '$(active "${SVC}n")' = 0 ] && [ '$(json_field "${SVC}n" 1 state)' = failed ] && [ -z '$(json_field "${SVC}n" 2 state)' ]"
check "... with its rules gone" bash -c "! iptables -w 5 -t nat -S | grep -q GEN-S-${SVC}n"
stop_gend
check "gend's log has no sanitizer report" no_sanitizer_reports
