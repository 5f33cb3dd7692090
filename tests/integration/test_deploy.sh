#!/usr/bin/env bash
# The path a user walks: deploy generation 1, deploy generation 2 under
# load from the host's loopback and from an external client host, with
# zero failed requests; generation 1 retires after its background tasks
# finished; then the service is taken out, and gend stops with traffic
# still flowing.
. "$(dirname "$0")/lib.sh"
preflight

write_policy "$SVC"
start_gend || exit 1
make_client_host || { notok "make the client namespace"; exit 1; }

out=$(G new "$SVC" 2>&1); rc=$?
check "gen new deploys generation 1" [ $rc -eq 0 ]
check "gen new says each step" grep -q "generation 1 created: pid .*generation 1 ready after .*switched: new connections to $SVC go to generation 1" <<<"$(echo $out)"

addr1=$(json_field "$SVC" 1 address); veth1=$(json_field "$SVC" 1 veth)
check "the route to generation 1 goes through its own veth ($veth1)" route_is_ours "$addr1" "$veth1"
check "the client host reaches the host through the test's own link" \
	bash -c "ip netns exec $CLIENT_NS ip -o route get $CLIENT_HOST_ADDR | grep -q \"dev eth0 \""
check "generation 1 answers on 127.0.0.1:$PORT" grep -q "generation 1" <<<"$(curl -s -m 3 http://127.0.0.1:$PORT/)"
check "generation 1 answers the external client" grep -q "generation 1" \
	<<<"$(ip netns exec "$CLIENT_NS" curl -s -m 3 http://$CLIENT_HOST_ADDR:$PORT/)"

# Bounded loads: 500 requests each, at most 40 s, one new connection each.
"$TOOLS/load" 127.0.0.1 $PORT 500 40 8 > "$T/load-local" 2> "$T/load-local.err" &
l1=$!
ip netns exec "$CLIENT_NS" "$TOOLS/load" --netns-peer $CLIENT_HOST_ADDR $PORT 500 40 8 \
	> "$T/load-ext" 2> "$T/load-ext.err" &
l2=$!
sleep 1.5
out=$(G new "$SVC" --wait 2>&1); rc=$?
check "gen new --wait deploys generation 2 during the load" [ $rc -eq 0 ]
check "generation 1 drains and retires clean" grep -q "generation 1 retired: clean after" <<<"$out"
wait $l1; wait $l2
echo "# loopback: $(cat "$T/load-local")"; echo "# external: $(cat "$T/load-ext")"
for l in local ext; do
	check "$l load: zero failed requests" grep -q "failed 0 " "$T/load-$l"
	check "$l load: answers from generation 1, then generation 2" grep -q " order 1,2$" "$T/load-$l"
done

started=$(ls "$T/markers" | grep -c '^start-1-'); missing=0
for f in "$T"/markers/start-1-*; do
	[ -e "${f/start-/done-}" ] || missing=$((missing + 1))
done
echo "# generation 1 started $started background tasks; $missing never finished"
check "every background task of generation 1 finished before it was killed" \
	[ "$started" -gt 0 -a "$missing" -eq 0 ]
check "generation 1's cgroup is gone" [ ! -e "$TESTCG/gen/$SVC/1" ]
check "generation 1's netns is gone" [ ! -e "/run/netns/gen-$SVC-1" ]
check "generation 1's veth is gone (within 3 s)" link_goes "$veth1"
check "gen list shows generation 2 active, generation 1 no more" \
	[ "$(G list "$SVC" --json | jq -r '[.services[0].generations[] | "\(.generation):\(.state)"] | join(" ")')" = "2:active" ]

# Taking the service out: --force, rules first, then the drain.
out=$(G retire "$SVC" 2 2>&1); rc=$?
check "retire of the active generation without --force is refused" [ $rc -eq 1 ]
check "... and says how to do it" grep -q -- "--force" <<<"$out"
check "... and it still serves" grep -q "generation 2" <<<"$(curl -s -m 3 http://127.0.0.1:$PORT/)"
out=$(G retire "$SVC" 2 --force --wait 2>&1); rc=$?
check "retire --force --wait takes generation 2 out" [ $rc -eq 0 ]
check "... rules of $SVC are gone" bash -c "! iptables -w 5 -t nat -S | grep -q GEN-S-$SVC"
check "... and only gend's base is left: no service chain, one jump each" bash -c \
	"! iptables -w 5 -t nat -S | grep -q GEN-S- && [ \$(iptables -w 5 -t nat -S PREROUTING | grep -c GEN-DNAT) = 1 ]"
check "... its netns is gone" [ ! -e "/run/netns/gen-$SVC-2" ]

# gend stops; the generation and its rules stay; traffic keeps flowing.
G new "$SVC" > /dev/null 2>&1
stop_gend
check "gend's last line says traffic keeps flowing" grep -q "1 generation of 1 service keep running .* traffic keeps flowing" "$T/gend.log"
check "generation 3 still answers with gend stopped" grep -q "generation 3" <<<"$(curl -s -m 3 http://127.0.0.1:$PORT/)"

# A new gend leaves generation 3's address block alone and numbers on.
rules_before=$(iptables-save | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//')
start_gend || exit 1
check "a restarted gend takes generation 3 back as active" \
	[ "$(G list "$SVC" --json | jq -r '[.services[0].generations[] | "\(.generation):\(.state):\(.adopted)"] | join(" ")')" = "3:active:true" ]
check "... and leaves the rules as they were" \
	[ "$(iptables-save | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//')" = "$rules_before" ]
out=$(G new "$SVC" --wait 2>&1); rc=$?
check "... its next generation is number 4, never a number used before" grep -q "generation 4 created" <<<"$out"
check "... which drains and retires the taken-back generation 3 cleanly" \
	bash -c "[ $rc = 0 ] && grep -q 'generation 3 retired: clean after' <<<'$out'"
check "generation 4 serves" grep -q "generation 4" <<<"$(curl -s -m 3 http://127.0.0.1:$PORT/)"
check "generation 3's netns is gone" [ ! -e "/run/netns/gen-$SVC-3" ]
stop_gend
check "gend's log has no sanitizer report" no_sanitizer_reports
