#!/usr/bin/env bash
# Bad input gets a clear error and changes nothing: a malformed policy, an
# unknown service, a switch to a generation that is not ready, requests
# from a non-root user, malformed and oversized requests, gend without root.
. "$(dirname "$0")/lib.sh"
preflight

# A malformed policy: gend -n names file, line and key, and what is allowed.
mkdir -p "$T/bad"
printf '[service]\nexec = /bin/true\n[listen]\nport = 80:9501\n[drain]\nsettle = soon\n' > "$T/bad/web.policy"
out=$("$B/gend" -n -c "$T/bad" 2>&1); rc=$?
check "gend -n rejects a malformed policy with exit 1" [ $rc -eq 1 ]
check "... naming file, line and key, and what is allowed" \
	grep -qF "$T/bad/web.policy:6: [drain] settle: 'soon' is not a duration (use e.g. 200ms, 10s, 2m)" <<<"$out"
out=$("$B/gend" -c "$T/bad" -r "$T/badrun" 2>&1); rc=$?
check "gend does not start on a malformed policy" bash -c "[ $rc -eq 1 ] && [ ! -e '$T/badrun/gend.sock' ]"
write_policy "$SVC"
check "gend -n accepts the good one" bash -c "'$B/gend' -n -c '$T/etc' | grep -q '1 policy in .* OK: $SVC'"
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$B/gend" -c "$T/etc" 2>&1); rc=$?
check "gend refuses to run without root, saying why" \
	bash -c "[ $rc -eq 1 ] && grep -q 'must run as root' <<<'$out'"

start_gend || exit 1
G new "$SVC" > /dev/null 2>&1
rules_before=$(iptables -w 5 -t nat -S | grep GEN-)

out=$(G new nosuch 2>&1); rc=$?
check "an unknown service: exit 1 and where policies are looked for" \
	bash -c "[ $rc -eq 1 ] && grep -qF \"unknown service 'nosuch': no nosuch.policy in $T/etc\" <<<\"$out\""
out=$(G switch "$SVC" 7 2>&1); rc=$?
check "a switch to a generation that does not exist: exit 1" \
	bash -c "[ $rc -eq 1 ] && grep -q 'has no generation 7' <<<'$out'"
G new "$SVC" --no-switch > /dev/null 2>&1
G retire "$SVC" 2 > /dev/null 2>&1     # now draining, then retired
out=$(G switch "$SVC" 1 2>&1); rc=$?
check "a switch to the generation that is active already: exit 1" \
	bash -c "[ $rc -eq 1 ] && grep -q 'active already' <<<'$out'"
out=$(G frobnicate 2>&1); rc=$?
check "a usage error exits 2" [ $rc -eq 2 ]
out=$(G retire "$SVC" 1 --timeout soon 2>&1); rc=$?
check "a bad --timeout is a usage error" bash -c "[ $rc -eq 2 ] && grep -q 'not a duration' <<<'$out'"

# Not root: even with the socket opened up, gend checks SO_PEERCRED.
chmod 0711 "$T" "$T/run"; chmod 0666 "$T/run/gend.sock"
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$B/gen" -s "$T/run/gend.sock" list 2>&1); rc=$?
chmod 0700 "$T/run"; chmod 0600 "$T/run/gend.sock"
check "a request from a non-root user is refused" \
	bash -c "[ $rc -eq 1 ] && grep -q 'permission denied: gend takes requests from root only (you are uid 65534)' <<<'$out'"

out=$(printf '{"cmd": "new", "service": \n' | "$TOOLS/ctlraw" "$T/run/gend.sock")
check "a malformed request gets an error" grep -q '"ok":false,"error":"malformed request' <<<"$out"
out=$(printf '[1,2]\n' | "$TOOLS/ctlraw" "$T/run/gend.sock")
check "a request that is not an object gets an error" grep -q 'not an object' <<<"$out"
out=$(printf '{"cmd":"reboot"}\n' | "$TOOLS/ctlraw" "$T/run/gend.sock")
check "an unknown command gets an error" grep -q 'unknown command' <<<"$out"
out=$(head -c 70000 /dev/zero | tr '\0' 'x' | "$TOOLS/ctlraw" "$T/run/gend.sock")
check "an oversized request gets an error" grep -q 'request too large' <<<"$out"
out=$(printf '{"cmd":"list"}\n{"cmd":"list"}\n' | "$TOOLS/ctlraw" "$T/run/gend.sock")
check "two requests on one connection are answered in turn" [ "$(grep -c '"ok":true' <<<"$out")" -eq 2 ]
out=$(bash -c "$(join_run_cgroups "$TESTCG/gen/supervisor") exec '$B/gend' -c '$T/etc' -r '$T/run' -s '$T/state' -l '$T/log' -p $POOL" 2>&1); rc=$?
check "a second gend refuses to start" [ $rc -eq 1 ]
check "... saying which gend runs in this network namespace, before it changes anything" \
	grep -q "gend: error: another gend runs in this network namespace: pid $GEND (" <<<"$out"
# A client that holds its connection and says nothing blocks nobody.
{ sleep 3; printf '{"cmd":"list"}\n'; } | "$TOOLS/ctlraw" "$T/run/gend.sock" > "$T/slow" &
slow=$!
sleep 0.3
check "a silent client does not block others" quiet timeout 2 "$B/gen" -s "$T/run/gend.sock" list "$SVC"
wait $slow
check "... and is answered when it speaks" grep -q '"ok":true' "$T/slow"
# A client that goes away during gen new: the deployment goes on.
"$B/gen" -s "$T/run/gend.sock" new "$SVC" > /dev/null 2>&1 &
client=$!
for _ in $(seq 100); do [ -n "$(json_field "$SVC" 3 state)" ] && break; sleep 0.05; done
kill -KILL $client 2>/dev/null
wait $client 2>/dev/null
for _ in $(seq 100); do [ "$(json_field "$SVC" 3 state)" = active ] && break; sleep 0.1; done
check "a client killed during gen new: generation 3 still becomes active" [ "$(json_field "$SVC" 3 state)" = active ]
check "gend still answers after all that" quiet G list "$SVC"
norm='s/10\.213\.240\.[0-9]+:/ADDR:/; s/set-xmark 0x[0-9a-f]+\//set-xmark MARK\//'
check "bad requests changed no rule (only generation 3's switch did)" \
	[ "$(iptables -w 5 -t nat -S | grep GEN- | sed -E "$norm")" = "$(sed -E "$norm" <<<"$rules_before")" ]
check "generation 3 serves" grep -q "generation 3" <<<"$(curl -s -m 3 http://127.0.0.1:$PORT/)"
G retire "$SVC" 3 --force --wait > /dev/null
stop_gend
check "gend's log has no sanitizer report" no_sanitizer_reports
