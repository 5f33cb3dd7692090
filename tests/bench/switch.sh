#!/usr/bin/env bash
# make bench, B3: how soon a switch shows, and how that grows with the
# number of services. From the instant the command starts to the first
# new connection answered by the other side (tests/tools/firstnew), for
# the same service with 1, 100 and 1000 services serving in this gend:
#   gen switch                 gen switch SVC N: control, the readiness
#                              probe again, the one-chain rule transaction
#   iptables-restore --noflush the same transaction by hand on a chain of
#                              its own (same nat table, same size), what a
#                              deploy script would run
#   nginx -s reload            the upstream edited (cp of a prepared
#                              config) and nginx -s reload, with as many
#                              server blocks as there are services
# Each sample is one switch, to the other side and back, interleaved.
B=${1:-build}
export B
. "$(dirname "$0")/../integration/lib.sh"
preflight
. "$(dirname "$0")/common.sh"
N=${N:-15}
SCALES=${SCALES:-1 100 1000}
# Every generation's veth pair has two neighbour entries, permanent ones
# (sandbox/veth.c): the kernel's neighbour table, one for all namespaces
# and limited by the host's gc_thresh3 (1024 by default), does not count
# them, so 1000 services fit whatever the host's sysctls say. Their
# addresses: a /19 (lib.sh's /20 holds 512 generations in its open half),
# in the run's own namespace.
POOL=10.213.192.0/19
RAWPORT=$((PORT + 1))
NGXPORT=$((PORT + 2))
FILLER_PORT=20000
NG=$T/nginx

# Fillers: services named $SVC + letters (lib.sh's cleanup knows them),
# each with one active generation, so their rules are in the nat table.
filler() { local i=$1 a=abcdefghijklmnopqrstuvwxyz; echo "${SVC}f${a:i/676%26:1}${a:i/26%26:1}${a:i%26:1}"; }
FILLERS=0
add_fillers() {  # TOTAL: services serving, this one included
	local want=$(($1 - 1)) i
	[ "$want" -gt "$FILLERS" ] || return 0
	for ((i = FILLERS; i < want; i++)); do
		POLICY_PORT=$((FILLER_PORT + i)) write_policy "$(filler $i)" "[ready]" "timeout = 10s"
	done
	G reload > /dev/null || return 1
	for ((i = FILLERS; i < want; i++)); do filler $i; done |
		xargs -P 6 -I{} "$B/gen" -s "$T/run/gend.sock" new {} > /dev/null || return 1
	FILLERS=$want
	[ "$(G list --json | jq '[.services[].generations[] | select(.state == "active")] | length')" = "$1" ]
}

nginx_conf() {  # UPSTREAM_ADDR SERVICES
	nginx_conf_head "$NG"
	printf '\tupstream svc { server %s:9501; }\n' "$1"
	printf '\tserver { listen 127.0.0.1:%s; location / { proxy_pass http://svc; } }\n' "$NGXPORT"
	for ((i = 0; i < $2 - 1; i++)); do
		printf '\tupstream f%d { server 127.0.0.1:%d; }\n' $i $((FILLER_PORT + i))
		printf '\tserver { listen 127.0.0.1:%d; location / { proxy_pass http://f%d; } }\n' \
			$((30000 + i)) $i
	done
	printf '}\n'
}

raw_tx() {  # ADDR: gen's switch transaction, on the chain BENCH-RAW
	printf '*nat\n:BENCH-RAW - [0:0]\n-A BENCH-RAW -j CONNMARK --set-xmark 0x%x/0x0fff0000\n' $((0x0ff0 << 16))
	printf -- '-A BENCH-RAW -p tcp -m tcp --dport %s -j DNAT --to-destination %s:9501\nCOMMIT\n' "$RAWPORT" "$1"
}

# firstnew ... -> "first_ms X all_ms Y cmd_ms Z probes N failed F": to
# $1.first, .all, .cmd, .failed. A probe that failed (no answer within
# 1 s) is a figure of the method, not the end of the run: it is counted,
# said, and a target holds gen's count to 0.
measure() {  # TAG PORT MATCH COMMAND...
	local tag=$1 port=$2 match=$3 out; shift 3
	out=$("$B/firstnew" 127.0.0.1 "$port" "$match" 5000 -- "$@")
	[ $? = 0 ] || say "$tag: ${out:-no figures}"
	[[ $out == first_ms* ]] || return 1
	set -- $out
	echo "$2" >> "$T/$tag.first"
	echo "$4" >> "$T/$tag.all"
	echo "$6" >> "$T/$tag.cmd"
	echo "${10}" >> "$T/$tag.failed"
}

# All the switches of a scale: one figure, the sum (a median of 30 would
# hide one).
total() { awk '{s += $1} END {print s + 0}'; }

test_cleanup() { nginx_stop "$NG"; }

write_policy "$SVC" "[drain]" "quiet-procs = 0" "timeout = 10m"
start_gend || exit 1
G new "$SVC" > /dev/null && G new "$SVC" --no-switch > /dev/null || exit 1
A1=$(json_field "$SVC" 1 address) A2=$(json_field "$SVC" 2 address)
route_is_ours "$A1" "$(json_field "$SVC" 1 veth)" && route_is_ours "$A2" "$(json_field "$SVC" 2 veth)" || exit 1

iptables -w 5 -t nat -N BENCH-RAW &&
	iptables -w 5 -t nat -A OUTPUT -d 127.0.0.1/32 -p tcp --dport "$RAWPORT" -j BENCH-RAW || exit 1
raw_tx "$A1" > "$T/raw.1"; raw_tx "$A2" > "$T/raw.2"
iptables-restore --noflush -w 5 "$T/raw.1" || exit 1
mkdir -p "$NG"

for scale in $SCALES; do
	t0=$SECONDS
	add_fillers "$scale" || { say "could not start $((scale - 1)) more services"; exit 1; }
	say "$scale services serving (made in $((SECONDS - t0)) s)"
	nginx_conf "$A1" "$scale" > "$NG/conf.1"; nginx_conf "$A2" "$scale" > "$NG/conf.2"
	cp "$NG/conf.1" "$NG/nginx.conf"
	if [ -s "$NG/nginx.pid" ]; then
		"$NGINX_BIN" -p "$NG" -c "$NG/nginx.conf" -s reload && sleep 1
	else
		nginx_start "$NG" || exit 1
	fi
	reload() { cp "$NG/conf.$1" "$NG/nginx.conf" && exec "$NGINX_BIN" -p "$NG" -c "$NG/nginx.conf" -s reload; }
	export -f reload; export NG NGINX_BIN
	rm -f "$T"/*.first "$T"/*.all "$T"/*.cmd "$T"/*.failed
	for i in $(seq "$N"); do
		for to in 2 1; do
			measure gen "$PORT" "generation $to" "$B/gen" -s "$T/run/gend.sock" switch "$SVC" $to &&
			measure raw "$RAWPORT" "generation $to" /usr/sbin/iptables-restore --noflush -w 5 "$T/raw.$to" &&
			measure nginx "$NGXPORT" "generation $to" /bin/bash -c "reload $to" || exit 1
		done
	done
	g="switch, $scale service$([ "$scale" = 1 ] || echo s)"
	record "$g: command to first new connection on the new side" "gen switch" ms lower $(cat "$T/gen.first")
	record "$g: command to first new connection on the new side" "iptables-restore --noflush" ms lower $(cat "$T/raw.first")
	record "$g: command to first new connection on the new side" "nginx -s reload" ms lower $(cat "$T/nginx.first")
	record "$g: command to the last new connection on the old side" "gen switch" ms lower $(cat "$T/gen.all")
	record "$g: command to the last new connection on the old side" "iptables-restore --noflush" ms lower $(cat "$T/raw.all")
	record "$g: command to the last new connection on the old side" "nginx -s reload" ms lower $(cat "$T/nginx.all")
	record "$g: command to its exit" "gen switch" ms lower $(cat "$T/gen.cmd")
	record "$g: command to its exit" "iptables-restore --noflush" ms lower $(cat "$T/raw.cmd")
	record "$g: command to its exit" "nginx -s reload" ms lower $(cat "$T/nginx.cmd")
	record "$g: new connections not answered within 1 s" "gen switch" probes lower "$(total < "$T/gen.failed")"
	record "$g: new connections not answered within 1 s" "iptables-restore --noflush" probes lower "$(total < "$T/raw.failed")"
	record "$g: new connections not answered within 1 s" "nginx -s reload" probes lower "$(total < "$T/nginx.failed")"
	say "$g: gen $(median < "$T/gen.first") ms, raw $(median < "$T/raw.first") ms, nginx $(median < "$T/nginx.first") ms"
done
rules=$(iptables-save -t nat | grep -c '^-A GEN-S-')
note "switch: at the last scale the nat table held $rules rules in GEN-S-* chains; nginx had as many server blocks as services."
nginx_stop "$NG"
