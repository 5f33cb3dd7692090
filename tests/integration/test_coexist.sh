#!/usr/bin/env bash
# A good neighbour: two gends in two network namespaces keep to their own
# rules; a second gend in one namespace is refused; a rule and a conntrack
# mark of another program survive gend's start, switches and stop, and
# gend's drain never counts a connection it did not mark; a public port a
# host socket holds is refused unless the policy says to take it over.
. "$(dirname "$0")/lib.sh"
preflight

save() { iptables-save | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'; }

# Another program's rules and marks, there before gend: a DNAT rule in
# PREROUTING, and mark bit 0x4000 on every new connection from this host.
iptables -w 5 -t nat -A PREROUTING -p tcp --dport 9 -j DNAT --to-destination 10.213.238.9:9
iptables -w 5 -t mangle -A OUTPUT -p tcp -j CONNMARK --set-xmark 0x4000/0x4000
foreign_before=$(save | grep -E -- '--dport 9 |0x4000' | sort)

write_policy "$SVC"
POLICY_PORT=$((PORT + 1)) write_policy "${SVC}x"
start_gend || exit 1

# B: a second gend in a namespace of its own, with a service of its own.
NS_B=gen-t$RUN-b
ip netns add "$NS_B" && ip -n "$NS_B" link set lo up
TB=$T/b; mkdir -p "$TB"/{etc,run,state,log} "$TESTCG/b"
T_SAVE=$T; T=$TB; write_policy "${SVC}b"; T=$T_SAVE
# In the run's cgroups, v1 ones too (hybrid hosts): its limit groups are the run's.
bash -c "$(join_run_cgroups "$TESTCG/b") exec nsenter --net=/run/netns/$NS_B '$B/gend' \
	-c '$TB/etc' -r '$TB/run' -s '$TB/state' -l '$TB/log' -p $POOL -P '$ROOT/policy/profiles'" \
	>> "$TB/gend.log" 2>&1 &
GEND_B=$!
for _ in $(seq 100); do [ -S "$TB/run/gend.sock" ] && break; sleep 0.05; done
GB() { "$B/gen" -s "$TB/run/gend.sock" "$@"; }
inb() { nsenter --net=/run/netns/$NS_B "$@"; }

check "gend B starts in its own network namespace beside A" quiet GB list
G new "$SVC" > /dev/null 2>&1; G new "${SVC}x" > /dev/null 2>&1
GB new "${SVC}b" > /dev/null 2>&1
b_rules=$(inb iptables-save | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//')
"$TOOLS/load" 127.0.0.1 $PORT 200 30 4 > "$T/load-a" 2>&1 &
la=$!
inb "$TOOLS/load" 127.0.0.1 $PORT 200 30 4 > "$T/load-b" 2>&1 &
lb=$!
G retire "$SVC" 1 --force --wait > /dev/null 2>&1
G retire "${SVC}x" 1 --force --wait > /dev/null 2>&1
wait $lb; wait $la
check "retiring all of A's services leaves B's rules byte for byte" \
	[ "$(inb iptables-save | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//')" = "$b_rules" ]
check "... and B's traffic: zero failed requests" grep -q "failed 0 " "$T/load-b"
echo "# B under load while A retired everything: $(cat "$T/load-b")"

# A second gend in A's namespace: refused, naming the one that runs.
out=$(bash -c "$(join_run_cgroups "$TESTCG/gen/supervisor") exec '$B/gend' -c '$TB/etc' -r '$T/run2' \
	-s '$T/state2' -l '$T/log2' -p $POOL -P '$ROOT/policy/profiles'" 2>&1); rc=$?
check "a second gend in one network namespace is refused" [ $rc = 1 ]
check "... naming the gend that runs there" grep -q "another gend runs in this network namespace: pid $GEND (" <<<"$out"
check "... and it made nothing" [ ! -e "$T/run2/gend.sock" ]
kill -TERM $GEND_B; wait $GEND_B

# Another program's rule and mark through gend's start, 20 switches and stop.
G new "$SVC" > /dev/null 2>&1
exec 3<>/dev/tcp/127.0.0.1/$PORT              # held by generation 2: answered, never closed by us
printf 'GET / HTTP/1.0\r\n\r\n' >&3
for i in $(seq 20); do G new "$SVC" > /dev/null 2>&1 || break; done
check "20 switches done" [ "$(G list "$SVC" --json | jq -r '.services[0].active')" = 22 ]
mark=$(conntrack -L -p tcp --dport $PORT 2>/dev/null | grep -m1 "src=127.0.0.1 " | grep -o 'mark=[0-9]*' | cut -d= -f2)
check "a connection carries the other program's bit 0x4000 and gen's field, each intact" \
	bash -c "[ -n '$mark' ] && [ \$(( $mark & 0x4000 )) = $((0x4000)) ] && [ \$(( $mark & 0x0fff0000 )) != 0 ]"
# A connection gen did not mark (to a port it does not forward) is not its.
python3 -c 'import socket,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", 9)); s.listen(); c,_=s.accept(); time.sleep(30)' 3>&- &
lpid=$!
sleep 0.3
exec 4<>/dev/tcp/127.0.0.1/9
exec 3>&-
for _ in $(seq 60); do [ -z "$(json_field "$SVC" 2 state)" ] && break; sleep 0.1; done
check "gen's drain counts only what gen marked: generation 2 retires once its own connection closes" \
	[ -z "$(json_field "$SVC" 2 state)" ]
check "... clean" grep -q "generation 2 retired: clean after" "$T/gend.log"
exec 4>&-; kill $lpid 2>/dev/null; wait $lpid 2>/dev/null
stop_gend
check "the other program's rule and mark rule are where they were" \
	[ "$(save | grep -E -- '--dport 9 |0x4000' | sort)" = "$foreign_before" ]

# A public port a host socket holds.
HELD=$((PORT + 7))
python3 -c "import socket,sys,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', $HELD)); s.listen()
while True:
    c,_=s.accept(); c.sendall(b'host listener\n'); c.close()" &
hpid=$!
sleep 0.3
POLICY_PORT=$HELD write_policy "${SVC}h"
start_gend || exit 1
out=$(G new "${SVC}h" 2>&1); rc=$?
check "gen new on a public port a host socket holds is refused" [ $rc = 1 ]
check "... naming the holder" grep -q "public port $HELD/tcp is taken: pid $hpid (python3) listens on 127.0.0.1:$HELD; gen new changed nothing" <<<"$out"
check "... having made nothing" [ "$(G list "${SVC}h" --json | jq '.services[0].generations | length')" = 0 ]
check "... and the listener still answers" grep -q "host listener" <<<"$(curl -s -m 2 http://127.0.0.1:$HELD/ 2>&1; exec 5<>/dev/tcp/127.0.0.1/$HELD; cat <&5)"
POLICY_PORT=$HELD write_policy "${SVC}h" "[listen]" "takeover = yes"
G reload > /dev/null
check "with [listen] takeover = yes it deploys" quiet G new "${SVC}h"
check "... and gen's generation answers on that port" grep -q "generation 1" <<<"$(curl -s -m 3 http://127.0.0.1:$HELD/)"
kill $hpid; wait $hpid 2>/dev/null

# The same for a UDP socket bound to a public port, and a TCP listener on
# IPv6 only; found among many sockets that are not listening (sock_diag
# asks the kernel for one state: the others are never read).
HELDU=$((PORT + 8)) HELD6=$((PORT + 9))
python3 -c "import socket,time
u=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('0.0.0.0', $HELDU))
s=socket.socket(socket.AF_INET6); s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
s.bind(('::1', $HELD6)); s.listen(64)
c=[socket.create_connection(('::1', $HELD6)) for _ in range(50)]
time.sleep(60)" &
upid=$!
for _ in $(seq 50); do ss -Hltn6 "sport = :$HELD6" | grep -q . && break; sleep 0.05; done
POLICY_PORT=$((PORT + 10)) write_policy "${SVC}u" "[listen]" "port = $HELDU:9502/udp"
POLICY_PORT=$HELD6 write_policy "${SVC}6"
G reload > /dev/null
out=$(G new "${SVC}u" 2>&1)
check "a public UDP port a host socket is bound to is refused, naming it" \
	grep -q "public port $HELDU/udp is taken: pid $upid (python3) is bound on 0.0.0.0:$HELDU;" <<<"$out"
out=$(G new "${SVC}6" 2>&1)
check "a public port an IPv6 listener holds is refused, naming it" \
	grep -q "public port $HELD6/tcp is taken: pid $upid (python3) listens on \[::1\]:$HELD6;" <<<"$out"
kill $upid; wait $upid 2>/dev/null
stop_gend
check "gend's log has no sanitizer report" no_sanitizer_reports
