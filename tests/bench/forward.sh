#!/usr/bin/env bash
# make bench, B2: what gen's forwarding costs a small answer. The service
# is nginx in a generation serving a 13-byte static file; the load is wrk,
# one thread, 32 connections, keep-alive or a new connection per request
# (-H 'Connection: close': the server closes, wrk connects again, as ab
# does, with wrk's microsecond latencies), each run RUN_S seconds, REPS
# times, the paths interleaved:
#   direct         inside the generation's netns, to 127.0.0.1:9501
#   gen, loopback  the public port on 127.0.0.1 (DNAT in OUTPUT, masquerade)
#   gen, client ns from a client namespace over a veth (DNAT in PREROUTING,
#                  forwarded)
#   nginx proxy    nginx in front on 127.0.0.1, upstream the generation's
#                  address (upstream keepalive 32)
#   veth, no DNAT  a generation's address from the host: the same veth hop
#                  and conntrack, without NAT (direct has neither: it is
#                  loopback inside one netns, which no forwarding can match)
#   routed, no DNAT
#                  a generation's address from the client namespace: the
#                  same hops as gen from a client netns, without NAT
#   veth, conntrack tuned
#                  "veth, no DNAT" again, with the run's namespace's
#                  connection tracking set to do the least it can per
#                  packet (no events, no checksums, no TCP window checks:
#                  nf_conntrack_events, _checksum, _tcp_be_liberal, all of
#                  its own namespace, set back after each run): what of
#                  conntrack's cost any setting takes away
#   veth alone     a bare namespace (no netfilter, so no conntrack) linked
#                  by a veth pair of its own into the second generation's
#                  netns: the hop every generation has, and nothing else.
#                  With "veth, no DNAT" it splits what forwarding costs
#                  against direct into the veth hop and the connection
#                  tracking that any DNAT needs.
# The no-DNAT paths go to a second, identical generation (ready, not
# active): a server keeps TIME_WAIT for 60 s, and a SYN that lands on one
# left by another path (same 4-tuple after masquerade, other timestamps)
# is refused by PAWS and retried a second later, so paths that share a
# server's 4-tuples spoil each other's new-connection figures.
# BENCH_PERF=1 (and linux-perf installed): one more new-connection run of
# each path but the proxy under perf record -a, their top kernel symbols
# into results/raw/perf-*.txt, for the diagnosis.
B=${1:-build}
export B
. "$(dirname "$0")/../integration/lib.sh"
preflight
. "$(dirname "$0")/common.sh"
RUN_S=${RUN_S:-2}
REPS=${REPS:-3}
NPORT=$((PORT + 1))
REL=$T/release
NG=$T/nginx-proxy

test_cleanup() { nginx_stop "$NG"; }

# The release: nginx in the foreground, one worker, a static file.
nginx_release() {  # DIR GENERATION-TEXT
	mkdir -p "$1/html" "$1/tmp"
	echo "$2" > "$1/html/index.html"
	{
		printf 'daemon off;\nuser root;\n'
		nginx_conf_head "$1"
		cat <<EOF
	server {
		listen 9501;
		location = /health { return 200 "ok\n"; }
		location / { root $1/html; }
	}
}
EOF
	} > "$1/nginx.conf"
}

nginx_release "$REL" "generation 1"
write_policy "$SVC" "[service]" "exec = $NGINX_BIN -p $REL/ -c $REL/nginx.conf" "directory = $REL"
start_gend || exit 1
G new "$SVC" > /dev/null || { cat "$REL/error.log" >&2; exit 1; }
ADDR=$(json_field "$SVC" 1 address) GNS=$(json_field "$SVC" 1 netns)
route_is_ours "$ADDR" "$(json_field "$SVC" 1 veth)" || exit 1
G new "$SVC" --no-switch > /dev/null || { cat "$REL/error.log" >&2; exit 1; }
ADDR2=$(json_field "$SVC" 2 address)
route_is_ours "$ADDR2" "$(json_field "$SVC" 2 veth)" || exit 1
make_client_host || exit 1
HOST_ADDR=$CLIENT_HOST_ADDR
ip -n "$CLIENT_NS" route add "$ADDR2/32" via "$HOST_ADDR" || exit 1
BARE_NS=gen-t$RUN-bare GNS2=$(json_field "$SVC" 2 netns) BARE_ADDR=10.213.238.2
ip netns add "$BARE_NS" && ip -n "$BARE_NS" link set lo up &&
	ip -n "$BARE_NS" link add eth0 type veth peer name bare0 netns "$GNS2" &&
	ip -n "$BARE_NS" addr add 10.213.238.1/30 dev eth0 && ip -n "$BARE_NS" link set eth0 up &&
	ip -n "$GNS2" addr add "$BARE_ADDR/30" dev bare0 && ip -n "$GNS2" link set bare0 up || exit 1

mkdir -p "$NG"
{
	nginx_conf_head "$NG"
	printf '\tupstream gen { server %s:9501; keepalive 32; }\n' "$ADDR"
	printf '\tserver { listen 127.0.0.1:%s; location / { proxy_pass http://gen; ' "$NPORT"
	printf 'proxy_http_version 1.1; proxy_set_header Connection ""; } }\n}\n'
} > "$NG/nginx.conf"
nginx_start "$NG" || exit 1

# path -> how to run a client there, and the URL.
declare -A WHERE=([direct]="ip netns exec $GNS" [loopback]="" [clientns]="ip netns exec $CLIENT_NS"
	[proxy]="" [veth]="" [tuned]="" [routed]="ip netns exec $CLIENT_NS" [bare]="ip netns exec $BARE_NS")
declare -A URL=([direct]="http://127.0.0.1:9501/" [loopback]="http://127.0.0.1:$PORT/"
	[clientns]="http://$HOST_ADDR:$PORT/" [proxy]="http://127.0.0.1:$NPORT/"
	[veth]="http://$ADDR2:9501/" [tuned]="http://$ADDR2:9501/" [routed]="http://$ADDR2:9501/" [bare]="http://$BARE_ADDR:9501/")
declare -A NAME=([direct]="direct, in the generation's netns" [loopback]="gen DNAT, from loopback"
	[clientns]="gen DNAT, from a client netns" [proxy]="nginx reverse proxy (upstream keepalive)"
	[veth]="host to a generation's address (veth, no DNAT)"
	[tuned]="the same, conntrack set to its least work (no events, checksums, window checks)"
	[routed]="client netns to a generation's address (routed, no DNAT)"
	[bare]="bare netns to a generation over a veth of its own (no conntrack)")
PATHS="direct loopback clientns proxy veth tuned routed bare"

for p in $PATHS; do
	out=$(${WHERE[$p]} curl -s -m 3 "${URL[$p]}")
	[ "$out" = "generation 1" ] || { say "$p: ${URL[$p]} answered '$out'"; exit 1; }
done

# The run's own namespace's conntrack settings for path "tuned", and back.
CT_LEAST="net.netfilter.nf_conntrack_events=0 net.netfilter.nf_conntrack_checksum=0 net.netfilter.nf_conntrack_tcp_be_liberal=1"
CT_AS_WAS=$(for kv in $CT_LEAST; do k=${kv%=*}; echo "$k=$(sysctl -n "$k")"; done) || exit 1
ct_tune() { [ "$1" = tuned ] && sysctl -qw $CT_LEAST; }
ct_untune() { [ "$1" = tuned ] && sysctl -qw $CT_AS_WAS; }

# wrk: "Requests/sec: N" and the latency distribution (--latency), in ms.
wrk_run() {  # MODE(ka|nc) PATH
	local out hdr=() rc
	[ "$1" = nc ] && hdr=(-H "Connection: close")
	ct_tune "$2"
	out=$(${WHERE[$2]} timeout $((RUN_S + 10)) wrk -t1 -c32 -d"${RUN_S}s" --latency "${hdr[@]}" "${URL[$2]}" 2>&1)
	rc=$?
	ct_untune "$2"
	[ $rc = 0 ] || { say "wrk $2: $out"; return 1; }
	echo "$out" | awk -v f="$T/$1.$2" '
		function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
		/Requests\/sec/ {print $2 >> (f ".rps")}
		/Non-2xx/ {e += $NF} /Socket errors/ {e += $4 + $6 + $8 + $10}
		$1 == "50%" {print ms($2) >> (f ".p50")}
		$1 == "99%" {print ms($2) >> (f ".p99")}
		END {print e + 0 >> (f ".errors")}'
}

for r in $(seq "$REPS"); do
	for p in $PATHS; do
		wrk_run ka "$p" && wrk_run nc "$p" || exit 1
	done
done

for m in ka nc; do
	what=$([ $m = ka ] && echo "keep-alive" || echo "new connection per request")
	for p in loopback clientns direct proxy veth tuned routed bare; do
		record "forwarding, $what: throughput" "${NAME[$p]}" "req/s" higher $(cat "$T/$m.$p.rps")
	done
	for p in loopback clientns direct proxy veth tuned routed bare; do
		record "forwarding, $what: p50 latency" "${NAME[$p]}" ms lower $(cat "$T/$m.$p.p50")
		record "forwarding, $what: p99 latency" "${NAME[$p]}" ms lower $(cat "$T/$m.$p.p99")
	done
done
if [ "${BENCH_PERF:-0}" = 1 ] && command -v perf > /dev/null; then
	for p in direct loopback clientns veth routed bare; do
		perf record -q -a -g -o "$T/perf.$p" -- sleep "$RUN_S" 2> /dev/null &
		pp=$!
		${WHERE[$p]} wrk -t1 -c32 -d"${RUN_S}s" -H "Connection: close" "${URL[$p]}" > "$T/perf.$p.wrk" 2>&1
		wait $pp
		{
			echo "# $p: $(grep Requests/sec "$T/perf.$p.wrk")"
			perf report -q -i "$T/perf.$p" --no-children --sort sym --percent-limit 0.7 --stdio -g none 2> /dev/null
		} > "$BENCH_OUT/perf-$p.txt"
	done
fi
errors=$(cat "$T"/*.errors | awk '{s += $1} END {print s + 0}')
note "forward: wrk counted $errors errors (socket errors and non-2xx answers) in all runs; conntrack entries in the run's namespace at the end: $(conntrack -C 2>/dev/null || echo ?)."
for p in $PATHS; do
	say "${NAME[$p]}: keep-alive $(median < "$T/ka.$p.rps") req/s, new connection $(median < "$T/nc.$p.rps") req/s"
done
