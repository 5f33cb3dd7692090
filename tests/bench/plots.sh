#!/usr/bin/env bash
# make bench's plots (gnuplot), from RESULTS/raw (see report.sh):
#   switch.png        command to first new connection on the new side, by
#                     number of services: gen, iptables-restore, nginx
#   forwarding.png    throughput by path, keep-alive and new connection
#   under-load-LOAD-KIND.png  answers per 100 ms by release, failures
#                     marked, one panel per method (load.sh's timelines)
set -u
R=${1:?results directory}
RAW=$R/raw
D=$(mktemp -d /tmp/gen-bench-plot.XXXXXX) || exit 1
trap 'rm -rf "$D"' EXIT
FONT="DejaVu Sans,10"
rc=0

# switch.png: "SCALE gen med min max raw med min max nginx med min max".
awk -F'\t' '$1 ~ /^switch, [0-9]+ services?: command to first new connection/ {
	split($1, w, " "); s = w[2] + 0
	k = ($2 ~ /^gen/) ? 1 : ($2 ~ /^iptables/) ? 2 : 3
	med[s, k] = $6; mn[s, k] = $7; mx[s, k] = $8; sc[s] = 1
} END {
	for (s in sc) { printf "%d", s; for (k = 1; k <= 3; k++) printf " %s %s %s", med[s, k], mn[s, k], mx[s, k]; printf "\n" }
}' "$RAW/stats" | sort -n > "$D/switch.dat"
if [ -s "$D/switch.dat" ]; then
	gnuplot <<EOF || rc=1
set terminal pngcairo size 800,480 font "$FONT"
set output "$R/switch.png"
set title "Switch: command to the first new connection answered by the new side\n(median, bars: min to max)"
set xlabel "services served by the same gend (and server blocks in nginx)"
set ylabel "ms"
set logscale x
set xrange [0.6:1800]
set yrange [0:*]
set key top left
set grid ytics
plot "$D/switch.dat" using (\$1*0.9):2:3:4 with yerrorlines lw 2 pt 7 title "gen switch", \
     "" using 1:5:6:7 with yerrorlines lw 2 pt 5 title "iptables-restore --noflush (same transaction)", \
     "" using (\$1*1.1):8:9:10 with yerrorlines lw 2 pt 9 title "nginx -s reload (upstream edited)"
EOF
fi

# forwarding.png: throughput by path, both modes.
awk -F'\t' '$1 ~ /^forwarding, .*: throughput/ {
	m = ($1 ~ /keep-alive/) ? "ka" : "nc"; k[$2] = 1; v[$2, m] = $6
} END { for (p in k) printf "\"%s\" %s %s\n", p, v[p, "ka"], v[p, "nc"] }' "$RAW/stats" |
	sort -t'"' -k2 > "$D/fwd.dat"
if [ -s "$D/fwd.dat" ]; then
	gnuplot <<EOF || rc=1
set terminal pngcairo size 900,480 font "$FONT"
set output "$R/forwarding.png"
set title "Forwarding: requests per second for a 13-byte static file (nginx in the generation, wrk -c32, median)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set ylabel "requests per second"
set yrange [0:*]
set xtics rotate by -20 font ",8"
set grid ytics
set key top right
plot "$D/fwd.dat" using 2:xtic(1) title "keep-alive", "" using 3 title "new connection per request"
EOF
fi

# under-load-LOAD-KIND.png: one panel per method, from
# timeline-LOAD-KIND-METHOD.tsv: "T_MS R1 R2 FAILED", "# title ...",
# "# event T_MS LABEL".
for load in newconn keepalive; do
	for kind in sample nginx; do
		ls "$RAW"/timeline-$load-$kind-*.tsv > /dev/null 2>&1 || continue
		n=0
		for m in gen recipe naive; do [ -f "$RAW/timeline-$load-$kind-$m.tsv" ] && n=$((n + 1)); done
		xmax=$(cat "$RAW"/timeline-$load-$kind-*.tsv | awk '!/^#/ && $1 > x {x = $1} END {print x + 150}')
		{
			echo "set terminal pngcairo size 900,$((220 * n + 50)) font \"$FONT\""
			echo "set output \"$R/under-load-$load-$kind.png\""
			echo "set multiplot layout $n,1 title \"Switching under load: $([ $kind = sample ] && echo 'the sample service (a 1 s background task per request)' || echo 'nginx as the service'), $([ $load = newconn ] && echo 'a new connection per request' || echo 'keep-alive connections'); answers per 100 ms\""
			echo "set style fill solid 0.9 noborder"
			echo "set boxwidth 90"
			echo "set ylabel 'per 100 ms'"
			echo "set grid ytics"
			echo "set key outside right"
			echo "set xrange [0:$xmax]"
			echo "set yrange [0:*]"
			for m in gen recipe naive; do
				f=$RAW/timeline-$load-$kind-$m.tsv
				[ -f "$f" ] || continue
				echo "set title \"$(sed -n 's/^# title //p' "$f")\""
				echo "set xlabel 'ms since the load started'"
				echo "unset arrow; unset label"
				awk '/^# event / {y = (++i == 1) ? 0.93 : 0.78; lbl = $4; gsub(/_/, " ", lbl)
					printf "set arrow from %s, graph 0 to %s, graph 1 nohead dt 2 lc rgb \"#555555\"\n", $3, $3
					printf "set label \"%s\" at %s, graph %s left offset 0.3,0 font \",8\"\n", lbl, $3, y}' "$f"
				echo "plot \"$f\" using 1:(\$2+\$3):(90) with boxes lc rgb \"#2a9d8f\" title 'release 2', \\
\"\" using 1:2:(90) with boxes lc rgb \"#e9c46a\" title 'release 1', \\
\"\" using 1:(\$4 > 0 ? \$4 : 1/0) with impulses lw 4 lc rgb \"#d62828\" title 'failed'"
			done
			echo "unset multiplot"
		} > "$D/load.gp"
		gnuplot "$D/load.gp" || rc=1
	done
done
exit $rc
