#!/usr/bin/env bash
# Rollback to a generation that still drains; a live connection holds a
# drain until it closes; a forced retire says what was left; gen logs.
. "$(dirname "$0")/lib.sh"
preflight

# quiet-procs = 0: a generation drains until every process has exited,
# so generation 1 is still there to roll back to.
write_policy "$SVC" "[drain]" "quiet-procs = 0" "timeout = 20s"
POLICY_PORT=$((PORT + 1)) write_policy "${SVC}c"
POLICY_PORT=$((PORT + 2)) write_policy "${SVC}s" "[drain]" "quiet-procs = 0" "stop-signal = SIGTERM"
start_gend || exit 1

G new "$SVC" > /dev/null 2>&1
check "the route to generation 1 goes through its own veth" \
	route_is_ours "$(json_field "$SVC" 1 address)" "$(json_field "$SVC" 1 veth)"
G new "$SVC" > /dev/null 2>&1
check "generation 2 serves" grep -q "generation 2" <<<"$(curl -s -m 3 http://127.0.0.1:$PORT/)"
check "generation 1 is still draining" [ "$(json_field "$SVC" 1 state)" = draining ]
out=$(G rollback "$SVC" 2>&1); rc=$?
check "gen rollback switches back" bash -c "[ $rc -eq 0 ] && grep -q 'go to generation 1' <<<'$out'"
check "... and drains generation 2" grep -q "generation 2 draining" <<<"$out"
check "generation 1 serves again" grep -q "generation 1" <<<"$(curl -s -m 3 http://127.0.0.1:$PORT/)"
check "gen list: 1 active, 2 draining" \
	[ "$(G list "$SVC" --json | jq -r '[.services[0].generations[] | "\(.generation):\(.state)"] | join(" ")')" = "1:active 2:draining" ]
out=$(G rollback "$SVC" 2>&1); rc=$?
check "a second rollback has nothing to go back to" bash -c "[ $rc -eq 1 ] && grep -q 'no earlier generation' <<<'$out'"

out=$(G retire "$SVC" 2 --now --wait 2>&1); rc=$?
check "retire --now forces it, exits 3 and says what was left" \
	bash -c "[ $rc -eq 3 ] && grep -qE 'generation 2 retired: forced after .* \(--now\), not clean: [0-9]+ process(es)?, [0-9]+ connections? left' <<<'$out'"
check "gen logs shows what the generation printed" grep -q "sample: generation 1 listening on port 9501" <<<"$(G logs "$SVC" 1)"

# A live connection holds the drain of the default policy (baseline).
G new "${SVC}c" > /dev/null 2>&1
exec 3<>/dev/tcp/127.0.0.1/$((PORT + 1))      # connected, never closed by us
printf 'GET / HTTP/1.0\r\n\r\n' >&3
G new "${SVC}c" > /dev/null 2>&1
sleep 2                                       # its task ends after 1 s
check "a generation with a live connection keeps draining" [ "$(json_field "${SVC}c" 1 state)" = draining ]
check "... gen list counts the connection" [ "$(json_field "${SVC}c" 1 conns)" -ge 1 ]
exec 3>&-
for _ in $(seq 50); do [ -z "$(json_field "${SVC}c" 1 state)" ] && break; sleep 0.1; done
check "... and retires once it is closed" [ -z "$(json_field "${SVC}c" 1 state)" ]
check "... clean" grep -q "${SVC}c: generation 1 retired: clean" "$T/gend.log"

# stop-signal: sent when draining starts; the sample exits on SIGTERM, so a
# drain to zero processes ends as soon as its tasks are done.
kill -HUP "$GEND"
check "SIGHUP does not stop gend, and it re-reads the policies" \
	bash -c "sleep 0.2; kill -0 $GEND && grep -q 'reload: 3 policies read from .*: 0 new, 3 re-read, 0 gone' '$T/gend.log'"
G new "${SVC}s" > /dev/null 2>&1
out=$(G new "${SVC}s" --wait 2>&1)
check "stop-signal is sent when draining starts" grep -q "generation 1 draining: .*, sent SIGTERM" <<<"$out"
check "... and the drain to zero processes ends clean" grep -q "generation 1 retired: clean" <<<"$out"
G retire "${SVC}s" 2 --force --wait > /dev/null

G retire "$SVC" 1 --force --now --wait > /dev/null
G retire "${SVC}c" 2 --force --wait > /dev/null
stop_gend
check "gend's log has no sanitizer report" no_sanitizer_reports
