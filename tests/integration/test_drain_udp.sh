#!/usr/bin/env bash
# UDP follows a switch: a client on one fixed source port, sending every
# 50 ms, is answered by the new generation within a second of the switch
# and never by the old one again, because the old generation's UDP
# conntrack entries are deleted at the switch (a UDP flow never ends by
# itself); the old generation then drains clean.
. "$(dirname "$0")/lib.sh"
preflight

UPORT=$((PORT + 500))
SRC=$((PORT + 1500))
write_policy "$SVC" "[service]" "environment = SAMPLE_UDP_PORT=9502" "[listen]" "port = $UPORT:9502/udp"
start_gend || exit 1

# conntrack entries of UDP to the public port: "MARK REPLY-SOURCE" each.
udp_entries() {
	conntrack -L -p udp --orig-port-dst "$UPORT" -o extended 2>/dev/null |
		sed -n 's/.* src=\([0-9.]*\) dst=[0-9.]* sport=9502 .*mark=\([0-9]*\).*/\2 \1/p'
}
mark_of() { jq -r .mark "$T/run/generations/$SVC/$1.json"; }

out=$(G new "$SVC" 2>&1)
check "generation 1 deploys with a UDP port" grep -q "switched: new connections to $SVC go to generation 1" <<<"$out"
addr1=$(json_field "$SVC" 1 address); mark1=$(mark_of 1)
check "the route to generation 1 goes through its own veth" route_is_ours "$addr1" "$(json_field "$SVC" 1 veth)"

"$TOOLS/udpclient" 127.0.0.1 "$UPORT" "$SRC" 200 50 > "$T/udp" 2> "$T/udp.err" &
client=$!
sleep 2
check "the client's flow has a conntrack entry to generation 1, with its mark" \
	grep -qx "$mark1 $addr1" <<<"$(udp_entries)"
G new "$SVC" 2>&1 | while IFS= read -r line; do echo "$(date +%s%3N) $line"; done > "$T/new2"
switched=$(awk '/switched: new connections/ {print $1; exit}' "$T/new2")
addr2=$(json_field "$SVC" 2 address)
sleep 1
entries=$(udp_entries)
echo "# UDP entries 1 s after the switch (mark, generation address): $(echo $entries)"
check "1 s after the switch no UDP conntrack entry points at generation 1" \
	bash -c "[ -n '$switched' ] && ! grep -q ' $addr1\$' <<<'$entries'"
check "... none carries generation 1's mark" bash -c "! grep -q '^$mark1 ' <<<'$entries'"
check "... and the client's flow points at generation 2" grep -q " $addr2\$" <<<"$entries"
wait $client
summary=$(tail -1 "$T/udp")
first2=$(awk '$2 == 2 {print $1; exit}' "$T/udp")
echo "# client: $summary; switch at $switched, first answer from generation 2 at $first2"
check "the client's datagrams are answered by generation 1, then generation 2 only" \
	grep -q " order 1,2$" <<<"$summary"
check "the first answer from generation 2 came within 1 s of the switch" \
	bash -c "[ -n '$first2' ] && [ $((first2 - switched)) -le 1000 ]"
sent=$(awk '{print $2}' <<<"$summary"); answered=$(awk '{print $4}' <<<"$summary")
check "at most 2 of $sent datagrams went unanswered ($answered answered)" [ $((sent - answered)) -le 2 ]

for _ in $(seq 50); do [ -z "$(json_field "$SVC" 1 state)" ] && break; sleep 0.1; done
check "generation 1 drained and retired clean" grep -q "$SVC: generation 1 retired: clean" "$T/gend.log"

G retire "$SVC" 2 --force --wait > /dev/null 2>&1
stop_gend
check "gend's log has no sanitizer report" no_sanitizer_reports
