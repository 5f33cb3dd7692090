#!/usr/bin/env bash
# A good neighbour: a gend that stands for one serving on the host (in a
# network namespace of its own, with a service of its own) keeps serving a
# bounded load from 127.0.0.1 with zero failed requests while other
# integration tests of the suite run beside it, concurrently; its nat and
# filter rules stay byte for byte as they were; and the tests beside it
# pass and skip nothing.
BESIDE=(test_deploy test_rollback)
STOP_GRACE=60           # the tests beside it clean up in their own traps first
. "$(dirname "$0")/lib.sh"
preflight

rules() {  # this namespace's nat and filter tables, counters stripped
	{ iptables-save -t nat && iptables-save -t filter; } | grep -v '^#' | sed -E 's/ \[[0-9]+:[0-9]+\]$//'
}
running() { local p; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
pids=()
test_cleanup() {  # interrupted: the tests beside it stop and clean up
	local p
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
}

write_policy "$SVC"
start_gend || exit 1
out=$(G new "$SVC" 2>&1); rc=$?
check "the neighbour deploys generation 1 of its own service" [ $rc -eq 0 ]
pid1=$(json_field "$SVC" 1 pid)
check "... its route goes through its own veth" route_is_ours "$(json_field "$SVC" 1 address)" "$(json_field "$SVC" 1 veth)"
check "... it answers on 127.0.0.1:$PORT" grep -q "generation 1" <<<"$(curl -s -m 3 http://127.0.0.1:$PORT/)"
rules > "$T/rules.before"
check "... its nat and filter rules are there" grep -q "^-A GEN-S-$SVC .*DNAT" "$T/rules.before"

# The tests beside it: each a whole run of its own, as tests/run starts it.
start=$SECONDS
for t in "${BESIDE[@]}"; do
	B="$B" TOOLS="$TOOLS" GEN_TEST_TIMEOUT=75 bash "$ROOT/tests/integration/$t.sh" > "$T/$t.out" 2>&1 &
	pids+=($!)
done
# The load: rounds of 100 requests (one new connection each, every 30 ms,
# at most 4 s a round) for as long as they run, at most 20 rounds.
rounds=0
while [ $rounds -lt 20 ]; do
	"$TOOLS/load" 127.0.0.1 $PORT 100 4 30 >> "$T/load" 2>> "$T/load.err"
	rounds=$((rounds + 1))
	running || break
done
check "the load ran until the tests beside it ended (in ${rounds} rounds)" bash -c "! kill -0 ${pids[*]} 2>/dev/null"
for i in "${!BESIDE[@]}"; do wait "${pids[$i]}"; rcs[$i]=$?; done
pids=()
echo "# tests beside it took $((SECONDS - start)) s"

total=$(awk '{n += $2} END {print n + 0}' "$T/load")
failed=$(awk '{n += $4} END {print n + 0}' "$T/load")
gen1=$(grep -o 'gen:1=[0-9]*' "$T/load" | cut -d= -f2 | awk '{n += $1} END {print n + 0}')
echo "# neighbour's load: $total requests, $failed failed, $gen1 from generation 1"
check "the neighbour's load: zero failed requests" [ "$total" -gt 0 -a "$failed" -eq 0 ]
check "... every answer from its generation 1" [ "$gen1" -eq "$total" ]
check "... which is still active, the same process" \
	[ "$(json_field "$SVC" 1 state):$(json_field "$SVC" 1 pid)" = "active:$pid1" ]
rules > "$T/rules.after"
diff "$T/rules.before" "$T/rules.after" | sed 's/^/# /'
check "its nat and filter rules are byte for byte unchanged" cmp -s "$T/rules.before" "$T/rules.after"

for i in "${!BESIDE[@]}"; do
	t=${BESIDE[$i]} o=$T/${BESIDE[$i]}.out
	p=$(grep -cE '^ok - ' "$o") f=$(grep -cE '^not ok - ' "$o") s=$(grep -cE '^skip - ' "$o")
	echo "# $t beside it: $p passed, $f failed, $s skipped, exit status ${rcs[$i]}"
	grep -E '^(not ok|skip) - ' "$o" | sed 's/^/#   /'
	check "$t beside it passed and skipped nothing" [ "${rcs[$i]}" -eq 0 -a "$p" -gt 0 -a "$f" -eq 0 -a "$s" -eq 0 ]
done

G retire "$SVC" 1 --force --wait > /dev/null
stop_gend
check "gend's log has no sanitizer report" no_sanitizer_reports
