#!/usr/bin/env bash
# gen reload and SIGHUP re-read the policies: a new policy is a new
# service; a changed one applies to the next generation (running ones keep
# theirs); one that fails to parse changes nothing and is named by
# file:line; a removed one leaves its generations serving until retired
# ("policy": null), takes no new generation, and survives a gend restart.
. "$(dirname "$0")/lib.sh"
preflight

SVCB=${SVC}b PORTB=$((PORT + 1))
SVCC=${SVC}c PORTC=$((PORT + 2))
SVCH=${SVC}h PORTH=$((PORT + 3))
write_policy "$SVC" "[service]" "environment = RELOAD_MARK=1"
start_gend || exit 1

serves() { [ "$(curl -s -m 3 "http://127.0.0.1:$1/")" = "generation $2" ]; }
env_of() {  # SVC N: the server's environment, one a line (the main pid
	# gend reports is the generation's pid 1, gen-init, whose child it is)
	local pid
	pid=$(json_field "$1" "$2" pid)
	[ -n "$pid" ] && [ "$pid" -gt 0 ] || return 1
	[ "$(cat "/proc/$pid/comm")" = gen-init ] && pid=$(cat "/proc/$pid/task/$pid/children" | awk '{print $1}')
	[ -n "$pid" ] && tr '\0' '\n' < "/proc/$pid/environ"
}
has_env() { env_of "$1" "$2" | grep -qx "$3"; }
policy_of() { G list --json | jq -r --arg s "$1" '.services[] | select(.service == $s) | .policy'; }
services() { G list --json | jq -r '[.services[].service] | sort | join(" ")'; }
reloads() { grep -c "reload: .* read from" "$T/gend.log"; }
wait_reloads() {  # N: until gend's log has N reload lines, 5 s at most
	for _ in $(seq 50); do [ "$(reloads)" -ge "$1" ] && return 0; sleep 0.1; done
	return 1
}
# RC TEXT PATTERN...: exit status 1 and the text has every pattern.
failed_saying() {
	local rc=$1 text=$2 p; shift 2
	[ "$rc" -eq 1 ] || return 1
	for p in "$@"; do grep -qF -- "$p" <<<"$text" || return 1; done
}

G new "$SVC" > /dev/null 2>&1
check "generation 1 of $SVC serves, with RELOAD_MARK=1" \
	bash -c "[ \"\$(curl -s -m 3 http://127.0.0.1:$PORT/)\" = 'generation 1' ]" 
check "... in its environment" has_env "$SVC" 1 RELOAD_MARK=1

# A new policy.
POLICY_PORT=$PORTB write_policy "$SVCB"
out=$(G new "$SVCB" 2>&1); rc=$?
check "before a reload, $SVCB is unknown" failed_saying $rc "$out" "unknown service '$SVCB'"
out=$(G reload 2>&1); rc=$?
check "gen reload succeeds and says so" bash -c "[ $rc -eq 0 ] && grep -q 'policies re-read' <<<'$out'"
check "... gend's log: $SVCB is a new service" grep -q "reload: $SVCB: new service" "$T/gend.log"
check "... 2 policies read: 1 new, 1 re-read, 0 gone" grep -q "reload: 2 policies read from .*: 1 new, 1 re-read, 0 gone" "$T/gend.log"
out=$(G new "$SVCB" 2>&1); rc=$?
check "gen new on the new service works" [ $rc -eq 0 ]
check "... it serves on its port" serves $PORTB 1

# A changed policy: the next generation gets it, the running one keeps its own.
write_policy "$SVC" "[service]" "environment = RELOAD_MARK=2" "[drain]" "timeout = 25s"
G reload > /dev/null 2>&1
check "after the change, the running generation 1 keeps RELOAD_MARK=1" has_env "$SVC" 1 RELOAD_MARK=1
out=$(G new "$SVC" 2>&1); rc=$?
check "gen new after the change works" [ $rc -eq 0 ]
check "... generation 2 has the new value RELOAD_MARK=2" has_env "$SVC" 2 RELOAD_MARK=2
check "... and not the old one" bash -c "! grep -qx RELOAD_MARK=1 <<<'$(env_of "$SVC" 2)'"
check "... generation 1 drains by its own policy (30 s)" grep -q "generation 1 draining: .*, at most 30.0 s" <<<"$out"
out=$(G new "$SVC" 2>&1)
check "... generation 2 drains by the new one (25 s)" grep -q "generation 2 draining: .*, at most 25.0 s" <<<"$out"
check "generation 3 serves" serves $PORT 3

# A broken policy (and a new one in the same reload): nothing changes.
cp "$T/etc/$SVC.policy" "$T/good.policy"
echo "this line is not a key = value pair" | sed 's/ = / /' >> "$T/etc/$SVC.policy"
line=$(wc -l < "$T/etc/$SVC.policy")
POLICY_PORT=$PORTC write_policy "$SVCC"
before=$(services)
out=$(G reload 2>&1); rc=$?
echo "# gen reload: $out"
check "gen reload of a broken policy fails (exit 1), naming file:line" \
	failed_saying $rc "$out" "$T/etc/$SVC.policy:$line:"
check "... gend's log says the same" grep -q "$T/etc/$SVC.policy:$line:" "$T/gend.log"
check "... and nothing changed: the same services ($before), $SVCC not among them" [ "$(services)" = "$before" ]
out=$(G new "$SVCC" 2>&1); rc=$?
check "... gen new on $SVCC is refused: unknown" failed_saying $rc "$out" "unknown service '$SVCC'"
out=$(G new "$SVC" 2>&1); rc=$?
check "the old services still deploy: $SVC generation 4" bash -c "[ $rc -eq 0 ] && [ \"\$(curl -s -m 3 http://127.0.0.1:$PORT/)\" = 'generation 4' ]"
check "... with the last good policy (RELOAD_MARK=2)" has_env "$SVC" 4 RELOAD_MARK=2
out=$(G new "$SVCB" 2>&1); rc=$?
check "... and $SVCB generation 2" bash -c "[ $rc -eq 0 ] && [ \"\$(curl -s -m 3 http://127.0.0.1:$PORTB/)\" = 'generation 2' ]"
cp "$T/good.policy" "$T/etc/$SVC.policy"

# A removed policy: its generation keeps serving until retired.
rm "$T/etc/$SVCB.policy"
out=$(G reload 2>&1); rc=$?
check "gen reload after removing $SVCB's policy succeeds" [ $rc -eq 0 ]
check "... the fixed policy and the new $SVCC are read: 2 policies, 1 new, 1 re-read, 1 gone" \
	grep -q "reload: 2 policies read from .*: 1 new, 1 re-read, 1 gone" "$T/gend.log"
check "$SVCB generation 2 keeps serving" serves $PORTB 2
check "... and stays active" [ "$(json_field "$SVCB" 2 state)" = active ]
check "gen list shows $SVCB with policy null" [ "$(policy_of "$SVCB")" = null ]
out=$(G new "$SVCB" 2>&1); rc=$?
check "gen new on $SVCB is refused (exit 1), saying its policy is gone" failed_saying $rc "$out" "no policy any more"
check "... and $SVCB generation 2 still serves" serves $PORTB 2
# A restarted gend takes it back as it was. A record it cannot read
# (written by hand here) is left alone, and gen list says so.
stop_gend
echo '{"generation": 77, broken' > "$T/run/generations/$SVCB/77.json"
start_gend || exit 1
check "a record gend cannot read: gen list warns that what it describes is not managed" \
	grep -q "^gen: warning: a record gend could not take back, so what it describes is not managed: $T/run/generations/$SVCB/77.json: " \
	<<<"$(G list 2>&1 >/dev/null)"
check "... gen list --json has it under unmanaged" \
	grep -q "/$SVCB/77.json: " <<<"$(G list --json | jq -r '.unmanaged[]')"
check "... the record is left as it was" grep -q '"generation": 77, broken' "$T/run/generations/$SVCB/77.json"
check "a restarted gend takes $SVCB generation 2 back: active, adopted, policy null" \
	[ "$(json_field "$SVCB" 2 state):$(json_field "$SVCB" 2 adopted):$(policy_of "$SVCB")" = active:true:null ]
check "... it still serves" serves $PORTB 2
out=$(G new "$SVCB" 2>&1); rc=$?
check "... and gen new on it is still refused" failed_saying $rc "$out" "no policy any more"
out=$(G retire "$SVCB" 2 --force --wait 2>&1); rc=$?
check "gen retire --force takes it out (exit 0)" bash -c "[ $rc -eq 0 ] && grep -q 'generation 2 retired' <<<'$out'"
check "... its rules are gone" bash -c "! iptables -w 5 -t nat -S | grep -q 'GEN-S-$SVCB'"
check "... its port answers no more" bash -c "! curl -s -m 3 http://127.0.0.1:$PORTB/ > /dev/null"
check "$SVCC, added by that reload, deploys" bash -c "'$B/gen' -s '$T/run/gend.sock' new $SVCC > /dev/null 2>&1 &&
	[ \"\$(curl -s -m 3 http://127.0.0.1:$PORTC/)\" = 'generation 1' ]"

# SIGHUP does the same: add, break (nothing changes), remove.
n=$(reloads)
POLICY_PORT=$PORTH write_policy "$SVCH"
kill -HUP "$GEND"
check "SIGHUP re-reads the policies" wait_reloads $((n + 1))
check "... $SVCH is a new service" grep -q "reload: $SVCH: new service" "$T/gend.log"
out=$(G new "$SVCH" 2>&1); rc=$?
check "... gen new on it works" bash -c "[ $rc -eq 0 ] && [ \"\$(curl -s -m 3 http://127.0.0.1:$PORTH/)\" = 'generation 1' ]"
cp "$T/etc/$SVCH.policy" "$T/good.policy"
echo "[nosuchsection]" >> "$T/etc/$SVCH.policy"
echo "key = value" >> "$T/etc/$SVCH.policy"
hline=$(grep -n '^\[nosuchsection\]' "$T/etc/$SVCH.policy" | cut -d: -f1)
rm "$T/etc/$SVCC.policy"                # in the same reload: must not happen
before=$(services)
kill -HUP "$GEND"
for _ in $(seq 50); do grep -q "$T/etc/$SVCH.policy:" "$T/gend.log" && break; sleep 0.1; done
echo "# gend's log: $(grep "$T/etc/$SVCH.policy:" "$T/gend.log" | tail -1)"
check "SIGHUP with a broken policy: gend's log names file:line" \
	bash -c "grep -q '$T/etc/$SVCH.policy:$hline:\|$T/etc/$SVCH.policy:$((hline + 1)):' '$T/gend.log'"
check "... gend goes on" kill -0 "$GEND"
check "... nothing changed: the same services, $SVCC keeps its policy" \
	[ "$(services)" = "$before" -a "$(policy_of "$SVCC")" = "$T/etc/$SVCC.policy" ]
out=$(G new "$SVCH" 2>&1); rc=$?
check "... $SVCH still deploys (generation 2)" bash -c "[ $rc -eq 0 ] && [ \"\$(curl -s -m 3 http://127.0.0.1:$PORTH/)\" = 'generation 2' ]"
cp "$T/good.policy" "$T/etc/$SVCH.policy"
POLICY_PORT=$PORTC write_policy "$SVCC"
rm "$T/etc/$SVCH.policy"
n=$(reloads)
kill -HUP "$GEND"
check "SIGHUP after removing $SVCH's policy re-reads" wait_reloads $((n + 1))
check "... $SVCH generation 2 keeps serving, active, policy null" \
	bash -c "[ \"\$(curl -s -m 3 http://127.0.0.1:$PORTH/)\" = 'generation 2' ] && [ '$(json_field "$SVCH" 2 state):$(policy_of "$SVCH")' = active:null ]"
out=$(G new "$SVCH" 2>&1); rc=$?
check "... gen new on it is refused" failed_saying $rc "$out" "no policy any more"
out=$(G retire "$SVCH" 2 --force --wait 2>&1); rc=$?
check "... gen retire --force takes it out" [ $rc -eq 0 ]

G retire "$SVC" 4 --force --wait > /dev/null 2>&1
G retire "$SVCC" 1 --force --wait > /dev/null 2>&1
check "no GEN-S chain is left" bash -c "! iptables -w 5 -t nat -S | grep -q 'GEN-S-'"
stop_gend
check "gend's log has no sanitizer report" no_sanitizer_reports
