#!/usr/bin/env bash
# Name resolution and outbound connections from a generation's first
# instant, before any switch: through a name server that listens on the
# loopback of the run's namespace (as systemd-resolved's stub does on a
# host), the generation's own host name, a host from its policy; then a
# connection to a peer outside the generation, by the name it resolved.
. "$(dirname "$0")/lib.sh"
preflight

make_client_host || { notok "make the client namespace"; exit 1; }
PEER=10.213.239.254 PEERPORT=$((PORT + 3))
# The peer: a TCP listener on the client host.
ip netns exec "$CLIENT_NS" python3 -c "import socket
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('$PEER', $PEERPORT)); s.listen()
while True:
    c,_=s.accept(); c.close()" &
peer=$!
# The name server: on 127.0.0.53 of the run's namespace, A records only,
# peer.test is the peer, everything else NXDOMAIN; it logs each question.
python3 - "$T/dns.log" "$PEER" <<'PY' &
import socket, struct, sys
log, peer = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.53", 53))
while True:
    q, addr = s.recvfrom(512)
    i, labels = 12, []
    while q[i]:
        labels.append(q[i + 1:i + 1 + q[i]].decode()); i += 1 + q[i]
    name, qtype = ".".join(labels), struct.unpack("!H", q[i + 1:i + 3])[0]
    question = q[12:i + 5]
    open(log, "a").write(f"{addr[0]} {name} {qtype}\n")
    if name == "peer.test" and qtype == 1:
        ans = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(peer)
        hdr = q[:2] + struct.pack("!HHHHH", 0x8180, 1, 1, 0, 0)
    else:
        ans, hdr = b"", q[:2] + struct.pack("!HHHHH", 0x8183 if qtype == 1 else 0x8180, 1, 0, 0, 0)
    s.sendto(hdr + question + ans, addr)
PY
dns=$!
# Both listen before anything asks them.
for _ in $(seq 100); do
	ss -Hlun 'sport = :53' | grep -q 127.0.0.53 &&
		ip netns exec "$CLIENT_NS" ss -Hltn "sport = :$PEERPORT" | grep -q . && break
	sleep 0.05
done
printf 'nameserver 127.0.0.53\n' > "$T/resolv.conf"
write_policy "$SVC" "[sandbox]" "hosts = db.test $PEER"
GEND_WRAP="unshare -m --propagation private" GEND_PRE="mount --bind $T/resolv.conf /etc/resolv.conf &&" \
	start_gend || exit 1

out=$(G new "$SVC" --no-switch 2>&1); rc=$?
check "a generation that was never switched to is ready" [ $rc = 0 ]
addr=$(json_field "$SVC" 1 address)
try() { curl -s -m 10 "http://$addr:9501/try/$1"; }
check "no rule points at it yet" bash -c "! iptables -w 5 -t nat -S | grep -q 'GEN-S-$SVC'"
check "it resolves a name through the run's loopback name server, at its gateway" [ "$(try resolve/peer.test)" = "ok $PEER" ]
check "... the name server heard it from the generation's own address (DNAT, masquerade only outward)" \
	grep -q "^$addr peer.test 1\$" "$T/dns.log"
check "its own host name is its own address" [ "$(try resolve/$SVC-1)" = "ok $addr" ]
check "a host from its policy resolves" [ "$(try resolve/db.test)" = "ok $PEER" ]
check "a name nobody knows fails as it should" grep -q "^error " <<<"$(try resolve/nobody.test)"
check "it connects to the peer outside it, by the address it resolved" [ "$(try connect/$PEER:$PEERPORT)" = "ok " ]
kill $peer $dns 2>/dev/null; wait $peer $dns 2>/dev/null
stop_gend
check "gend's log has no sanitizer report" no_sanitizer_reports
