#!/usr/bin/env bash
# What a generation reaches on the network: another generation only
# through its public ports, like any client, never at its own address; the
# host's own ports as any client does, unless its policy says
# host-ports = closed; public ports always.
. "$(dirname "$0")/lib.sh"
preflight

write_policy "${SVC}a"
POLICY_PORT=$((PORT + 1)) write_policy "${SVC}b" "[sandbox]" "host-ports = closed"
start_gend || exit 1
G new "${SVC}a" > /dev/null 2>&1 && G new "${SVC}b" > /dev/null 2>&1 ||
	{ notok "deploy both"; exit 1; }

# A host service, on every address of the run's namespace.
HOSTPORT=$((PORT + 5))
python3 -c "import socket
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', $HOSTPORT)); s.listen()
while True:
    c,_=s.accept(); c.close()" &
hpid=$!
sleep 0.3

try() { curl -s -m 10 "http://127.0.0.1:$1/try/connect/$2"; }   # PUBLIC_PORT ADDR:PORT
gw() { local a; a=$(json_field "$1" 1 address); echo "${a%.*}.$(( ${a##*.} - 1 ))"; }
a=$(json_field "${SVC}a" 1 address) b=$(json_field "${SVC}b" 1 address)
ga=$(gw "${SVC}a") gb=$(gw "${SVC}b")

check "a generation reaches a host port at its gateway, as any client" [ "$(try $PORT "$ga:$HOSTPORT")" = "ok " ]
check "... and another service's public port there" [ "$(try $PORT "$ga:$((PORT + 1))")" = "ok " ]
check "... but not another generation's own address: ECONNREFUSED" [ "$(try $PORT "$b:9501")" = "errno 111" ]
check "host-ports = closed: the host's port refuses it: ECONNREFUSED" [ "$(try $((PORT + 1)) "$gb:$HOSTPORT")" = "errno 111" ]
check "... its address is in the pool's closed part" grep -q "^10\.213\.24[89]\." <<<"$b"
check "... a public port it still reaches" [ "$(try $((PORT + 1)) "$gb:$PORT")" = "ok " ]
check "... and the other generation's own address it does not" [ "$(try $((PORT + 1)) "$a:9501")" = "errno 111" ]
kill $hpid; wait $hpid 2>/dev/null
stop_gend
check "gend's log has no sanitizer report" no_sanitizer_reports
