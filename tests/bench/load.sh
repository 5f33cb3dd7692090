#!/usr/bin/env bash
# make bench, B1: switching a service from release 1 to release 2 under
# load, three ways, each under two loads (tests/tools/swload: RATE
# requests per second over CONNS connections for DURATION s, the deploy
# starting at DEPLOY_AT s):
#   gen new          gen new SVC --wait: release 2 started in a generation
#                    of its own, probed, switched to; release 1 drained to
#                    task quiescence, then frozen and killed
#   nginx recipe     what people do today: release 2 started on a second
#                    port, checked, the nginx upstream edited, nginx -s
#                    reload; release 1 stopped once it has no task process
#                    and no connection left (watched every 100 ms)
#   stop and start   release 1 stopped (its cgroup killed, as systemctl
#                    stop does), release 2 started on the same port
# Loads: a new connection per request, and keep-alive connections (the
# service then closes a connection after its answer once it drains:
# SIGTERM as gen's stop-signal for the sample, SIGQUIT for nginx).
# Services: the sample (every request starts a 1 s background task), and
# nginx serving a static file. Per run: requests answered and failed,
# time from the deploy command to the first answer from release 2, until
# release 1 is gone, and release 1's background tasks cut.
B=${1:-build}
export B
. "$(dirname "$0")/../integration/lib.sh"
preflight
. "$(dirname "$0")/common.sh"
RATE=${RATE:-400}
DURATION=${DURATION:-5}
DEPLOY_AT=${DEPLOY_AT:-1.5}
CONNS=${CONNS:-16}
KINDS=${KINDS:-sample nginx}
FRONT=$((PORT + 50))            # the nginx recipe's front nginx
DIRECT=9701                     # stop and start: the service's own port
NG=$T/front

test_cleanup() {
	local d
	nginx_stop "$NG"
	for d in "$TESTCG"/rel-*; do [ -d "$d" ] && echo 1 > "$d/cgroup.kill"; done
	true
}

# A release started by hand (nginx recipe, stop and start): in a cgroup
# of its own below the run's, like a systemd unit.
release_start() {  # KIND NAME GENERATION PORT LOAD
	local cg=$TESTCG/rel-$2 d=$T/$2
	mkdir -p "$cg" || return 1
	if [ "$1" = sample ]; then
		(echo $BASHPID > "$cg/cgroup.procs" && cd "$T" &&
			SAMPLE_PORT=$4 GEN_GENERATION=$3 SAMPLE_MARKERS=$T/markers SAMPLE_TASK_MS=1000 \
			SAMPLE_KEEPALIVE=$([ "$5" = keepalive ] && echo 1 || echo 0) \
			exec "$TOOLS/sample" >> "$T/$2.log" 2>&1 &)
	else
		nginx_release "$d" "generation $3" "$4" || return 1
		(echo $BASHPID > "$cg/cgroup.procs" && exec "$NGINX_BIN" -p "$d/" -c nginx.conf >> "$T/$2.log" 2>&1 &)
	fi
	for _ in $(seq 200); do
		curl -s -m 1 "http://127.0.0.1:$4/" 2> /dev/null | grep -q "^generation $3" && return 0
		sleep 0.01
	done
	say "release $2 did not answer on port $4"; return 1
}

release_kill() {  # NAME: the whole cgroup, at once
	local cg=$TESTCG/rel-$1
	[ -d "$cg" ] || return 0
	echo 1 > "$cg/cgroup.kill"
	for _ in $(seq 500); do grep -q '^populated 0' "$cg/cgroup.events" && break; sleep 0.01; done
	rmdir "$cg"
}

# A release of nginx serving "generation N": in the foreground (gen and
# the cgroup keep it), relative paths (gen runs it in its directory).
nginx_release() {  # DIR TEXT PORT
	mkdir -p "$1/html" "$1/tmp"
	echo "$2" > "$1/html/index.html"
	cat > "$1/nginx.conf" <<EOF
daemon off;
user root;
worker_processes 1;
pid nginx.pid;
error_log error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path tmp/body;
	proxy_temp_path tmp/proxy;
	fastcgi_temp_path tmp/fastcgi;
	uwsgi_temp_path tmp/uwsgi;
	scgi_temp_path tmp/scgi;
	keepalive_requests 1000000;
	server {
		listen $3;
		location = /health { return 200 "ok\n"; }
		location / { root html; }
	}
}
EOF
}

front_conf() {  # UPSTREAM_PORT
	nginx_conf_head "$NG"
	printf '\tupstream app { server 127.0.0.1:%s; keepalive 32; }\n' "$1"
	printf '\tserver { listen 127.0.0.1:%s; location / { proxy_pass http://app; ' "$FRONT"
	printf 'proxy_http_version 1.1; proxy_set_header Connection ""; } }\n}\n'
}

cut_tasks() {  # GENERATION: tasks of it started and never finished
	local n=0 f
	for f in "$T"/markers/start-"$1"-*; do
		[ -e "$f" ] || continue
		[ -e "${f/start-/done-}" ] || n=$((n + 1))
	done
	echo $n
}

# One run: the load in the background, the deploy at DEPLOY_AT, then the
# figures. The method's deploy function sets GONE_MS (wall clock).
run() {  # KIND LOAD METHOD PORT
	local kind=$1 load=$2 method=$3 port=$4 out t_cmd s k tl
	rm -f "$T"/markers/*
	tl=$T/timeline
	"$B/swload" $([ "$load" = keepalive ] && echo --keepalive) 127.0.0.1 "$port" "$RATE" "$DURATION" \
		"$CONNS" "$tl" > "$T/swload.out" 2> "$T/swload.err" &
	local lp=$!
	sleep "$DEPLOY_AT"
	t_cmd=$(now_ms)
	GONE_MS=
	"deploy_$method" "$kind" "$load" || { say "$kind $load $method: the deploy failed"; kill "$lp"; return 1; }
	wait "$lp"
	out=$(cat "$T/swload.out")
	[ -n "$out" ] || { say "swload: $(cat "$T/swload.err")"; return 1; }
	set -- $out
	s=$(awk -v a="${18}" -v b="$t_cmd" 'BEGIN {printf "%.1f", b - a}')   # deploy, in load time
	k="$kind-$load"
	printf '%s\n' "$6" >> "$T/$k.$method.failed"
	printf '%s\n' "$4" >> "$T/$k.$method.ok"
	printf '%s\n' "$8" >> "$T/$k.$method.retried"
	awk -v f="${14}" -v s="$s" 'BEGIN {if (f >= 0) printf "%.1f\n", f - s}' >> "$T/$k.$method.first"
	[ -n "$GONE_MS" ] && awk -v g="$GONE_MS" -v c="$t_cmd" 'BEGIN {printf "%.1f\n", g - c}' >> "$T/$k.$method.gone"
	[ "$kind" = sample ] && cut_tasks 1 >> "$T/$k.$method.cut"
	{
		echo "# title $(title "$method")"
		echo "# event $s deploy"
		[ -n "$GONE_MS" ] && echo "# event $(awk -v g="$GONE_MS" -v a="${18}" 'BEGIN {printf "%.1f", g - a}') release_1_gone"
		cat "$tl"
	} > "$BENCH_OUT/timeline-$load-$kind-$method.tsv"
	say "$kind, $load, $method: $out; deploy at $s ms"
}

title() {
	case $1 in
	gen) echo "gen new (release 2 in a new generation; release 1 drained, then killed)" ;;
	recipe) echo "nginx recipe (release 2 on a second port, upstream edited, nginx -s reload, release 1 stopped when idle)" ;;
	naive) echo "stop and start (release 1 stopped, release 2 started on the same port)" ;;
	esac
}

# --- the three methods -----------------------------------------------
deploy_gen() {  # KIND LOAD
	local s=$SVC$1$2 rel=()
	s=${s//keepalive/k}; s=${s//newconn/n}; s=${s//sample/s}; s=${s//nginx/x}
	[ "$1" = nginx ] && rel=(--dir "$T/gen-$s-2")
	G new "$s" "${rel[@]}" --wait > "$T/deploy.out" 2>&1 || { cat "$T/deploy.out" >&2; return 1; }
	GONE_MS=$(now_ms)
}

deploy_recipe() {  # KIND LOAD
	local port1=9601 port2=9602 cg
	release_start "$1" "$1$2-r2" 2 $port2 "$2" || return 1
	front_conf $port2 > "$NG/nginx.conf" && "$NGINX_BIN" -p "$NG" -c "$NG/nginx.conf" -s reload 2> /dev/null || return 1
	# The operator's watch: release 1 idle (its main process alone, no
	# connection on its port), then stopped.
	cg=$TESTCG/rel-$1$2-r1
	for _ in $(seq 300); do
		if [ "$(cg_procs "$cg" | wc -l)" -le "$([ "$1" = nginx ] && echo 2 || echo 1)" ] &&
		   [ -z "$(ss -Htn state established "( sport = :$port1 )")" ]; then
			release_kill "$1$2-r1"
			GONE_MS=$(now_ms)
			return 0
		fi
		sleep 0.1
	done
	say "recipe: release 1 never went idle"; return 1
}

deploy_naive() {  # KIND LOAD
	release_kill "$1$2-n1" && GONE_MS=$(now_ms) &&
	release_start "$1" "$1$2-n2" 2 $DIRECT "$2"
}

# --- set-up of each run ----------------------------------------------
prepare() {  # KIND LOAD METHOD: release 1 serving; prints the port to load
	local s=$SVC$1$2
	s=${s//keepalive/k}; s=${s//newconn/n}; s=${s//sample/s}; s=${s//nginx/x}
	case $3 in
	gen)
		G new "$s" $([ "$1" = nginx ] && echo --dir "$T/gen-$s-1") > /dev/null || return 1
		echo "$PORT_OF_SVC" ;;
	recipe)
		release_start "$1" "$1$2-r1" 1 9601 "$2" || return 1
		front_conf 9601 > "$NG/nginx.conf"
		if [ -s "$NG/nginx.pid" ]; then
			"$NGINX_BIN" -p "$NG" -c "$NG/nginx.conf" -s reload 2> /dev/null; sleep 0.3
		else
			nginx_start "$NG" || return 1
		fi
		curl -s -m 2 "http://127.0.0.1:$FRONT/" | grep -q '^generation 1' || return 1
		echo "$FRONT" ;;
	naive)
		release_start "$1" "$1$2-n1" 1 $DIRECT "$2" || return 1
		echo "$DIRECT" ;;
	esac
}

finish() {  # KIND LOAD METHOD: nothing of the run left
	case $3 in
	recipe) release_kill "$1$2-r1"; release_kill "$1$2-r2" ;;
	naive) release_kill "$1$2-n1"; release_kill "$1$2-n2" ;;
	esac
}

# gen's services: one per kind and load, each with its own public port.
i=0
for kind in $KINDS; do
	for load in newconn keepalive; do
		s=$SVC$([ $kind = sample ] && echo s || echo x)$([ $load = newconn ] && echo n || echo k)
		if [ $kind = sample ]; then
			stop=(); [ $load = keepalive ] && stop=("stop-signal = SIGTERM")
			POLICY_PORT=$((PORT + i)) write_policy "$s" "[service]" \
				"environment = SAMPLE_TASK_MS=1000" \
				"environment = SAMPLE_KEEPALIVE=$([ $load = keepalive ] && echo 1 || echo 0)" \
				"[drain]" "quiet-procs = baseline" "settle = 200ms" "${stop[@]}"
		else
			for g in 1 2; do nginx_release "$T/gen-$s-$g" "generation $g" 9501; done
			POLICY_PORT=$((PORT + i)) write_policy "$s" "[service]" \
				"exec = $NGINX_BIN -p ./ -c nginx.conf" "directory = $T/gen-$s-1" \
				"[drain]" "quiet-procs = baseline" "settle = 200ms" "stop-signal = SIGQUIT"
		fi
		eval "PORT_$s=$((PORT + i))"
		i=$((i + 1))
	done
done
mkdir -p "$T/markers" "$NG"
start_gend || exit 1

for kind in $KINDS; do
	for load in newconn keepalive; do
		s=$SVC$([ $kind = sample ] && echo s || echo x)$([ $load = newconn ] && echo n || echo k)
		eval "PORT_OF_SVC=\$PORT_$s"
		for method in gen recipe naive; do
			port=$(prepare "$kind" "$load" "$method") || { say "$kind $load $method: release 1 did not start"; exit 1; }
			run "$kind" "$load" "$method" "$port" || exit 1
			finish "$kind" "$load" "$method"
		done
	done
done
nginx_stop "$NG"

name() { case $1 in gen) echo "gen new" ;; recipe) echo "nginx recipe (second port, reload)" ;; naive) echo "stop and start" ;; esac; }
for kind in $KINDS; do
	for load in newconn keepalive; do
		k=$kind-$load
		l=$([ $load = newconn ] && echo "new connection per request" || echo "keep-alive")
		g="under load$([ $kind = nginx ] && echo " (nginx as the service)"), $l"
		for method in gen recipe naive; do
			record "$g: failed requests" "$(name $method)" requests lower $(cat "$T/$k.$method.failed")
		done
		for method in gen recipe naive; do
			record "$g: requests answered" "$(name $method)" requests higher $(cat "$T/$k.$method.ok")
		done
		for method in gen recipe naive; do
			record "$g: retried (keep-alive connection closed under a request)" "$(name $method)" requests lower $(cat "$T/$k.$method.retried")
		done
		for method in gen recipe naive; do
			[ -s "$T/$k.$method.first" ] && record "$g: deploy command to the first answer from release 2" "$(name $method)" ms lower $(cat "$T/$k.$method.first")
		done
		for method in gen recipe naive; do
			[ -s "$T/$k.$method.gone" ] && record "$g: deploy command until release 1 is gone" "$(name $method)" ms lower $(cat "$T/$k.$method.gone")
		done
		if [ $kind = sample ]; then
			for method in gen recipe naive; do
				record "$g: background tasks of release 1 cut" "$(name $method)" tasks lower $(cat "$T/$k.$method.cut")
			done
		fi
	done
done
note "load: $RATE requests per second over $CONNS connections for $DURATION s, the deploy at $DEPLOY_AT s; one run per method and load."
