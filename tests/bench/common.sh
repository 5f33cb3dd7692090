# Shared by the sections of make bench (tests/bench/*.sh), after
# tests/integration/lib.sh: each section is a run of its own (its network
# namespace, cgroup, gend, temp dir), cleaned up by lib.sh's traps.
#
# A section records samples with `record`: one line per measured thing,
#   GROUP <tab> SUBJECT <tab> UNIT <tab> BETTER <tab> v1 v2 v3 ...
# into $BENCH_OUT/<section>.tsv. report.sh makes the table, the ratios and
# the Markdown from these lines. BETTER is "lower" or "higher". In a group,
# the first subject is gen's, the others are its baselines.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SECTION=$(basename "$0" .sh)
: "${BENCH_OUT:?BENCH_OUT: the directory the figures go to}"
NGINX_BIN=${NGINX_BIN:-/usr/sbin/nginx}

say() { printf '# %s: %s\n' "$SECTION" "$*" >&2; }

record() {  # GROUP SUBJECT UNIT BETTER VALUES...
	local g=$1 s=$2 u=$3 b=$4; shift 4
	[ $# -gt 0 ] || { say "no samples for $g / $s"; return 1; }
	printf '%s\t%s\t%s\t%s\t%s\n' "$g" "$s" "$u" "$b" "$*" >> "$BENCH_OUT/$SECTION.tsv"
}

# A note for the report, under the section's figures.
note() { printf '%s\n' "$*" >> "$BENCH_OUT/$SECTION.notes"; }

median() { sort -g | awk '{a[NR] = $1} END {if (NR) print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

now_ms() { local t=$EPOCHREALTIME; echo "${t%.*}${t#*.}" | awk '{printf "%.3f", $1 / 1000}'; }

# nginx in the run's namespace, from a config of its own in DIR; its
# processes are in the run's cgroup, so the run's cleanup stops them too.
nginx_conf_head() {  # DIR
	cat <<EOF
worker_processes 1;
worker_rlimit_nofile 16384;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 8192; }
http {
	access_log off;
	client_body_temp_path $1/tmp/body;
	proxy_temp_path $1/tmp/proxy;
	fastcgi_temp_path $1/tmp/fastcgi;
	uwsgi_temp_path $1/tmp/uwsgi;
	scgi_temp_path $1/tmp/scgi;
	keepalive_requests 1000000;
EOF
}

nginx_start() {  # DIR (DIR/nginx.conf written)
	mkdir -p "$1/tmp"
	"$NGINX_BIN" -p "$1" -c "$1/nginx.conf" || { cat "$1/error.log" >&2; return 1; }
	for _ in $(seq 100); do [ -s "$1/nginx.pid" ] && return 0; sleep 0.02; done
	return 1
}

nginx_stop() {  # DIR
	local pid
	[ -s "$1/nginx.pid" ] || return 0
	pid=$(cat "$1/nginx.pid")
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.02; done
	kill -KILL "$pid" 2>/dev/null
}

# The processes of a cgroup and its children, for a load's by-hand stop.
cg_procs() { find "$1" -name cgroup.procs -exec cat {} + 2>/dev/null; }
