#!/usr/bin/env bash
# make bench: gen against what users do today, side by side in one run,
# on this machine. Each section is a script of its own, run as the
# integration tests run (tests/integration/lib.sh): in a network namespace
# of its own with its own cgroup, gend and temp dir, sending traffic only
# to 127.0.0.0/8 and to namespaces it made, every load bounded in count
# and time, everything removed in a trap.
#   lifecycle.sh  B4/B5 set-up and tear-down against ip commands and
#                 freeze, kill, rmdir, netns del by hand
#   switch.sh     B3 switch latency, 1, 100 and 1000 services, against a
#                 bare iptables-restore and nginx -s reload
#   idle.sh       B6 the supervisor at rest: wakeups, memory; and while a
#                 generation drains behind a held connection
#   drain.sh      how soon a drain sees its end: the last task's exit and
#                 the last connection's close to the freeze, against settle
#   forward.sh    B2 forwarding overhead: direct, DNAT, nginx proxy
#   load.sh       B1 switching under load: gen, the nginx recipe, stop and
#                 start
# The figures go to tests/bench/results/raw/, the table to standard output
# and results/table.txt, the report to results/README.md with its plots.
#   tests/bench/run.sh [BUILD_DIR] [SECTION...]
B=${1:-build}
shift
HERE=$(cd "$(dirname "$0")" && pwd)
# lifecycle first: the kernel removes namespaces in a worker of its own,
# and the switch section's 1000 of them, removed at its end, would still
# hold the locks a set-up takes.
ALL="lifecycle switch idle drain forward load"
SECTIONS=${*:-$(for s in $ALL; do [ -f "$HERE/$s.sh" ] && echo "$s"; done)}
export BENCH_OUT=$HERE/results/raw

[ "$(id -u)" = 0 ] || { echo "make bench: needs root (it makes cgroups, network namespaces, iptables rules)"; exit 1; }
mkdir -p "$BENCH_OUT"
for s in $SECTIONS; do rm -f "$BENCH_OUT/$s.tsv" "$BENCH_OUT/$s.notes"; [ "$s" = load ] && rm -f "$BENCH_OUT"/timeline-*.tsv; done
[ $# = 0 ] && rm -f "$BENCH_OUT"/*

failed=0 start=$SECONDS
for s in $SECTIONS; do
	t=$SECONDS
	echo "== $s"
	if ! bash "$HERE/$s.sh" "$B"; then
		echo "make bench: section $s failed"
		failed=$((failed + 1))
	fi
	echo "== $s: $((SECONDS - t)) s"
done
echo "== all sections: $((SECONDS - start)) s"
"$HERE/report.sh" "$HERE/results" || failed=$((failed + 1))
exit $((failed > 0))
