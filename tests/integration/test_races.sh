#!/usr/bin/env bash
# Races of the lifecycle, each made deterministic with gend's test hooks
# (a rule transaction held while a file exists, a stand-in for
# iptables-restore, a 2 s time limit for transactions):
#  (a) a retire while a switch is held waits for the switch;
#  (b) the new generation dies while its switch is held;
#  (c) iptables-restore fails (a long multi-line error; a missing program);
#  (d) iptables-restore hangs;
#  (e) a rollback to a generation whose main process has exited;
#  (f) gend is killed while a switch's iptables-restore still runs.
. "$(dirname "$0")/lib.sh"
preflight

REAL_RESTORE=$(command -v iptables-restore) || { notok "iptables-restore is installed"; exit 1; }
mkdir -p "$T/bin"
# The stand-in: the real iptables-restore, unless a flag file says to fail
# (with a long error), to hang, or to be slow (as one waiting for the
# xtables lock is).
cat > "$T/bin/restore" <<EOF
#!/bin/sh
if [ -e "$T/flag-fail" ]; then cat "$T/fail-text" >&2; exit 1; fi
if [ -e "$T/flag-hang" ]; then exec sleep 20; fi
if [ -e "$T/flag-slow" ]; then sleep 1.5; fi
exec $REAL_RESTORE "\$@"
EOF
chmod 755 "$T/bin/restore"
ln -s restore "$T/bin/ipt"
export GEN_TEST_HOLD_RULES=$T/hold GEN_TEST_IPTABLES_RESTORE=$T/bin/ipt GEN_TEST_RULES_TIMEOUT_MS=2000

SVCD=${SVC}d PORTD=$((PORT + 1))
SVCE=${SVC}e PORTE=$((PORT + 2))
write_policy "$SVC"
# quiet-procs = 0: a generation drains until its main process exits, so
# it is there to switch back to.
POLICY_PORT=$PORTD write_policy "$SVCD" "[drain]" "quiet-procs = 0" "timeout = 60s"
# stop-signal: the sample exits when draining starts; settle 20s keeps the
# generation draining (without its main process) for a while.
POLICY_PORT=$PORTE write_policy "$SVCE" "[drain]" "stop-signal = SIGTERM" "settle = 20s"
start_gend || exit 1
check "gend says it runs the test hooks" \
	bash -c "grep -q 'test hook: rule transactions wait while $T/hold exists' '$T/gend.log' &&
		grep -q 'test hook: rule transactions time out after 2000 ms' '$T/gend.log'"

# Helpers. serves PORT N: the public port answers from generation N.
serves() { grep -q "^generation $2\$" <<<"$(curl -s -m 3 "http://127.0.0.1:$1/")"; }
state_is() { [ "$(json_field "$1" "$2" state)" = "$3" ]; }
wait_state() {  # SVC N STATE: at most 10 s
	for _ in $(seq 100); do state_is "$@" && return 0; sleep 0.1; done
	return 1
}
# The service's chain DNATs to generation N's address, and to nothing else.
rules_at() {
	local addr
	addr=$(json_field "$1" "$2" address)
	[ -n "$addr" ] && [ "$(iptables -w 5 -t nat -S "GEN-S-$1" 2>/dev/null |
		grep -o 'to-destination [0-9.]*' | sort -u)" = "to-destination $addr" ]
}
# The generation's processes run and are not frozen.
runs_unfrozen() {  # SVC N
	local pid
	pid=$(json_field "$1" "$2" pid)
	[ -n "$pid" ] && [ "$pid" -gt 0 ] && kill -0 "$pid" &&
		grep -q '^frozen 0' "$TESTCG/gen/$1/$2/cgroup.events"
}
gone() { [ -z "$(json_field "$1" "$2" state)" ]; }
states() {  # SVC: "1:active 2:ready"
	G list "$1" --json | jq -r '[.services[0].generations[] | "\(.generation):\(.state)"] | join(" ")'
}
# PORT SVC N: generation N answers, is active, and the rules point at it.
serving() { serves "$1" "$3" && state_is "$2" "$3" active && rules_at "$2" "$3"; }
# RC TEXT PATTERN...: exit status 1 and the text has every pattern.
failed_saying() {
	local rc=$1 text=$2 p; shift 2
	[ "$rc" -eq 1 ] || return 1
	for p in "$@"; do grep -qF -- "$p" <<<"$text" || return 1; done
}
ok_saying() {  # RC TEXT PATTERN
	[ "$1" -eq 0 ] && grep -qF -- "$3" <<<"$2"
}

# (a) A retire while a switch is held waits for it (jobs run one at a
# time per service), and then judges what the switch made.
# (a1) retire of the ready generation that a held switch makes active.
G new "$SVC" > /dev/null 2>&1
G new "$SVC" --no-switch > /dev/null 2>&1
check "(a1) generation 2 is ready, generation 1 serves" \
	[ "$(states "$SVC")" = "1:active 2:ready" -a "$(curl -s -m 3 http://127.0.0.1:$PORT/)" = "generation 1" ]
touch "$T/hold"
G switch "$SVC" 2 > "$T/a1-switch" 2>&1 & sw=$!
wait_state "$SVC" 2 switching
G retire "$SVC" 2 > "$T/a1-retire" 2>&1 & rt=$!
sleep 1
check "(a1) while the switch is held, the retire waits (no answer, generation 2 still switching)" \
	[ -d /proc/$rt -a ! -s "$T/a1-retire" -a "$(json_field "$SVC" 2 state)" = switching ]
check "(a1) ... and generation 1 still serves" serves $PORT 1
rm -f "$T/hold"
wait $sw; rc_sw=$?
wait $rt; rc_rt=$?
check "(a1) the switch, once released, succeeds" ok_saying $rc_sw "$(cat "$T/a1-switch")" "go to generation 2"
check "(a1) the retire then finds generation 2 active and refuses (exit 1)" \
	failed_saying $rc_rt "$(cat "$T/a1-retire")" "generation 2 is the active generation"
sleep 1
check "(a1) generation 2 serves, its rules point at it, it stays active" serving $PORT "$SVC" 2
check "(a1) ... and nothing froze or killed it" runs_unfrozen "$SVC" 2

# (a2) retire of the draining generation that a held rollback makes active.
G new "$SVCD" > /dev/null 2>&1
G new "$SVCD" > /dev/null 2>&1
check "(a2) generation 1 of $SVCD is draining, 2 serves" [ "$(states "$SVCD")" = "1:draining 2:active" ]
check "(a2) ... 2 serves" serving $PORTD "$SVCD" 2
touch "$T/hold"
G rollback "$SVCD" > "$T/a2-rollback" 2>&1 & sw=$!
wait_state "$SVCD" 1 switching
G retire "$SVCD" 1 > "$T/a2-retire" 2>&1 & rt=$!
sleep 1
check "(a2) while the rollback is held, the retire of generation 1 waits" \
	[ -d /proc/$rt -a ! -s "$T/a2-retire" -a "$(json_field "$SVCD" 1 state)" = switching ]
rm -f "$T/hold"
wait $sw; rc_sw=$?
wait $rt; rc_rt=$?
check "(a2) the rollback succeeds" ok_saying $rc_sw "$(cat "$T/a2-rollback")" "go to generation 1"
check "(a2) the retire then finds generation 1 active and refuses (exit 1)" \
	failed_saying $rc_rt "$(cat "$T/a2-retire")" "generation 1 is the active generation"
sleep 1
check "(a2) generation 1 serves, its rules point at it, it stays active" serving $PORTD "$SVCD" 1
check "(a2) ... and nothing froze or killed it" runs_unfrozen "$SVCD" 1
check "(a2) generation 2 drains" state_is "$SVCD" 2 draining

# (a3) retire --now of the active generation while a switch away from it is
# held: it runs after the switch, on what is then a draining generation.
touch "$T/hold"
G new "$SVCD" > "$T/a3-new" 2>&1 & sw=$!
wait_state "$SVCD" 3 switching
G retire "$SVCD" 1 --now --wait > "$T/a3-retire" 2>&1 & rt=$!
sleep 1
check "(a3) while the switch to generation 3 is held, the retire of generation 1 waits" \
	[ -d /proc/$rt -a ! -s "$T/a3-retire" -a "$(json_field "$SVCD" 1 state)" = active ]
rm -f "$T/hold"
wait $sw; rc_sw=$?
wait $rt; rc_rt=$?
check "(a3) the switch to generation 3 succeeds" [ $rc_sw -eq 0 ]
check "(a3) the retire --now then takes the draining generation 1 out, forced (exit 3)" \
	bash -c "[ $rc_rt = 3 ] && grep -q 'generation 1 retired: forced' '$T/a3-retire'"
check "(a3) generation 3 serves, its rules point at it, it stays active" serving $PORTD "$SVCD" 3
check "(a3) ... nothing froze or killed it" runs_unfrozen "$SVCD" 3
check "(a3) ... and generation 1 is gone" gone "$SVCD" 1
G retire "$SVCD" 2 --now --wait > /dev/null 2>&1

# (b) The new generation dies while its switch is held.
"$TOOLS/load" 127.0.0.1 $PORT 300 20 10 > "$T/load-b" 2> "$T/load-b.err" & lb=$!
touch "$T/hold"
G new "$SVC" > "$T/b-new" 2>&1 & nw=$!
wait_state "$SVC" 3 switching
pid3=$(json_field "$SVC" 3 pid)
kill -KILL "$pid3"
for _ in $(seq 100); do [ "$(json_field "$SVC" 3 state)" = failed ] && break; sleep 0.1; done
check "(b) killed while its switch is held, generation 3 fails (and is removed)" state_is "$SVC" 3 failed
check "(b) ... while generation 2 serves" serves $PORT 2
rm -f "$T/hold"
wait $nw; rc=$?
echo "# (b) gen new: $(tail -1 "$T/b-new")"
check "(b) gen new fails (exit 1)" [ $rc -eq 1 ]
check "(b) ... naming what happened: generation 3 went away during the switch, killed" \
	failed_saying $rc "$(cat "$T/b-new")" "generation 3 went away during the switch" "generation 3 exited (signal KILL)"
check "(b) ... and what serves" grep -q "generation 2 is still serving" "$T/b-new"
check "(b) generation 2 serves, stays active, its rules point at it" serving $PORT "$SVC" 2
G retire "$SVC" 3 > /dev/null 2>&1
wait $lb
echo "# (b) load meanwhile: $(cat "$T/load-b")$(sort "$T/load-b.err" | uniq -c | head -3 | sed 's/^/; /')"

# (c) iptables-restore fails: with a long multi-line error, then because
# the program is not there. The whole error reaches gen new.
{
	echo "BEGIN-OF-ERROR iptables-restore v1.8.9 (stand-in): line 1: cannot do that"
	for i in $(seq 38); do
		printf 'iptables-restore: line %d: RULE_APPEND failed (reason number %d): rule in chain GEN-S-%s\n' \
			$((i + 1)) $i "$SVC"
	done
	echo "END-OF-ERROR Try 'iptables-restore -h' for more information."
} > "$T/fail-text"
echo "# (c) the stand-in's error: $(wc -l < "$T/fail-text") lines, $(wc -c < "$T/fail-text") bytes"
touch "$T/flag-fail"
out=$(G new "$SVC" 2>&1); rc=$?
rm -f "$T/flag-fail"
check "(c) a failing iptables-restore: gen new fails (exit 1)" [ $rc -eq 1 ]
missing=0
while IFS= read -r l; do grep -qF -- "$l" <<<"$out" || missing=$((missing + 1)); done < "$T/fail-text"
echo "# (c) gen new said $(wc -c <<<"$out") bytes, ending: $(tail -c 120 <<<"$out" | tr '\n' ' ')"
check "(c) ... with the whole error text ($missing of $(wc -l < "$T/fail-text") lines missing)" [ $missing -eq 0 ]
check "(c) ... and says what still serves" grep -q "generation 2 is still serving" <<<"$out"
check "(c) generation 2 serves, stays active, its rules point at it" serving $PORT "$SVC" 2
check "(c) generation 4 is left ready" state_is "$SVC" 4 ready
out=$(G switch "$SVC" 4 2>&1); rc=$?
check "(c) a later switch (to generation 4) works" ok_saying $rc "$out" "go to generation 4"
check "(c) ... generation 4 serves" serving $PORT "$SVC" 4
rm "$T/bin/ipt"
out=$(G new "$SVC" 2>&1); rc=$?
ln -s restore "$T/bin/ipt"
echo "# (c) gen new: $(tail -1 <<<"$out")"
check "(c) iptables-restore missing: gen new fails (exit 1), naming the program and why" \
	failed_saying $rc "$out" "$T/bin/ipt" "No such file or directory"
check "(c) generation 4 serves, stays active, its rules point at it" serving $PORT "$SVC" 4
G retire "$SVC" 5 > /dev/null 2>&1
out=$(G new "$SVC" 2>&1); rc=$?
check "(c) the next deploy works (generation 6 serves)" ok_saying $rc "$out" "go to generation 6"
check "(c) ... generation 6 serves" serving $PORT "$SVC" 6

# (d) iptables-restore hangs: killed at the 2 s limit.
touch "$T/flag-hang"
start=$(date +%s%N)
out=$(G new "$SVC" 2>&1); rc=$?
took=$(( ($(date +%s%N) - start) / 1000000 ))
rm -f "$T/flag-hang"
echo "# (d) gen new after $took ms: $(tail -1 <<<"$out")"
check "(d) a hanging iptables-restore: the switch fails (exit 1) with 'did not finish within'" \
	failed_saying $rc "$out" "did not finish within"
check "(d) ... within the limit and a little more (${took} ms)" [ $took -lt 8000 ]
gend_cg=$CG2$(awk -F: '$1 == 0 {print $3}' "/proc/$GEND/cgroup")
for _ in $(seq 20); do [ "$(cat "$gend_cg/cgroup.procs")" = "$GEND" ] && break; sleep 0.1; done
check "(d) the hung helper was killed: gend is alone in its cgroup" \
	[ "$(cat "$gend_cg/cgroup.procs")" = "$GEND" ]
check "(d) generation 6 serves, stays active, its rules point at it" serving $PORT "$SVC" 6
G retire "$SVC" 7 > /dev/null 2>&1
out=$(G new "$SVC" 2>&1); rc=$?
check "(d) the next deploy works (generation 8 serves)" ok_saying $rc "$out" "go to generation 8"
check "(d) ... generation 8 serves" serving $PORT "$SVC" 8

# (e) Rollback to a generation whose main process has exited.
G new "$SVCE" > /dev/null 2>&1
G new "$SVCE" > /dev/null 2>&1
for _ in $(seq 50); do [ "$(json_field "$SVCE" 1 pid)" = 0 ] && break; sleep 0.1; done
check "(e) generation 1 of $SVCE drains with its main process gone (SIGTERM)" \
	[ "$(json_field "$SVCE" 1 pid):$(json_field "$SVCE" 1 state)" = 0:draining ]
out=$(G rollback "$SVCE" 2>&1); rc=$?
echo "# (e) gen rollback: $out"
check "(e) rollback fails with exit status 1" [ $rc -eq 1 ]
check "(e) ... saying the main process is not alive" grep -q "main process alive" <<<"$out"
out=$(G switch "$SVCE" 1 2>&1); rc=$?
check "(e) switch to it fails too (exit 1), saying its main process has exited" \
	failed_saying $rc "$out" "its main process has exited"
check "(e) generation 2 keeps serving and stays active" serving $PORTE "$SVCE" 2

# (f) gend is killed while a switch's iptables-restore runs (slow, as one
# waiting for the xtables lock); a new gend starts at once. The old
# transaction must not land behind the new gend's back.
touch "$T/flag-slow"
G new "$SVC" > "$T/f-new" 2>&1 & nw=$!
wait_state "$SVC" 9 switching
sleep 0.3
kill_gend
rm -f "$T/flag-slow"
wait $nw; rc=$?
check "(f) gen new, whose gend died, fails on the client side" [ $rc -eq 1 ]
start_gend || exit 1
sleep 2.5                               # the old transaction would have ended by now
check "(f) the new gend took generation 8 back as active, 9 as ready" \
	[ "$(json_field "$SVC" 8 state):$(json_field "$SVC" 9 state)" = active:ready ]
echo "# (f) $SVC's chain: $(iptables -w 5 -t nat -S "GEN-S-$SVC" | grep -o 'to-destination [0-9.:]*'); generation 8 is $(json_field "$SVC" 8 address), 9 is $(json_field "$SVC" 9 address)"
check "(f) the rules point at the generation gend says is active (8)" rules_at "$SVC" 8
G retire "$SVC" 9 --wait > /dev/null 2>&1
check "(f) once the ready generation 9 is retired, generation 8 still serves" serves $PORT 8

G retire "$SVC" 8 --force --wait > /dev/null 2>&1
G retire "$SVCD" 3 --force --now --wait > /dev/null 2>&1
G retire "$SVCE" 2 --force --now --wait > /dev/null 2>&1
check "no GEN-S chain is left" bash -c "! iptables -w 5 -t nat -S | grep -q 'GEN-S-'"
stop_gend
check "gend's log has no sanitizer report" no_sanitizer_reports
