#!/usr/bin/env bash
# A root generation under the default policy cannot reach beyond itself:
# it cannot read or append to a root-only host file, write outside what it
# is granted, see or signal a process outside it, change a sysctl, raise
# its own limits or move anything out of its cgroup. Each escape fails
# with the error asserted here; with private-users = no the other layers
# still hold. Unmodified servers (nginx with workers, php -S, node,
# python3 -m http.server) serve under the same defaults, exec probes run
# inside the generation, and names resolve through its own files.
. "$(dirname "$0")/lib.sh"
preflight

get() { curl -s -m 10 "http://127.0.0.1:$1$2"; }

# The host's secrets and a process outside every generation, the test's own.
SECRETS=$(extra_dir /var/tmp) || exit 1
chmod 0755 "$SECRETS"
echo "gen-secret-$RUN" > "$SECRETS/secret"; chmod 0600 "$SECRETS/secret"
echo "shared-$RUN" > "$SECRETS/world"; chmod 0666 "$SECRETS/world"
sleep 600 & VICTIM=$!
test_cleanup() { kill "$VICTIM" 2>/dev/null; }

# Where the view shows the generation's pids limit: the host's place of it.
pids_mnt=$(awk '{for (i = 1; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup" && ("," $(i + 3) ",") ~ /,pids,/) print $5; break }}' /proc/self/mountinfo | head -1)
if [ -n "$pids_mnt" ]; then PIDS_MAX=$pids_mnt/pids.max; else PIDS_MAX=$CG2/pids.max; fi

# r: root, the default policy; s: the same under the strict profile;
# u: root without its user namespace: the other layers alone.
write_policy ${SVC}r "[limits]" "pids = 64"
POLICY_PORT=$((PORT + 1)) write_policy ${SVC}s "[limits]" "pids = 64" "[sandbox]" "seccomp = strict"
POLICY_PORT=$((PORT + 2)) write_policy ${SVC}u "[limits]" "pids = 64" "[sandbox]" "private-users = no"
# stop-signal: see below.
POLICY_PORT=$((PORT + 3)) write_policy ${SVC}g "[drain]" "quiet-procs = 0" "stop-signal = SIGTERM"
# Unmodified servers, each from a release directory of its own below the
# test's /tmp directory.
W=$T/www; mkdir -p $W/nginx/html $W/php $W/node $W/py
echo "nginx ok" > $W/nginx/html/index.html
cat > $W/nginx/nginx.conf <<EOF
daemon off;
master_process on;
worker_processes 2;
user www-data;
pid $W/nginx/nginx.pid;
error_log stderr notice;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path $W/nginx/body;
	proxy_temp_path $W/nginx/proxy;
	fastcgi_temp_path $W/nginx/fastcgi;
	uwsgi_temp_path $W/nginx/uwsgi;
	scgi_temp_path $W/nginx/scgi;
	server { listen 9501; root $W/nginx/html; }
}
EOF
echo '<?php echo "php ok\n";' > $W/php/index.php
echo 'require("http").createServer((q, s) => s.end("node ok\n")).listen(9501);' > $W/node/server.js
echo "py ok" > $W/py/index.html
i=4
for srv in nginx php node py; do
	case $srv in
	nginx) exec="/usr/sbin/nginx -e stderr -p $W/nginx -c $W/nginx/nginx.conf" ;;
	php) exec="/usr/bin/php -S 0.0.0.0:9501 -t $W/php" ;;
	node) exec="/usr/bin/node $W/node/server.js" ;;
	py) exec="/usr/bin/python3 -m http.server 9501 --bind 0.0.0.0 --directory $W/py" ;;
	esac
	POLICY_PORT=$((PORT + i)) write_policy ${SVC}$srv "[service]" "exec = $exec" "directory = $W/$srv" \
		"[ready]" "probe = http GET / 200" "timeout = 10s"
	i=$((i + 1))
done
# An exec probe runs inside the generation, confined as the generation:
# it passes only if it sees the generation's init, cannot read the secret
# and reaches the server on the generation's own loopback.
POLICY_PORT=$((PORT + 8)) write_policy ${SVC}p "[ready]" \
	"probe = exec /bin/bash -c 'test \"\$(cat /proc/1/comm)\" = gen-init && ! cat $SECRETS/secret && exec 3<>/dev/tcp/127.0.0.1/9501'"
start_gend || exit 1

try() { get "$1" "/try/$2"; }
host_pids_max() {  # SERVICE: its pids limit as the host sees it
	local d
	for d in "${V1CGS[@]}"; do case $d in */pids/*) cat "$d/gen/$1/1/pids.max"; return;; esac; done
	cat "$TESTCG/gen/$1/1/pids.max"
}

for s in r s; do
	port=$PORT; [ $s = s ] && port=$((PORT + 1))
	what="root, default policy"; [ $s = s ] && what="root, seccomp = strict"
	out=$(G new ${SVC}$s 2>&1); rc=$?
	check "$what: the generation starts" [ $rc -eq 0 ]
	check "$what: reading a root-only 0600 host file: EACCES" [ "$(try $port read$SECRETS/secret)" = "errno 13" ]
	check "$what: appending to it: EACCES" [ "$(try $port append$SECRETS/secret)" = "errno 13" ]
	check "... and the file is as it was" [ "$(cat "$SECRETS/secret")" = "gen-secret-$RUN" ]
	check "$what: appending to a world-writable host file: EROFS" [ "$(try $port append$SECRETS/world)" = "errno 30" ]
	check "$what: killing the test's process $VICTIM by PID: ESRCH" [ "$(try $port kill/$VICTIM)" = "errno 3" ]
	check "... which still runs" kill -0 "$VICTIM"
	check "$what: /proc/$VICTIM: ENOENT" [ "$(try $port stat/proc/$VICTIM)" = "errno 2" ]
	n=$(try $port procs | awk '{print $2}')
	check "$what: /proc shows its own processes only ($n)" [ "$n" -ge 2 -a "$n" -le 4 ]
	check "$what: its PID 1 is its own init, gen-init (not a copy of gend)" \
		bash -c "[ \"\$1\" = 'ok gen-init' ] && [[ \"\$2\" == 'ok gen-init '[0-9]* ]]" _ \
		"$(try $port read/proc/1/comm)" "$(try $port read/proc/1/cmdline)"
	check "$what: writing a sysctl (net.ipv4.ip_forward of its own namespace): EACCES" \
		[ "$(try $port rewrite/proc/sys/net/ipv4/ip_forward)" = "errno 13" ]
	check "$what: writing its pids.max: EACCES" [ "$(try $port rewrite$PIDS_MAX)" = "errno 13" ]
	check "... which stays 64" [ "$(host_pids_max ${SVC}$s)" = 64 ]
	check "$what: the test's cgroup.procs is not in its view: ENOENT" \
		[ "$(try $port cgjoin$TESTCG/cgroup.procs)" = "errno 2" ]
	check "$what: the root cgroup.procs of its view is its own cgroup, read-only: EACCES" \
		[ "$(try $port cgjoin$CG2/cgroup.procs)" = "errno 13" ]
	check "$what: its cgroup is the root of its cgroup namespace" \
		[ "$(try $port read/proc/self/cgroup)" = "ok $(head -1 /proc/self/cgroup | cut -d: -f1-2):/" ]
	init=$(json_field ${SVC}$s 1 pid)
	server=$(awk '{print $1}' /proc/$init/task/$init/children)
	check "... and on the host it is still in its generation's cgroup" \
		grep -q "^0::.*/gen/${SVC}$s/1\$" /proc/$server/cgroup
	check "... and still serves" grep -q "generation 1" <<<"$(get $port /)"
done

out=$(G new ${SVC}u 2>&1); rc=$?
check "private-users = no: the generation starts" [ $rc -eq 0 ]
check "... it is root on the host: it reads the 0600 file (what relaxing costs)" \
	[ "$(try $((PORT + 2)) read$SECRETS/secret)" = "ok gen-secret-$RUN" ]
check "... appending to it: EROFS (read-only system)" [ "$(try $((PORT + 2)) append$SECRETS/secret)" = "errno 30" ]
check "... a sysctl: EROFS (read-only /proc/sys)" \
	[ "$(try $((PORT + 2)) rewrite/proc/sys/net/ipv4/ip_forward)" = "errno 30" ]
check "... its pids.max: EROFS (read-only cgroup view)" [ "$(try $((PORT + 2)) rewrite$PIDS_MAX)" = "errno 30" ]
check "... the test's cgroup.procs: ENOENT (cgroup namespace)" \
	[ "$(try $((PORT + 2)) cgjoin$TESTCG/cgroup.procs)" = "errno 2" ]
check "... killing the test's process: ESRCH (PID namespace)" [ "$(try $((PORT + 2)) kill/$VICTIM)" = "errno 3" ]
check "... the file is as it was" [ "$(cat "$SECRETS/secret")" = "gen-secret-$RUN" ]

# stop-signal reaches the server through its init, and the generation's
# exit status is the server's (128 + SIGTERM, as a shell says it).
G new ${SVC}g > /dev/null 2>&1
init=$(json_field ${SVC}g 1 pid)
get $((PORT + 3)) / > /dev/null                 # a background task of 1 s
out=$(G new ${SVC}g --wait 2>&1)
check "stop-signal: the draining generation's server ends on SIGTERM, its task finishes first" \
	bash -c "grep -q 'generation 1 retired: clean' <<<'$out' && grep -q '${SVC}g: generation 1: main process exited (status 143)' '$T/gend.log' && ls '$T/markers' | grep -q '^done-1-'"
check "... and its init is gone with it" [ ! -e /proc/$init ]

# Unmodified servers under the default policy.
i=4
for srv in nginx php node py; do
	out=$(G new ${SVC}$srv 2>&1); rc=$?
	check "$srv serves under the default policy" bash -c "[ $rc -eq 0 ] && [ \"\$(curl -s -m 10 http://127.0.0.1:$((PORT + i))/)\" = '$srv ok' ]" ||
		{ echo "# $out"; G logs ${SVC}$srv 1 | sed 's/^/#   /' | tail -5; }
	i=$((i + 1))
done
init=$(json_field ${SVC}nginx 1 pid)
master=$(awk '{print $1}' /proc/$init/task/$init/children)
workers=$(cat /proc/$master/task/$master/children 2>/dev/null)
check "nginx: a master and its 2 workers, the workers as www-data of its user namespace" \
	bash -c "[ \$(wc -w <<<'$workers') -eq 2 ] && for w in $workers; do nsenter -t $init -U -- cat /proc/\$w/status | grep -q '^Uid:.33	33	33	33' || exit 1; done"
check "... its release directory is its own: it wrote its pid file there" [ -s $W/nginx/nginx.pid ]

out=$(G new ${SVC}p 2>&1); rc=$?
check "an exec probe runs inside the generation, as confined as it" [ $rc -eq 0 ]
check "... its failed read is in the generation's log" grep -q "secret: Permission denied" "$T/log/${SVC}p/1.log"
stop_gend

# Names: with a loopback resolver on the host (here a stand-in resolv.conf
# in gend's own mount namespace), the generation asks its gateway; its
# host name is its own address; [sandbox] hosts and dns add and replace.
printf 'nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n' > "$T/resolv.conf"
POLICY_PORT=$((PORT + 9)) write_policy ${SVC}n
POLICY_PORT=$((PORT + 10)) write_policy ${SVC}m "[sandbox]" "hosts = db 10.0.0.5" "dns = 192.0.2.53"
GEND_WRAP="unshare -m --propagation private" GEND_PRE="mount --bind $T/resolv.conf /etc/resolv.conf &&" start_gend || exit 1
G new ${SVC}n > /dev/null 2>&1; G new ${SVC}m > /dev/null 2>&1
in_gen() { nsenter -t "$(json_field "$1" 1 pid)" -m -- cat "$2"; }
addr=$(json_field ${SVC}n 1 address)
gw=$(ip -o -4 addr show dev "$(json_field ${SVC}n 1 veth)" | awk '{print $4}' | cut -d/ -f1)
check "resolv.conf: the host's loopback nameserver becomes its gateway ($gw)" \
	bash -c "[ \"\$(grep ^nameserver <<<\"\$1\")\" = 'nameserver $gw' ] && grep -q '^options edns0 trust-ad' <<<\"\$1\"" _ "$(in_gen ${SVC}n /etc/resolv.conf)"
check "hosts: its host name ${SVC}n-1 is its address $addr" \
	grep -qP "^$addr\t${SVC}n-1\$" <<<"$(in_gen ${SVC}n /etc/hosts)"
check "[sandbox] dns replaces the nameservers" \
	[ "$(in_gen ${SVC}m /etc/resolv.conf | grep ^nameserver)" = "nameserver 192.0.2.53" ]
check "[sandbox] hosts adds a name" grep -qP "^10\.0\.0\.5\tdb\$" <<<"$(in_gen ${SVC}m /etc/hosts)"
check "... which it cannot change: EACCES" [ "$(get $((PORT + 10)) /try/append/etc/hosts)" = "errno 13" ]
check "the host's files are untouched" bash -c "! grep -q 'made by gend' /etc/hosts"
stop_gend
check "gend's log has no sanitizer report" no_sanitizer_reports
