#!/usr/bin/env bash
# make bench's report, from the figures the sections recorded:
#   report.sh RESULTS
# reads RESULTS/raw/*.tsv (see common.sh), *.notes and timeline-*.tsv,
# prints the table (median, min, max, and the ratio of gen's median to
# each baseline's), writes RESULTS/README.md and the plots (gnuplot).
set -u
R=${1:?results directory}
RAW=$R/raw
HERE=$(cd "$(dirname "$0")" && pwd)
ls "$RAW"/*.tsv > /dev/null 2>&1 || { echo "report: no figures in $RAW" >&2; exit 1; }

# One line per group and subject: the statistics, in the groups' order.
#   GROUP \t SUBJECT \t UNIT \t BETTER \t n \t median \t min \t max
stats() {
	# The sections' figures; timeline-*.tsv are the plots' data.
	find "$RAW" -maxdepth 1 -name '*.tsv' ! -name 'timeline-*' | sort | xargs cat | awk -F'\t' '
	{
		n = split($5, v, " ")
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
		med = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
		printf "%s\t%s\t%s\t%s\t%d\t%.6g\t%.6g\t%.6g\n", $1, $2, $3, $4, n, med, v[1], v[n]
	}'
}
stats > "$RAW/stats"

fmt() { awk -v x="$1" 'BEGIN { a = x < 0 ? -x : x; if (a >= 1000) printf "%.0f", x; else if (a >= 100) printf "%.1f", x; else if (a >= 1) printf "%.2f", x; else printf "%.3f", x }'; }

# The table, as text (md=0) or Markdown (md=1).
table() {  # MD
	awk -F'\t' -v md="$1" '
	function f(x) { a = x < 0 ? -x : x; if (a >= 1000) return sprintf("%.0f", x); if (a >= 100) return sprintf("%.1f", x); if (a >= 1) return sprintf("%.2f", x); return sprintf("%.3f", x) }
	{
		if (!($1 in seen)) { seen[$1] = 1; order[++ng] = $1; unit[$1] = $3; better[$1] = $4 }
		k = ++ns[$1]; subj[$1, k] = $2; n[$1, k] = $5; med[$1, k] = $6; mn[$1, k] = $7; mx[$1, k] = $8
	}
	END {
		for (g = 1; g <= ng; g++) {
			G = order[g]; gens = ""
			for (k = 1; k <= ns[G]; k++) if (subj[G, k] ~ /^gen/) gens = gens " " k
			ngen = split(gens, gi, " ")
			head = G " (" unit[G] ", " better[G] " is better)"
			if (md) {
				printf "\n**%s**\n\n| | median | min | max | runs | gen / this |\n|---|---:|---:|---:|---:|---|\n", head
			} else
				printf "\n%s\n  %-48s %10s %10s %10s %5s  %s\n", head, "", "median", "min", "max", "runs", "gen / this"
			for (k = 1; k <= ns[G]; k++) {
				r = ""
				if (subj[G, k] !~ /^gen/)
					for (i = 1; i <= ngen; i++) {
						b = med[G, k]; a = med[G, gi[i]]
						r = r (r == "" ? "" : ", ") (b == 0 ? "-" : sprintf("%.2fx", a / b)) (ngen > 1 ? " (" subj[G, gi[i]] ")" : "")
					}
				if (md)
					printf "| %s | %s | %s | %s | %d | %s |\n", subj[G, k], f(med[G, k]), f(mn[G, k]), f(mx[G, k]), n[G, k], r
				else
					printf "  %-48s %10s %10s %10s %5d  %s\n", subj[G, k], f(med[G, k]), f(mn[G, k]), f(mx[G, k]), n[G, k], r
			}
		}
	}' "$RAW/stats"
}

# The targets: met or not, with the figures.
targets() {  # MD
	local top
	top=$(awk -F'\t' '$1 ~ /^switch, [0-9]+ services?:/ {split($1, w, " "); if (w[2] + 0 > t) t = w[2] + 0} END {print t + 0}' "$RAW/stats")
	grep -v '^#' "$HERE/targets.tsv" | sed "s/TOP/$top/g" | awk -F'\t' -v md="$1" -v stats="$RAW/stats" '
	BEGIN { while ((getline l < stats) > 0) { split(l, a, "\t"); m[a[1] "|" a[2]] = a[6] } }
	function val(ref) { if (ref ~ /^[0-9.]+$/) return ref + 0; return (ref in m) ? m[ref] : "" }
	NF >= 5 {
		x = val($2); ref = val($5)
		if (x == "" || ref == "") { st = "not measured"; detail = "" }
		else {
			lim = $4 * ref
			ok = ($3 == "<=") ? (x <= lim + 1e-9) : (x >= lim - 1e-9)
			st = ok ? "met" : "NOT met"
			detail = sprintf("%.4g %s %.4g", x, $3, lim)
			if ($5 !~ /^[0-9.]+$/ && ref != 0) detail = detail sprintf(" (%.2fx)", x / ref)
		}
		if (md) printf "| %s | %s | %s |\n", $1, st, detail
		else printf "  %-8s %-78s %s\n", st, $1, detail
	}'
}

machine() {
	local cpu mem
	cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
	mem=$(awk '/^MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
	echo "$(nproc) cores ($cpu), $mem, Linux $(uname -r), Debian $(cat /etc/debian_version 2>/dev/null || echo ?), iptables $(iptables --version 2>/dev/null | awk '{print $2, $3}'), nginx $(nginx -v 2>&1 | sed 's|.*/||')"
}

plots() {
	command -v gnuplot > /dev/null || { echo "report: no gnuplot: no plots" >&2; return 0; }
	"$HERE/plots.sh" "$R" || echo "report: plots failed" >&2
}

{
	echo "make bench, $(date -u '+%Y-%m-%d %H:%M UTC') on $(machine)"
	echo "gen / this: gen's median divided by this baseline's (for times, below 1 is faster)."
	table 0
	echo
	echo "Targets"
	targets 0
} | tee "$R/table.txt"

# The short table README.md shows: medians, gen and its baselines side
# by side, one line per comparison.
summary() {
	awk -F'\t' '
	function f(x) { if (x == int(x)) return sprintf("%d", x); a = x < 0 ? -x : x; if (a >= 1000) return sprintf("%.0f", x); if (a >= 100) return sprintf("%.1f", x); if (a >= 1) return sprintf("%.1f", x); return sprintf("%.2f", x) }
	{ m[$1 "|" $2] = $6; u[$1] = $3 }
	function row(label, g, a, b, c,    s) {
		if (!((g "|" a) in m)) return
		s = sprintf("%-50s %8s", label, f(m[g "|" a]))
		s = s sprintf(" %8s", ((g "|" b) in m) ? f(m[g "|" b]) : "")
		s = s sprintf(" %10s", ((g "|" c) in m) ? f(m[g "|" c]) : "")
		print s "  " u[g]
	}
	END {
		printf "%-50s %8s %8s %10s\n", "switch: command to first new connection", "gen", "ipt-rest", "nginx"
		for (n = 1; n <= 1000; n++) {
			g = "switch, " n " service" (n > 1 ? "s" : "") ": command to first new connection on the new side"
			row("  " n " service" (n > 1 ? "s" : ""), g, "gen switch", "iptables-restore --noflush", "nginx -s reload")
		}
		printf "%-50s %8s %8s %10s\n", "switch under load (sample service)", "gen new", "recipe", "stop+start"
		split("new connection per request|keep-alive", L, "|"); split("new conn|keep-alive", S, "|")
		for (i = 1; i <= 2; i++) {
			g = "under load, " L[i]
			row("  " S[i] ": failed requests", g ": failed requests", "gen new", "nginx recipe (second port, reload)", "stop and start")
			row("  " S[i] ": background tasks cut", g ": background tasks of release 1 cut", "gen new", "nginx recipe (second port, reload)", "stop and start")
			row("  " S[i] ": to release 2 answering", g ": deploy command to the first answer from release 2", "gen new", "nginx recipe (second port, reload)", "stop and start")
			row("  " S[i] ": until release 1 gone", g ": deploy command until release 1 is gone", "gen new", "nginx recipe (second port, reload)", "stop and start")
		}
		printf "%-50s %8s %8s %10s\n", "forwarding, requests per second", "gen DNAT", "direct", "nginx"
		row("  keep-alive", "forwarding, keep-alive: throughput", "gen DNAT, from loopback", "direct, in the generation'"'"'s netns", "nginx reverse proxy (upstream keepalive)")
		row("  new connection per request", "forwarding, new connection per request: throughput", "gen DNAT, from loopback", "direct, in the generation'"'"'s netns", "nginx reverse proxy (upstream keepalive)")
		printf "%-50s %8s %8s\n", "  the same over a veth, without DNAT", "gen DNAT", "no DNAT"
		row("    keep-alive, from the host", "forwarding, keep-alive: throughput", "gen DNAT, from loopback", "host to a generation'"'"'s address (veth, no DNAT)")
		row("    new connection, from the host", "forwarding, new connection per request: throughput", "gen DNAT, from loopback", "host to a generation'"'"'s address (veth, no DNAT)")
		row("    new connection, from a client netns", "forwarding, new connection per request: throughput", "gen DNAT, from a client netns", "client netns to a generation'"'"'s address (routed, no DNAT)")
		printf "%-50s %8s %8s %10s\n", "  where it goes: a veth alone, then conntrack", "direct", "veth", "+conntrack"
		row("    keep-alive", "forwarding, keep-alive: throughput", "direct, in the generation'"'"'s netns", "bare netns to a generation over a veth of its own (no conntrack)", "host to a generation'"'"'s address (veth, no DNAT)")
		row("    new connection per request", "forwarding, new connection per request: throughput", "direct, in the generation'"'"'s netns", "bare netns to a generation over a veth of its own (no conntrack)", "host to a generation'"'"'s address (veth, no DNAT)")
		printf "%-50s %8s %8s\n", "  conntrack set to its least work", "as is", "least"
		T = "the same, conntrack set to its least work (no events, checksums, window checks)"
		row("    keep-alive", "forwarding, keep-alive: throughput", "host to a generation'"'"'s address (veth, no DNAT)", T)
		row("    new connection per request", "forwarding, new connection per request: throughput", "host to a generation'"'"'s address (veth, no DNAT)", T)
		printf "%-50s %8s %8s\n", "a generation'"'"'s objects", "gend", "by hand"
		row("  set-up (cgroup, netns, veth, exec)", "set-up: cgroup, netns, veth, addresses, route, process exec'"'"'d", "gend", "ip commands")
		split("1 process|100 processes|1000 processes", P, "|")
		for (i = 1; i <= 3; i++)
			row("  retire --now, " P[i], "retire --now: request to retired, " P[i], "gen retire --now", "freeze, kill, rmdir, netns del by hand")
		printf "%-50s %8s %8s\n", "at rest, 10 services x 2 generations", "gend", "nginx"
		row("  wakeups per second", "at rest: wakeups per second, 10 services x 2 generations", "gend", "nginx master + worker")
		row("  resident memory", "at rest: resident memory, 10 services x 2 generations", "gend", "nginx master + worker")
		printf "%-50s %8s %8s\n", "drain, settle 200 ms: to the freeze", "gen", "settle"
		row("  from the last task'"'"'s exit", "drain: last task'"'"'s exit to the freeze", "gen", "the settle time")
		row("  from the last connection'"'"'s close", "drain: last connection'"'"'s close to the freeze", "gen", "the settle time")
		row("  wakeups per second behind a held connection", "one generation draining behind a held connection: wakeups per second", "gend")
	}' "$RAW/stats"
}
summary > "$R/summary.txt"

plots
{
	echo "# make bench: gen against what users do today"
	echo
	echo "Taken $(date -u '+%Y-%m-%d %H:%M UTC') on $(machine)."
	echo "Each figure is the median of its runs, with the smallest and largest;"
	echo "\"gen / this\" divides gen's median by the baseline's (for times, below 1"
	echo "means gen is faster; for throughput, above 1). Sections and what they"
	echo "measure: the comments at the top of each script in tests/bench/."
	echo
	echo "## Targets"
	echo
	echo "| target | | figures |"
	echo "|---|---|---|"
	targets 1
	for p in switch under-load forwarding; do
		for f in "$R"/$p*.png; do [ -f "$f" ] && printf '\n![%s](%s)\n' "$(basename "$f" .png)" "$(basename "$f")"; done
	done
	echo
	echo "## Figures"
	table 1
	if ls "$RAW"/*.notes > /dev/null 2>&1; then
		echo
		echo "## Notes"
		echo
		cat "$RAW"/*.notes | sed 's/^/- /'
	fi
} > "$R/README.md"
