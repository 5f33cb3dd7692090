#!/usr/bin/env bash
# The control socket under abuse (tests/tools/ctlflood): 20,000 clients
# that connect and say nothing leave gend's memory where it was and gen
# list answering at once; a client that sends part of a request, or
# nothing, is told so and closed after 10 s; the 65th client at once is
# refused as busy, and the 64 before it are kept.
. "$(dirname "$0")/lib.sh"
preflight

write_policy "$SVC"
start_gend || exit 1
SOCK=$T/run/gend.sock
G new "$SVC" > /dev/null 2>&1
check "generation 1 serves" grep -q "generation 1" <<<"$(curl -s -m 3 http://127.0.0.1:$PORT/)"

rss() { awk '/^VmRSS:/ {print $2}' "/proc/$GEND/status"; }   # kB
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
for _ in 1 2 3; do G list > /dev/null; done
sleep 1
idle=$(rss)

# 20,000 connections that send nothing, held 3 s, then closed.
"$TOOLS/ctlflood" flood "$SOCK" 20000 3000 > "$T/flood" 2>&1 & fl=$!
peak=$idle
for _ in $(seq 300); do                 # 60 s at most; ctlflood ends by then
	[ -d "/proc/$fl" ] || break
	r=$(rss); [ "$r" -gt "$peak" ] && peak=$r
	sleep 0.2
done
wait $fl; rc=$?
echo "# flood: $(cat "$T/flood")"
check "the flood ran: 20000 connections opened and held" \
	bash -c "[ $rc -eq 0 ] && grep -q '^opened 20000 of 20000 ' '$T/flood'"
check "... gend kept 64 of them and refused each other one as busy" \
	grep -q "held 64, answered 19936 (busy 19936)$" "$T/flood"
check "gend lives through it" kill -0 "$GEND"
after=$peak
for _ in $(seq 50); do                  # a few seconds to settle
	after=$(rss)
	[ "$after" -le $((2 * idle)) ] && break
	sleep 0.1
done
echo "# gend's RSS: idle ${idle} kB, peak ${peak} kB during the flood, ${after} kB after"
check "gend's RSS is back within 2x of idle (${after} kB, idle ${idle} kB)" [ "$after" -le $((2 * idle)) ]
start=$(date +%s%N)
out=$(G list 2>&1); rc=$?
took=$(ms_since $start)
echo "# gen list after the flood answered in $took ms"
check "gen list answers within 1 s after the flood ($took ms)" \
	bash -c "[ $rc -eq 0 ] && [ $took -lt 1000 ] && grep -q '^$SVC  *1 active' <<<'$out'"

# A client that sends part of a request, and one that sends nothing.
"$TOOLS/ctlflood" idle "$SOCK" '{"cmd":"list"' > "$T/idle-part" 2>&1 & i1=$!
"$TOOLS/ctlflood" idle "$SOCK" '' > "$T/idle-none" 2>&1 & i2=$!
sleep 1
check "meanwhile gen list answers" quiet G list "$SVC"
wait $i1 $i2
for k in part none; do
	echo "# $k: $(tr '\n' ' ' < "$T/idle-$k")"
	ans=$(grep -o 'answer after [0-9]* ms' "$T/idle-$k" | grep -o '[0-9]*')
	closed=$(grep -o 'closed after [0-9]* ms' "$T/idle-$k" | grep -o '[0-9]*')
	check "a client that sends $k of a request is told so after 10 s (${ans:-no answer} ms)" \
		bash -c "grep -q 'no complete request within 10 s: closed' '$T/idle-$k' && [ ${ans:-0} -ge 9500 ]"
	check "... and closed within ~11 s (${closed:-not closed} ms)" [ "${closed:-99999}" -le 11500 ]
done

# 64 clients at once are kept; the 65th is refused as busy.
"$TOOLS/ctlflood" busy "$SOCK" 64 > "$T/busy" 2>&1; rc=$?
echo "# busy: $(tr '\n' ' ' < "$T/busy")"
check "64 clients at once are kept" grep -q "^held 64 of 64$" "$T/busy"
check "the 65th is refused with the busy error" \
	grep -qF 'extra: {"ok":false,"error":"gend is busy: 64 clients are connected; try again"}' "$T/busy"
check "once they are gone, gen list answers" quiet G list "$SVC"

G retire "$SVC" 1 --force --wait > /dev/null 2>&1
stop_gend
check "gend's log has no sanitizer report" no_sanitizer_reports
