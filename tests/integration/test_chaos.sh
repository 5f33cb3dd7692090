#!/usr/bin/env bash
# Chaos: deployments under a steady load (from the host's loopback and from
# an external client host), with gend killed by SIGKILL at a chosen point
# of each and started again at once: while the new generation starts,
# between its probe and its switch, during the switch (its rule
# transaction held by the hook), during the old generation's drain, during
# its teardown. The point is read from the generations' records by
# killat; the harness goes on as an operator would (an interrupted switch
# is done again, a failed start is retired). Over the whole run: zero
# failed requests, every background task finished, and at the end one
# generation, its rules exactly right, nothing left of the others.
# CHAOS_DEPLOYS (30) sets the number of deployments, CHAOS_SEED the
# random choices (both printed).
. "$(dirname "$0")/lib.sh"
preflight

DEPLOYS=${CHAOS_DEPLOYS:-30}
SEED=${CHAOS_SEED:-$((RANDOM * 32768 + RANDOM))}
RANDOM=$SEED
BUDGET=330                              # s for the deployments; fewer if it runs out
PHASES=(starting ready switch drain teardown)
export GEN_TEST_HOLD_RULES=$T/hold

write_policy "$SVC"
start_gend || exit 1
make_client_host || { notok "make the client namespace"; exit 1; }
RECS=$T/run/generations/$SVC

# Helpers
state_of() { json_field "$SVC" "$1" state; }
active_gen() { G list "$SVC" --json | jq -r '.services[0].active'; }
next_gen() { local n; n=$(cat "$T/state/$SVC.next" 2>/dev/null) && echo $((${n:-1})) || echo 1; }
msleep() { sleep "$(printf '0.%03d' $(($1 % 1000)))"; }
wait_gone_or() {  # N STATE...: until generation N is gone or in one of the states, 15 s at most
	local n=$1 s; shift
	for _ in $(seq 150); do
		s=$(state_of "$n")
		[ -z "$s" ] && return 0
		for want in "$@"; do [ "$s" = "$want" ] && return 0; done
		sleep 0.1
	done
	return 1
}

# The load: batches of bounded loads, one after the other, until the
# deployments are done (each batch 200 requests, at most 20 s).
load_loop() {  # NAME LOAD-ARGS...
	local name=$1 i; shift
	for i in $(seq 400); do
		[ -e "$T/stop-load" ] && break
		echo "batch $i from $(date +%T.%3N)" >> "$T/load-$name.err"
		"$@" 200 20 10 >> "$T/load-$name" 2>> "$T/load-$name.err"
	done
}

out=$(G new "$SVC" 2>&1)
check "generation 1 deploys" grep -q "go to generation 1" <<<"$out"
load_loop local "$TOOLS/load" 127.0.0.1 $PORT & l1=$!
load_loop ext ip netns exec "$CLIENT_NS" "$TOOLS/load" --netns-peer $CLIENT_HOST_ADDR $PORT & l2=$!
sleep 1

# The phases, each as often as the others, in a random order.
order=()
for ((i = 0; i < DEPLOYS; i++)); do order+=("${PHASES[i % ${#PHASES[@]}]}"); done
for ((i = DEPLOYS - 1; i > 0; i--)); do
	k=$((RANDOM % (i + 1))); x=${order[i]}; order[i]=${order[k]}; order[k]=$x
done
declare -A aimed=() at_state=()
client_bad=0 after_bad=0 not_adopted=0 rules_bad=0 done_deploys=0 missed=0
start_time=$SECONDS
# bash reports each gend killed under it ("Killed ..."); those notices go
# to a file, anything else the loop says is shown after it.
exec 3>&2 2>>"$T/loop.err"

for ((d = 1; d <= DEPLOYS; d++)); do
	if [ $((SECONDS - start_time)) -ge $BUDGET ]; then
		echo "# time budget of $BUDGET s spent: $done_deploys of $DEPLOYS deployments done"
		break
	fi
	phase=${order[d - 1]}
	prev=$(active_gen)
	n=$(next_gen)
	rec=$RECS/$n.json prec=$RECS/$prev.json
	killed= rc_new=
	aimed[$phase]=$((${aimed[$phase]:-0} + 1))
	case $phase in
	starting)       # a random moment after its record says starting
		G new "$SVC" > "$T/new" 2>&1 & nw=$!
		killed=$("$TOOLS/killat" "$GEND" "$rec" 10000 $((RANDOM % 40000)) '"state": "starting"')
		wait $nw; rc_new=$? ;;
	ready)          # probed, not switched (yet)
		G new "$SVC" --no-switch > "$T/new" 2>&1; rc_new=$?
		msleep $((RANDOM % 300))
		killed=$("$TOOLS/killat" "$GEND" "$rec" 1000 0 '"state": "ready"') ;;
	switch)         # its rule transaction held
		touch "$T/hold"
		G new "$SVC" > "$T/new" 2>&1 & nw=$!
		killed=$("$TOOLS/killat" "$GEND" "$rec" 10000 $((RANDOM % 200000)) '"state": "switching"')
		rm -f "$T/hold"
		wait $nw; rc_new=$? ;;
	drain)          # a random moment of the old generation's drain
		G new "$SVC" > "$T/new" 2>&1; rc_new=$?
		killed=$("$TOOLS/killat" "$GEND" "$prec" 5000 $((RANDOM % 900000)) '"state": "draining"') ;;
	teardown)       # the old generation frozen: freeze, kill, removal
		G new "$SVC" > "$T/new" 2>&1; rc_new=$?
		killed=$("$TOOLS/killat" "$GEND" "$prec" 10000 $((RANDOM % 25000)) '"state": "frozen"') ;;
	esac
	if [ -z "$killed" ]; then
		killed=missed missed=$((missed + 1))
		# The moment never came: the deployment failed by itself.
		grep -q "^gen: " "$T/new" && echo "# deployment $d: gen new failed before the kill: $(grep '^gen: ' "$T/new");" \
			"its log: $(tail -3 "$T/log/$SVC/$n.log" | tr '\n' '|')"
	fi
	at_state[$killed]=$((${at_state[$killed]:-0} + 1))
	kill_gend
	# gen new was answered before the kill in the later phases; killed
	# before its switch was done, it fails; killed just after, either.
	case $phase:$killed in
	starting:active|*:missed) ;;
	starting:*|switch:*) [ "$rc_new" -eq 1 ] && grep -q "closed the connection without an answer" "$T/new" ||
		{ client_bad=$((client_bad + 1)); echo "# deployment $d: gen new said ($rc_new): $(cat "$T/new")"; } ;;
	*) [ "$rc_new" -eq 0 ] || { client_bad=$((client_bad + 1)); echo "# deployment $d: gen new failed ($rc_new): $(cat "$T/new")"; } ;;
	esac
	msleep $((RANDOM % 300))
	start_gend > "$T/start" || { cat "$T/start"; notok "gend starts again after deployment $d"; break; }
	# Every generation of the new gend is one it took back.
	not_adopted=$((not_adopted + $(G list "$SVC" --json | jq '[.services[0].generations[] | select(.adopted | not)] | length')))
	# The operator goes on: an interrupted deploy is switched to again, a
	# failed start is removed from the list.
	s=$(state_of "$n")
	case $s in
	ready) G switch "$SVC" "$n" > "$T/after" 2>&1 || { after_bad=$((after_bad + 1)); cat "$T/after"; } ;;
	failing|failed)
		wait_gone_or "$n" failed
		G retire "$SVC" "$n" > "$T/after" 2>&1 || { after_bad=$((after_bad + 1)); cat "$T/after"; } ;;
	active) ;;
	"") [ "$phase" = starting ] || { after_bad=$((after_bad + 1)); echo "# deployment $d: generation $n is gone"; } ;;
	*) after_bad=$((after_bad + 1)); echo "# deployment $d: generation $n is '$s' after the restart" ;;
	esac
	# The rules point at the generation gend says is active, and only there.
	a=$(active_gen)
	[ "$(iptables -w 5 -t nat -S "GEN-S-$SVC" | grep -o 'to-destination [0-9.]*' | sort -u)" = \
	  "to-destination $(json_field "$SVC" "$a" address)" ] ||
		{ rules_bad=$((rules_bad + 1)); echo "# deployment $d: the rules do not point at generation $a alone"; }
	echo "# $(date +%T.%3N) deployment $d (generation $n): $phase, killed at $killed, then generation $a serves ($(state_of "$n" || true))"
	done_deploys=$d
done

exec 2>&3 3>&-
grep -v " Killed .*/gend' " "$T/loop.err" >&2
touch "$T/stop-load"
wait $l1 $l2
# The drains that are left end; then the tasks of the last one.
final=$(active_gen)
for _ in $(seq 200); do
	[ "$(G list "$SVC" --json | jq '.services[0].generations | length')" = 1 ] && break
	sleep 0.2
done
sleep 1.5

req=0 fail=0
for f in "$T/load-local" "$T/load-ext"; do
	req=$((req + $(awk '{s += $2} END {print s + 0}' "$f")))
	fail=$((fail + $(awk '{s += $4} END {print s + 0}' "$f")))
done
started=$(ls "$T/markers" | grep -c '^start-') finished=0
for f in "$T"/markers/start-*; do [ -e "${f/start-/done-}" ] && finished=$((finished + 1)); done
aim="" got=""
for p in "${PHASES[@]}"; do aim+=" $p=${aimed[$p]:-0}"; done
for s in "${!at_state[@]}"; do got+=" $s=${at_state[$s]}"; done
echo "# seed $SEED: $done_deploys deployments of $DEPLOYS in $((SECONDS - start_time)) s, gend killed $done_deploys times"
echo "# kills aimed at:$aim"
echo "# kills landed in state (from the record at the kill):$got"
echo "# requests $req, failed $fail; background tasks started $started, finished $finished"
echo "# loopback: $(tail -1 "$T/load-local")"; echo "# external: $(tail -1 "$T/load-ext")"
grep -h -B1 "failed:" "$T"/load-*.err | grep -v '^--' | head -10 | sed 's/^/# /'

check "all $DEPLOYS deployments ran" [ "$done_deploys" -eq "$DEPLOYS" ]
check "every kill found the moment it waited for: no deployment failed by itself ($missed did)" [ "$missed" -eq 0 ]
check "every gen new answered as it should: failed when its gend died first ($client_bad not)" [ $client_bad -eq 0 ]
check "every restarted gend took all generations back (adopted) ($not_adopted not)" [ $not_adopted -eq 0 ]
check "every interrupted deploy could be finished after the restart ($after_bad not)" [ $after_bad -eq 0 ]
check "after every restart the rules pointed at the active generation alone ($rules_bad not)" [ $rules_bad -eq 0 ]
check "zero failed requests over the whole run ($fail of $req)" [ "$req" -gt 0 -a "$fail" -eq 0 ]
check "every background task of every generation finished ($finished of $started)" \
	[ "$started" -gt 0 -a "$finished" -eq "$started" ]
check "at the end exactly one generation runs: $final, active" \
	[ "$(G list "$SVC" --json | jq -r '[.services[0].generations[] | "\(.generation):\(.state)"] | join(" ")')" = "$final:active" ]
check "... and it answers" grep -q "^generation $final\$" <<<"$(curl -s -m 3 http://127.0.0.1:$PORT/)"

addr=$(json_field "$SVC" "$final" address) veth=$(json_field "$SVC" "$final" veth)
nat=$(iptables -w 5 -t nat -S) filter=$(iptables -w 5 -t filter -S)
check "one service chain, GEN-S-$SVC" [ "$(grep '^-N GEN-S-' <<<"$nat")" = "-N GEN-S-$SVC" ]
check "... pointing at generation $final ($addr)" \
	[ "$(grep "^-A GEN-S-$SVC " <<<"$nat" | grep -o 'to-destination [0-9.]*' | sort -u)" = "to-destination $addr" ]
check "... one jump to it from GEN-DNAT" [ "$(grep -c -- "^-A GEN-DNAT .*-j GEN-S-$SVC\$" <<<"$nat")" = 1 ]
for j in "PREROUTING .*-j GEN-DNAT" "OUTPUT .*-j GEN-DNAT" "POSTROUTING -j GEN-POST"; do
	check "exactly one copy of the jump ${j/.\*/...}" [ "$(grep -c -- "^-A $j\$" <<<"$nat")" = 1 ]
done
for j in "FORWARD -j GEN-FWD" "INPUT -j GEN-INPUT"; do
	check "exactly one copy of the jump $j" [ "$(grep -c -- "^-A $j\$" <<<"$filter")" = 1 ]
done
nss=$(ip netns list | awk '{print $1}' | grep -E "^gen-$SVC-[0-9]+\$" | grep -vx "gen-$SVC-$final")
check "no network namespace of another generation is left${nss:+: $(echo $nss)}" [ -z "$nss" ]
cgs=$(for base in "$TESTCG/gen" "${V1CGS[@]/%//gen}"; do
	[ -d "$base/$SVC" ] && find "$base/$SVC" -mindepth 1 -maxdepth 1 -type d ! -name "$final"
done)
check "no cgroup of another generation is left${cgs:+: $(echo $cgs)}" [ -z "$cgs" ]
# (a link goes with its namespace, in the kernel's time: 3 s at most)
for _ in $(seq 30); do
	links=$(ip -o link show type veth | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -vx -e "$CLIENT_IF" -e "$veth")
	[ -z "$links" ] && break
	sleep 0.1
done
check "no veth of another generation is left${links:+: $(echo $links)}" [ -z "$links" ]
check "no record of another generation is left" [ "$(ls "$RECS" | tr '\n' ' ')" = "$final.json " ]
# What is left, said for the report.
for f in "$RECS"/*; do
	[ "$f" = "$RECS/$final.json" ] || echo "# left: record $(basename "$f"): $(jq -c '{state, pid, cgroup, netns, veth}' "$f" 2>/dev/null || cat "$f")"
done
for cg in $cgs; do echo "# left: cgroup $cg: processes $(cat "$cg/cgroup.procs" | tr '\n' ' ')"; done
for ns in $nss; do echo "# left: netns $ns: processes $(ip netns pids "$ns" | tr '\n' ' ')"; done

stop_gend
check "gend's log has no sanitizer report" no_sanitizer_reports
