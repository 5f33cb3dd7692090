#!/usr/bin/env bash
# make bench, B6: the supervisor at rest. gend with 10 services of 2
# generations each (one active, one ready): its wakeups per second (its
# context switches, voluntary and not, from /proc/PID/status, over
# IDLE_S seconds) and its resident memory; then the same while one
# generation drains behind an open connection. Beside it, nginx (master
# and one worker) proxying the same 10 services, at rest.
B=${1:-build}
export B
. "$(dirname "$0")/../integration/lib.sh"
preflight
. "$(dirname "$0")/common.sh"
IDLE_S=${IDLE_S:-10}
NG=$T/nginx

switches() {  # PID...: context switches so far, all of them
	local p s=0
	for p; do
		s=$((s + $(awk '/ctxt_switches/ {n += $2} END {print n + 0}' "/proc/$p/status")))
	done
	echo $s
}
rss_kb() { local p s=0; for p; do s=$((s + $(awk '/^VmRSS/ {print $2}' "/proc/$p/status"))); done; echo $s; }
per_s() { awk -v a="$1" -v b="$2" -v s="$IDLE_S" 'BEGIN {printf "%.2f", (b - a) / s}'; }
rate() {  # PID...: wakeups per second over IDLE_S
	local a b
	a=$(switches "$@"); sleep "$IDLE_S"; b=$(switches "$@")
	per_s "$a" "$b"
}

test_cleanup() { nginx_stop "$NG"; exec 3>&- 2>/dev/null; true; }

for i in $(seq 0 9); do
	POLICY_PORT=$((PORT + i)) write_policy "${SVC}$(printf "\\x$(printf %x $((97 + i)))")" \
		"[drain]" "timeout = 10m"
done
start_gend || exit 1
for s in $(ls "$T/etc" | sed 's/\.policy$//'); do
	G new "$s" > /dev/null && G new "$s" --no-switch > /dev/null || exit 1
done
[ "$(G list --json | jq '[.services[].generations[]] | length')" = 20 ] || { say "not 20 generations"; exit 1; }

mkdir -p "$NG"
{
	nginx_conf_head "$NG"
	i=0
	for s in $(ls "$T/etc" | sed 's/\.policy$//'); do
		printf '\tupstream u%d { server %s:9501; }\n' $i "$(json_field "$s" 1 address)"
		printf '\tserver { listen 127.0.0.1:%d; location / { proxy_pass http://u%d; } }\n' $((PORT + 100 + i)) $i
		i=$((i + 1))
	done
	printf '}\n'
} > "$NG/nginx.conf"
nginx_start "$NG" || exit 1
curl -s -m 3 "http://127.0.0.1:$((PORT + 100))/" | grep -q generation || { say "nginx does not answer"; exit 1; }
NGINX_PIDS="$(cat "$NG/nginx.pid") $(cat "/proc/$(cat "$NG/nginx.pid")/task/$(cat "$NG/nginx.pid")/children")"

sleep 1         # the starts' own timers have run out
# gend and nginx over the same IDLE_S seconds.
a=$(switches "$GEND") an=$(switches $NGINX_PIDS); sleep "$IDLE_S"
idle=$(per_s "$a" "$(switches "$GEND")") ngx=$(per_s "$an" "$(switches $NGINX_PIDS)")
rss=$(rss_kb "$GEND") ngx_rss=$(rss_kb $NGINX_PIDS)

# What wakes it: the timers it has armed, seen from outside (strace, if
# there is one, for 3 s: which fds the loop read when it woke).
if command -v strace > /dev/null; then
	timeout 3 strace -qq -p "$GEND" -e trace=epoll_wait,read -o "$T/strace" 2> /dev/null
	wakes=$(grep -c '^epoll_wait' "$T/strace")
	timers=$(grep -cE '^read\([0-9]+, .*, 8\) += 8$' "$T/strace")
	note "idle: in 3 s at rest gend's loop woke $wakes times; $timers of them read a timerfd (an sd-event timer)."
fi

# One generation of the first service draining behind an open connection:
# its request's task (1 s) has ended, its processes are at their quiet
# level, only the connection holds it.
s=${SVC}a
exec 3<>"/dev/tcp/127.0.0.1/$PORT"; printf 'GET / HTTP/1.0\r\n\r\n' >&3
G switch "$s" 2 > /dev/null || exit 1
sleep 1.5
[ "$(json_field "$s" 1 state)" = draining ] || { say "generation 1 of $s is not draining"; exit 1; }
drain=$(rate "$GEND")
exec 3>&-

record "at rest: wakeups per second, 10 services x 2 generations" "gend" "/s" lower "$idle"
record "at rest: wakeups per second, 10 services x 2 generations" "nginx master + worker" "/s" lower "$ngx"
record "at rest: resident memory, 10 services x 2 generations" "gend" "MB" lower \
	"$(awk -v k="$rss" 'BEGIN {printf "%.2f", k / 1024}')"
record "at rest: resident memory, 10 services x 2 generations" "nginx master + worker" "MB" lower \
	"$(awk -v k="$ngx_rss" 'BEGIN {printf "%.2f", k / 1024}')"
record "one generation draining behind a held connection: wakeups per second" "gend" "/s" lower "$drain"
say "idle $idle/s, draining $drain/s, RSS $rss kB; nginx $ngx/s, $ngx_rss kB"
