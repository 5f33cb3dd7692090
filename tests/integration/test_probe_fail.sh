#!/usr/bin/env bash
# A new release that never becomes ready, and one that exits at once:
# gen new fails saying what failed and what still serves, and generation 1
# keeps serving with zero failed requests.
. "$(dirname "$0")/lib.sh"
preflight

write_policy "$SVC"
start_gend || exit 1
mkdir -p "$T/broken" "$T/crashing"
echo 503 > "$T/broken/health-status"
touch "$T/crashing/exit-now"

G new "$SVC" > /dev/null 2>&1
addr1=$(json_field "$SVC" 1 address); veth1=$(json_field "$SVC" 1 veth)
check "the route to generation 1 goes through its own veth" route_is_ours "$addr1" "$veth1"

"$TOOLS/load" 127.0.0.1 $PORT 400 30 10 > "$T/load" 2> "$T/load.err" &
load=$!
sleep 0.5
out=$(G new "$SVC" --dir "$T/broken" 2>&1); rc=$?
echo "# $out" | tail -1
check "gen new of a release that is never ready exits 1" [ $rc -eq 1 ]
check "... saying what failed, where, after how long" \
	grep -q "generation 2 never became ready: GET http://10.213.240.6:9501/health answered 503, not 200 after 3.0 s" <<<"$out"
check "... and what still serves" grep -q "generation 1 is still serving" <<<"$out"
check "... generation 2's cgroup, netns and veth are gone" \
	bash -c "[ ! -e '$TESTCG/gen/$SVC/2' ] && [ ! -e /run/netns/gen-$SVC-2 ]"

start=$(date +%s%N)
out=$(G new "$SVC" --dir "$T/crashing" 2>&1); rc=$?
took=$(( ($(date +%s%N) - start) / 1000000 ))
echo "# $out" | tail -1
check "gen new of a release that exits at once exits 1" [ $rc -eq 1 ]
check "... reporting the exit status, before the probe timeout (${took} ms)" \
	bash -c "grep -q 'generation 3 exited (status 3) before it became active' <<<'$out' && [ $took -lt 3000 ]"
wait $load
echo "# $(cat "$T/load")"
check "zero failed requests meanwhile, all from generation 1" grep -q "failed 0 gen:1=[0-9]* order 1$" "$T/load"
check "gen list: 1 active, 2 and 3 failed" \
	[ "$(G list "$SVC" --json | jq -r '[.services[0].generations[] | "\(.generation):\(.state)"] | join(" ")')" = "1:active 2:failed 3:failed" ]
check "gen status explains the failure" grep -q "never became ready" <<<"$(G status "$SVC")"
check "switching to a failed generation is refused" bash -c "! '$B/gen' -s '$T/run/gend.sock' switch $SVC 2 2>&1 | grep -q switched"
out=$(G switch "$SVC" 2 2>&1); rc=$?
check "... with exit 1 and the reason" bash -c "[ $rc -eq 1 ] && grep -q 'only a ready' <<<'$out'"
check "gen retire of a failed generation removes it from the list" G retire "$SVC" 2
check "generation 1 still answers" grep -q "generation 1" <<<"$(curl -s -m 3 http://127.0.0.1:$PORT/)"
G retire "$SVC" 1 --force --wait > /dev/null
# exec probes run in the generation's network namespace and release
# directory: 127.0.0.1:9501 answers only in there.
POLICY_PORT=$((PORT + 1)) write_policy "${SVC}x" "[ready]" \
	"probe = exec /bin/bash -c 'test -e ready-to-go && exec 3<>/dev/tcp/127.0.0.1/9501'"
stop_gend; start_gend || exit 1
mkdir -p "$T/go" "$T/nogo"; touch "$T/go/ready-to-go"
out=$(G new "${SVC}x" --dir "$T/go" 2>&1); rc=$?
check "an exec probe passes inside the generation" [ $rc -eq 0 ]
check "... its route goes through its own veth" route_is_ours "$(json_field "${SVC}x" 1 address)" "$(json_field "${SVC}x" 1 veth)"
out=$(G new "${SVC}x" --dir "$T/nogo" 2>&1); rc=$?
check "an exec probe that fails: gen new exits 1 with the check's status" \
	bash -c "[ $rc -eq 1 ] && grep -q 'generation 2 never became ready: exec /bin/bash exited with status 1 after 3.0 s; generation 1 is still serving' <<<\"$out\""
G retire "${SVC}x" 1 --force --wait > /dev/null
stop_gend
check "gend's log has no sanitizer report" no_sanitizer_reports
