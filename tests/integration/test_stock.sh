#!/usr/bin/env bash
# Unmodified servers, each with a policy that has no [sandbox] section:
# python3 -m http.server, nginx (master and workers, stop-signal SIGQUIT),
# a Node.js http server and php -S. Each deploys under a bounded load,
# switches and retires with zero failed requests, and is ready within 2 s
# of its own start.
. "$(dirname "$0")/lib.sh"
preflight

for p in /usr/bin/python3 /usr/sbin/nginx /usr/bin/node /usr/bin/php; do
	[ -x "$p" ] || { notok "$p is installed (make deps installs it)"; exit 1; }
done

# Release directories outside /tmp, one per release: each answers
# "generation N" from its index.html.
REL=$(extra_dir /var/tmp)
chmod 755 "$REL"
release() {  # KIND N
	local d=$REL/$1-$2
	mkdir -p "$d"
	echo "generation $2" > "$d/index.html"
	case $1 in
	node) cat > "$d/server.js" <<'JS'
const http = require('http'), fs = require('fs');
http.createServer((req, res) => {
  res.writeHead(200, {'Content-Type': 'text/plain', 'Connection': 'close'});
  res.end(fs.readFileSync('index.html'));
}).listen(8080);
JS
		;;
	nginx) cat > "$d/nginx.conf" <<NGINX
worker_processes 2;
pid $d/nginx.pid;
error_log stderr;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $d/tmp-body;
  proxy_temp_path $d/tmp-proxy;
  fastcgi_temp_path $d/tmp-fcgi;
  uwsgi_temp_path $d/tmp-uwsgi;
  scgi_temp_path $d/tmp-scgi;
  server { listen 8080; root $d; }
}
NGINX
		;;
	esac
	chmod -R a+rX "$d"
	echo "$d"
}

n=0
for kind in python nginx node php; do
	n=$((n + 1))
	svc=${SVC}$kind port=$((PORT + n))
	case $kind in
	python) exec="/usr/bin/python3 -m http.server 8080"; extra=() ;;
	nginx) exec="/usr/sbin/nginx -c nginx.conf -p . -g 'daemon off;'"
	       extra=("[drain]" "stop-signal = SIGQUIT") ;;
	node) exec="/usr/bin/node server.js"; extra=() ;;
	php) exec="/usr/bin/php -S 0.0.0.0:8080 -t ."; extra=() ;;
	esac
	r1=$(release $kind 1); r2=$(release $kind 2)
	# No [sandbox] section: the defaults.
	{
		printf '[service]\nexec = %s\ndirectory = %s\n' "$exec" "$r1"
		printf '[listen]\nport = %s:8080/tcp\n' "$port"
		# GEN_TEST_TIME_SCALE: a VM without KVM runs a JIT's start slowly.
		printf '[ready]\nprobe = http GET / 200\ntimeout = %ss\n' $((10 * ${GEN_TEST_TIME_SCALE:-1}))
		printf '[drain]\nsettle = 200ms\ntimeout = %ss\n' $((20 * ${GEN_TEST_TIME_SCALE:-1}))
		for l in "${extra[@]}"; do
			[ "$l" = "[drain]" ] || printf '%s\n' "$l"
		done
	} > "$T/etc/$svc.policy"
done
start_gend || exit 1

ready_ms() {  # "generation 1 ready after 215 ms" / "1.2 s"
	sed -nE 's/.*ready after ([0-9.]+) (ms|s) .*/\1 \2/p' <<<"$1" | awk '{print ($2 == "s") ? $1 * 1000 : $1}'
}

n=0
for kind in python nginx node php; do
	n=$((n + 1))
	svc=${SVC}$kind port=$((PORT + n))
	out1=$(G new "$svc" 2>&1); rc1=$?
	check "$kind: generation 1 deploys" [ $rc1 = 0 ]
	[ $rc1 = 0 ] || { echo "$out1" | sed 's/^/# /'; sed 's/^/# log: /' "$T/log/$svc/1.log" | tail -5; continue; }
	check "$kind: it answers through gen" grep -q "generation 1" <<<"$(curl -s -m 3 http://127.0.0.1:$port/)"
	"$TOOLS/load" 127.0.0.1 $port 300 30 10 > "$T/load-$kind" 2> "$T/load-$kind.err" &
	l=$!
	sleep 1
	out2=$(G new "$svc" --dir "$REL/$kind-2" --wait 2>&1); rc2=$?
	wait $l
	echo "# $kind: $(cat "$T/load-$kind"); ready after $(ready_ms "$out1") ms and $(ready_ms "$out2") ms"
	check "$kind: generation 2 deploys under load, generation 1 retires" \
		bash -c "[ $rc2 = 0 ] && grep -q 'generation 1 retired' <<<'$out2'"
	check "$kind: zero failed requests, answers from 1 then 2" \
		bash -c "grep -q 'failed 0 ' '$T/load-$kind' && grep -q ' order 1,2\$' '$T/load-$kind'"
	# 2 s; GEN_TEST_TIME_SCALE stretches it where the CPU itself is
	# emulated (check-vm under TCG sets it), nowhere else.
	bound=$((2000 * ${GEN_TEST_TIME_SCALE:-1}))
	check "$kind: ready within $((bound / 1000)) s of its own start, both times" \
		bash -c "[ \$(printf '%.0f' '$(ready_ms "$out1")') -lt $bound ] && [ \$(printf '%.0f' '$(ready_ms "$out2")') -lt $bound ]"
	out3=$(G retire "$svc" 2 --force --wait 2>&1); rc3=$?
	check "$kind: retire takes it out" bash -c "[ $rc3 = 0 ] && grep -q 'generation 2 retired' <<<'$out3'"
done
stop_gend
check "gend's log has no sanitizer report" no_sanitizer_reports
