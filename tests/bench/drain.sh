#!/usr/bin/env bash
# make bench, drain: how soon a drain sees that it is over, and what it
# costs while it waits. The issue's bound: the last task's exit (or the
# last connection's close) to the freeze within settle + 10 ms.
#   last task    a request starts a 1 s task process in the active
#                generation, then gen new: the old generation drains
#                behind the task. From the task's exit (the time in the
#                marker it writes as its last act) to "draining -> frozen"
#                in gend's log (which gend writes once it froze the
#                cgroup). Exits come by pidfd.
#   last conn    a connection held to the active generation (no request,
#                so no task), then gen new; 0.5 s later the client closes
#                it. From the close to the freeze. Closes come by conntrack
#                events.
# Each TRIALS times, with settle = 200 ms; recorded: the whole time, the
# settle time (the floor: no drain can end before it), and the worst trial
# beyond it. (gend's wakeups while a generation drains behind a held
# connection: idle.sh.)
B=${1:-build}
export B
. "$(dirname "$0")/../integration/lib.sh"
preflight
. "$(dirname "$0")/common.sh"
TRIALS=${TRIALS:-20}
SETTLE_MS=200
export TZ=UTC            # gend's log and this script on one clock face

write_policy "$SVC" "[drain]" "settle = ${SETTLE_MS}ms" "timeout = 30s"
start_gend || exit 1

ms_of_day() { awk -v t="$1" 'BEGIN {printf "%.3f", (t % 86400) * 1000}'; }   # epoch s
log_ms() { awk -F: '{printf "%.3f", ($1 * 3600 + $2 * 60 + $3) * 1000}' <<<"$1"; }
froze_at() {  # GEN: when gend's log says it froze (ms of day), within 10 s
	local line
	for _ in $(seq 200); do
		line=$(grep -m1 "$SVC: generation $1 draining -> frozen" "$T/gend.log") &&
			{ log_ms "${line%% *}"; return 0; }
		sleep 0.05
	done
	return 1
}

G new "$SVC" > /dev/null || exit 1
gen=1 task=() conn=()
for _ in $(seq "$TRIALS"); do
	curl -s -m 2 "http://127.0.0.1:$PORT/" > /dev/null
	G new "$SVC" --wait > /dev/null || { say "gen new failed"; exit 1; }
	done_file=$(ls "$T/markers"/done-$gen-* 2>/dev/null | head -1)
	[ -n "$done_file" ] || { say "generation $gen's task left no marker"; exit 1; }
	f=$(froze_at $gen) || { say "generation $gen never froze"; exit 1; }
	task+=("$(awk -v f="$f" -v d="$(ms_of_day "$(cat "$done_file")")" 'BEGIN {printf "%.1f", f - d}')")
	gen=$((gen + 1))
done
for _ in $(seq "$TRIALS"); do
	exec 3<>"/dev/tcp/127.0.0.1/$PORT"
	G new "$SVC" > /dev/null || { say "gen new failed"; exit 1; }
	sleep 0.5
	[ "$(json_field "$SVC" $gen state)" = draining ] || { say "generation $gen is not draining"; exit 1; }
	closed=$(ms_of_day "$EPOCHREALTIME")
	exec 3>&-
	f=$(froze_at $gen) || { say "generation $gen never froze"; exit 1; }
	conn+=("$(awk -v f="$f" -v c="$closed" 'BEGIN {printf "%.1f", f - c}')")
	gen=$((gen + 1))
done

beyond() { for v; do awk -v v="$v" -v s=$SETTLE_MS 'BEGIN {printf "%.1f ", v - s}'; done; }
max() { printf '%s\n' "$@" | sort -g | tail -1; }
floor=$(for _ in $(seq "$TRIALS"); do printf '%s ' $SETTLE_MS; done)
record "drain: last task's exit to the freeze" "gen" "ms" lower "${task[@]}"
record "drain: last task's exit to the freeze" "the settle time" "ms" lower $floor
record "drain: last connection's close to the freeze" "gen" "ms" lower "${conn[@]}"
record "drain: last connection's close to the freeze" "the settle time" "ms" lower $floor
record "drain: beyond the settle time, last task, worst of $TRIALS" "gen" "ms" lower \
	"$(max $(beyond "${task[@]}"))"
record "drain: beyond the settle time, last connection, worst of $TRIALS" "gen" "ms" lower \
	"$(max $(beyond "${conn[@]}"))"

say "last task: ${task[*]} ms; last connection: ${conn[*]} ms (settle $SETTLE_MS ms)"
