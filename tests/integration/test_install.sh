#!/usr/bin/env bash
# make install and uninstall: PREFIX and DESTDIR everywhere. A gend
# installed under a prefix of its own reads the seccomp profiles installed
# beside it (whatever it was built with), refuses to start without them,
# and -P still overrides; a staged install (DESTDIR) has paths for PREFIX
# only; uninstall removes what install put there.
. "$(dirname "$0")/lib.sh"
preflight

X=$(extra_dir /tmp) || exit 1           # the prefix
S=$(extra_dir /tmp) || exit 1           # the stage (DESTDIR)
MK=(make -s -C "$ROOT" B="$TOOLS")      # the plain build, already made
FILES="sbin/gend sbin/gen libexec/gen/gen-init share/gen/profiles/default.profile share/gen/profiles/strict.profile
share/man/man8/gen.8 share/man/man8/gend.8 share/man/man5/gen.policy.5
lib/systemd/system/gend.service lib/tmpfiles.d/gen.conf share/bash-completion/completions/gen"
files_under() { (cd "$1" && find . -type f -o -type l | sed 's|^\./||' | sort); }
expected() { for f in $FILES; do echo "${1:-}$f"; done | sort; }

"${MK[@]}" install PREFIX="$X" > "$T/install.log" 2>&1
check "make install PREFIX=$X" [ $? -eq 0 ]
check "... installs every file, and only those, under the prefix" [ "$(files_under "$X")" = "$(expected)" ]
unit_runs() {  # UNIT SBINDIR: both of ExecStart='s programs are SBINDIR/gend
	[ "$(grep -o "[^ ]*/sbin/gend" "$1" | sort -u)" = "$2/gend" ] && ! grep -q @SBINDIR@ "$1"
}
check "... the unit starts $X/sbin/gend" unit_runs "$X/lib/systemd/system/gend.service" "$X/sbin"
check "... gend reads the profiles in $X/share/gen/profiles" \
	bash -c "'$X/sbin/gend' -h | grep -qF -- '-P DIR   seccomp profiles, default $X/share/gen/profiles'"

# The installed gend, without -P, in the run's namespace, each start in a
# new cgroup of the run's: a cgroup an earlier gend enabled controllers in
# takes no process (cgroup v2's no-internal-process rule).
STARTS=0
start_installed() {  # [gend options...]
	STARTS=$((STARTS + 1))
	bash -c "$(join_run_cgroups "$TESTCG/install-$STARTS") exec '$X/sbin/gend' -c '$T/etc' -r '$T/run' \
		-s '$T/state' -l '$T/log' -p $POOL $*" >> "$T/gend.log" 2>&1 &
	GEND=$!
	for _ in $(seq 100); do
		[ -S "$T/run/gend.sock" ] && return 0
		kill -0 "$GEND" 2>/dev/null || break
		sleep 0.05
	done
	wait "$GEND"
	return 1
}
get() { curl -s -m 5 "http://127.0.0.1:$PORT$1"; }
write_policy "$SVC"
start_installed
check "the installed gend starts without -P" [ $? -eq 0 ]
check "... generation 1 starts under the installed default profile" quiet G new "$SVC"
check "... which denies add_key(2): EPERM" [ "$(get /keyctl)" = "errno 1" ]
sed -i '/^add_key$/d' "$X/share/gen/profiles/default.profile"
check "... generation 2 starts after add_key left the installed profile" quiet G new "$SVC"
check "... and add_key succeeds there: the profile under the prefix is the one read" [ "$(get /keyctl)" = "errno 0" ]

# Completion: commands, services and generations from this gend.
export PATH="$X/sbin:$PATH" GEN_SOCKET="$T/run/gend.sock"
. "$X/share/bash-completion/completions/gen"
complete_words() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); _gen; echo "${COMPREPLY[*]}"; }
check "bash completion: commands" [ "$(complete_words gen r)" = "rollback retire" ]
check "... a command's options" [ "$(complete_words gen retire --n)" = "--now" ]
check "... services, from gend" [ "$(complete_words gen switch "")" = "$SVC" ]
# What gend lists now (generation 1 may have finished draining meanwhile).
listed=$(G list "$SVC" --json | jq -r '[.services[0].generations[].generation] | join(" ")')
check "... generations, from gend ($listed)" [ "$(complete_words gen logs "$SVC" "")" = "$listed" ]
for n in 1 2; do quiet G retire "$SVC" $n --now --force --wait; done
stop_gend

# Levels: with standard error on the journal (JOURNAL_STREAM names it),
# lines carry their syslog priority; elsewhere a timestamp.
check "gend's log has timestamps when standard error is a file" grep -qE '^[0-9:.]+ gend: ready: ' "$T/gend.log"
: > "$T/journal"
JOURNAL_STREAM=$(stat -c %d:%i "$T/journal") bash -c "exec '$X/sbin/gend' -c '$T/etc' -P /nonexistent 2>> '$T/journal'"
check "... and <3> for an error when it is the journal" \
	grep -qx '<3>error: seccomp profiles: /nonexistent/default.profile: No such file or directory; named with -P' "$T/journal"

# Without its profiles the installed gend does not start, and says where
# it looked; -P still names another directory.
mv "$X/share/gen/profiles" "$X/share/gen/profiles.away"
: > "$T/gend.log"
start_installed
check "without the profiles under the prefix gend does not start" [ $? -ne 0 ]
check "... and names the file it looked for" \
	grep -q "error: seccomp profiles: $X/share/gen/profiles/default.profile: No such file or directory" "$T/gend.log"
start_installed -P "$ROOT/policy/profiles"
check "... -P still works" [ $? -eq 0 ]
check "... and its generations start" quiet G new "$SVC"
quiet G retire "$SVC" 3 --now --force --wait
stop_gend
check "gend's log has no sanitizer report" no_sanitizer_reports
mv "$X/share/gen/profiles.away" "$X/share/gen/profiles"
"${MK[@]}" uninstall PREFIX="$X" > "$T/uninstall.log" 2>&1; rc=$?
check "make uninstall PREFIX=$X leaves no file there" \
	bash -c "[ $rc -eq 0 ] && [ -z \"\$(find '$X' ! -type d)\" ] && [ ! -e '$X/share/gen' ]"

# A staged install for a package: every file below DESTDIR, paths for PREFIX.
"${MK[@]}" install DESTDIR="$S" PREFIX=/usr > "$T/stage.log" 2>&1
check "make install DESTDIR=$S PREFIX=/usr" [ $? -eq 0 ]
check "... puts every file under the stage, at its /usr path" [ "$(files_under "$S")" = "$(expected usr/)" ]
check "... the unit starts /usr/sbin/gend" unit_runs "$S/usr/lib/systemd/system/gend.service" /usr/sbin
check "... no installed file names the stage" bash -c "! grep -rqaF '$S' '$S'"
check "... nor does gend, the unit or tmpfiles.d name another prefix's files" bash -c "! grep -qaE '/usr/local/(share/gen|sbin/gen|lib/systemd|lib/tmpfiles)' \
	'$S/usr/sbin/gend' '$S/usr/sbin/gen' '$S/usr/lib/systemd/system/gend.service' '$S/usr/lib/tmpfiles.d/gen.conf'"
check "... gend finds its profiles relative to itself: share/gen/profiles of its prefix" \
	bash -c "'$S/usr/sbin/gend' -h | grep -qF -- '-P DIR   seccomp profiles, default $S/usr/share/gen/profiles'"
"${MK[@]}" uninstall DESTDIR="$S" PREFIX=/usr > "$T/unstage.log" 2>&1; rc=$?
check "make uninstall DESTDIR=$S PREFIX=/usr leaves nothing in the stage" \
	bash -c "[ $rc -eq 0 ] && [ -z \"\$(find '$S' -mindepth 1)\" ]"
