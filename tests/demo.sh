#!/usr/bin/env bash
# make demo: a live deployment on this machine, then everything removed.
# gend starts on a temporary configuration, in a network namespace of the
# demo's own (its rules, ip_forward and 127.0.0.1 are that namespace's; the
# host's are not touched); generation 1 of the sample service is deployed;
# a bounded load runs through the public port on 127.0.0.1 in there;
# generation 2 is deployed during it; what happened is printed.
B=${1:-build}
export B
. "$(dirname "$0")/integration/lib.sh"
SVC=web-$RUN
preflight

# Bold headings on a terminal only: no escape codes in a file or a pipe.
if [ -t 1 ]; then
	say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
	say() { printf '\n== %s\n' "$*"; }
fi
write_policy "$SVC"
say "policy $T/etc/$SVC.policy"
cat "$T/etc/$SVC.policy"
say "starting gend"
start_gend || exit 1
cat "$T/gend.log"

say "gen new $SVC                      (generation 1)"
G new "$SVC" || exit 1
addr=$(json_field "$SVC" 1 address); veth=$(json_field "$SVC" 1 veth)
route_is_ours "$addr" "$veth" || { echo "route to $addr is not through $veth: stopping"; exit 1; }
curl -s "http://127.0.0.1:$PORT/"

say "load: 600 requests to 127.0.0.1:$PORT, one connection each, at most 30 s"
"$TOOLS/load" 127.0.0.1 "$PORT" 600 30 10 > "$T/load" 2> "$T/load.err" &
load=$!
sleep 2
say "gen new $SVC --wait               (generation 2, during the load)"
G new "$SVC" --wait
say "gen list"
G list
wait $load

say "what happened"
read -r _ total _ failed rest < "$T/load"
g1=$(grep -o 'gen:1=[0-9]*' "$T/load" | cut -d= -f2); g2=$(grep -o 'gen:2=[0-9]*' "$T/load" | cut -d= -f2)
started=$(ls "$T/markers" | grep -c '^start-1-'); done_=$(ls "$T/markers" | grep -c '^done-1-')
echo "requests:              $total"
echo "failed requests:       $failed"
echo "answered by gen 1:     ${g1:-0}"
echo "answered by gen 2:     ${g2:-0}"
echo "gen 1 background tasks: $started started, $done_ finished before it was killed"
echo "gen 1 quiescence:      $(grep -o 'generation 1 retired: .*' "$T/gend.log")"

say "cleaning up"
G retire "$SVC" 2 --force --wait
stop_gend
echo "gend stopped; the trap removes the rest: cgroups, and the demo's network namespace"
echo "with its rules and links"
