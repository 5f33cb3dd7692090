#!/usr/bin/env bash
# gend -n on a directory of broken policies: one error per broken file,
# each naming file, line and key; the good files listed as OK; exit 1.
# Needs no root and makes no kernel objects: only files in a temp dir.
: "${B:=build}"
. "$(dirname "$0")/lib.sh"
# No preflight (no root, no kernel objects), so no run directory from the
# lib: a temp dir of its own, never the root of the file system.
T=$(mktemp -d /tmp/gen-test.XXXXXX) || { notok "mktemp"; exit 1; }
[ -d "$T" ] && [ "$T" != / ] || exit 1
trap 'rm -rf "$T"; exit $((FAILED > 0))' EXIT
trap 'exit 1' INT TERM

E=$T/etc
mkdir -p "$E" "$T/release"
printf 'data\n' > "$T/plain"; chmod 0644 "$T/plain"
printf '#!/nonexistent-gen-%s/php\n' "$RUN" > "$T/script"; chmod 0755 "$T/script"

# policy NAME [lines...]: [service] exec = /bin/sh and one port of its own
# come first (lines 1-4), the given lines follow from line 5.
n=0
policy() {
	local name=$1; shift
	n=$((n + 1))
	{
		printf '[service]\nexec = /bin/sh\n[listen]\nport = %d:9501\n' $((20000 + n))
		for l in "$@"; do printf '%s\n' "$l"; done
	} > "$E/$name.policy"
}
# svc NAME EXEC [lines...]: exec given on line 2.
svc() {
	local name=$1 exec=$2; shift 2
	n=$((n + 1))
	{
		printf '[service]\nexec = %s\n[listen]\nport = %d:9501\n' "$exec" $((20000 + n))
		for l in "$@"; do printf '%s\n' "$l"; done
	} > "$E/$name.policy"
}

declare -A want
svc exec-missing "/nonexistent-gen-$RUN/server --port 9501"
want[exec-missing]="2: [service] exec: /nonexistent-gen-$RUN/server: No such file or directory"
svc exec-plain "$T/plain"
want[exec-plain]="2: [service] exec: $T/plain: not executable (mode 0644)"
svc exec-dir "$T/release"
want[exec-dir]="2: [service] exec: $T/release: a directory, not a program"
svc exec-script "$T/script start"
want[exec-script]="2: [service] exec: $T/script: the interpreter of its '#!' line, /nonexistent-gen-$RUN/php: No such file or directory"
policy user "[service]" "user = gen-nouser-$RUN"
want[user]="6: [service] user: 'gen-nouser-$RUN': no such user"
policy group "[service]" "group = gen-nogroup-$RUN"
want[group]="6: [service] group: 'gen-nogroup-$RUN': no such group"
policy dir "[service]" "directory = $T/gone"
want[dir]="6: [service] directory: $T/gone: No such file or directory"
policy dir-file "[service]" "directory = $T/plain"
want[dir-file]="6: [service] directory: $T/plain: not a directory"
policy probe "[ready]" "probe = exec /nonexistent-gen-$RUN/check"
want[probe]="6: [ready] probe: /nonexistent-gen-$RUN/check: No such file or directory"
policy timeout-zero "[ready]" "timeout = 0s"
want[timeout-zero]="6: [ready] timeout: '0s' is out of range: more than 0, at most 1h"
policy timeout-exp "[ready]" "timeout = 1e9h"
want[timeout-exp]="6: [ready] timeout: '1e9h' is not a duration (use e.g. 200ms, 10s, 2m): digits, an optional .fraction and a unit ms, s, m, min or h, without sign, exponent or spaces; more than 0, at most 1h"
policy settle-hex "[drain]" "settle = 0x10s"
want[settle-hex]="6: [drain] settle: '0x10s' is not a duration (use e.g. 200ms, 10s, 2m): digits, an optional .fraction and a unit ms, s, m, min or h, without sign, exponent or spaces; 0 to 10m"
policy twice "[ready]" "timeout = 10s" "" "[drain]" "settle = 1s" "[ready]" "timeout = 20s"
want[twice]="11: [ready] timeout given again (first at line 6)"
policy core "[limits]" "core = 1e18"
want[core]="6: [limits] core: must be 0 or a size of at most 64T (bytes, or a number with an optional .fraction and K, M, G or T, e.g. 512M), not '1e18'"
policy seccomp "[sandbox]" "seccomp = /etc/passwd"
want[seccomp]="6: [sandbox] seccomp: /etc/passwd:1: the first line must be 'deny' (listed calls fail with EPERM) or 'allow' (only listed calls work, others fail with ENOSYS)"
# Good ones, with every key checked against the host.
policy good
# Its program lives in its own directory: wherever this tree is (below
# /tmp too), a generation's private /tmp does not hide it.
cp "$TOOLS/sample" "$T/release/sample"
svc good2 "$T/release/sample" "[service]" "directory = $T/release" "user = root" "group = root" \
	"[ready]" "probe = exec /bin/true" "[sandbox]" "seccomp = $ROOT/policy/profiles/strict.profile"

"$B/gend" -n -c "$E" > "$T/out" 2> "$T/err"; rc=$?
check "gend -n exits 1 when a policy is broken" [ $rc -eq 1 ]
for name in "${!want[@]}"; do
	check "$name: gend: $E/$name.policy:${want[$name]}" \
		grep -qxF "gend: $E/$name.policy:${want[$name]}" "$T/err"
done
check "one error line per broken file, and one that counts them" \
	[ "$(grep -c "^gend: $E/" "$T/err")" -eq ${#want[@]} ]
check "... the count: ${#want[@]} policies with errors" \
	grep -qxF "gend: ${#want[@]} policies in $E with errors" "$T/err"
check "nothing else on stderr (no sanitizer report)" \
	[ "$(wc -l < "$T/err")" -eq $((${#want[@]} + 1)) ]
check "the good files are listed as OK" grep -qxF "2 policies in $E OK: good, good2" "$T/out"

# Only the good ones: exit 0.
mkdir "$T/good"
mv "$E/good.policy" "$E/good2.policy" "$T/good/"
out=$("$B/gend" -n -c "$T/good" 2>&1); rc=$?
check "gend -n exits 0 on good policies" [ $rc -eq 0 ]
check "... and lists them" [ "$out" = "2 policies in $T/good OK: good, good2" ]

# A directory that cannot be read.
out=$("$B/gend" -n -c "$T/none" 2>&1); rc=$?
check "gend -n on a missing directory: exit 1 and why" \
	bash -c "[ $rc -eq 1 ] && [ \"\$1\" = 'gend: opendir($T/none): No such file or directory' ]" _ "$out"
if [ "$FAILED" -gt 0 ]; then
	sed 's/^/# stdout: /' "$T/out"; sed 's/^/# stderr: /' "$T/err"
fi
