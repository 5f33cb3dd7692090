#!/usr/bin/env bash
# What a removed generation leaves comes back: its link goes with its
# network namespace (in the kernel's own time, after "retired"), its
# conntrack entries are deleted, and its address block is handed out
# again once both are done. In a pool of two open blocks, a gen new right
# after a retire gets the block at once; a link whose namespace something
# else holds is deleted by gend after 5 s.
. "$(dirname "$0")/lib.sh"
preflight

POOL=10.213.240.0/28    # 4 blocks: 2 open, 2 for host-ports = closed
write_policy "$SVC"
HOLD=
test_cleanup() { [ -n "$HOLD" ] && kill "$HOLD" 2>/dev/null; true; }
start_gend || exit 1

mark_of() { jq -r .mark "$T/run/generations/$SVC/$1.json"; }
# Conntrack entries with MARK (decimal) in their mark bits.
entries_with_mark() {
	conntrack -L -o extended 2>/dev/null | grep -o 'mark=[0-9]*' | awk -F= -v m="$1" '$2 == m' | wc -l
}
gone() { [ -z "$(json_field "$SVC" "$1" state)" ]; }

G new "$SVC" > /dev/null 2>&1
check "generation 1 serves (block 1 of 2)" grep -q "generation 1" <<<"$(curl -s -m 3 http://127.0.0.1:$PORT/)"

# A connection held to generation 1, which then is retired with it.
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' >&3
mark1=$(mark_of 1); veth1=$(json_field "$SVC" 1 veth)
for _ in $(seq 20); do [ "$(entries_with_mark "$mark1")" -gt 0 ] && break; sleep 0.1; done
check "the held connection has a conntrack entry with generation 1's mark" \
	[ "$(entries_with_mark "$mark1")" -gt 0 ]

out=$(G new "$SVC" --no-switch 2>&1)
check "generation 2 gets the other block" grep -q "generation 2 ready after" <<<"$out"
addr2=$(json_field "$SVC" 2 address); veth2=$(json_field "$SVC" 2 veth)
G retire "$SVC" 2 --now --wait > /dev/null 2>&1
check "generation 2 retired" gone 2
# Straight away: the pool has no free block but the one generation 2
# gives back, whether or not the kernel has removed its link yet.
out=$(G new "$SVC" --no-switch 2>&1)
check "gen new right after a retire --now gets the block back (pool of 2)" \
	grep -q "generation 3 ready after" <<<"$out"
check "... with generation 2's address" [ "$(json_field "$SVC" 3 address)" = "$addr2" ]
check "... and generation 2's link is gone" link_gone "$veth2"
check "... and its own link is up" ip link show dev "$(json_field "$SVC" 3 veth)"

# Something outside the generation holds its namespace: the link stays
# with it, until gend deletes it 5 s after the retire.
veth3=$(json_field "$SVC" 3 veth)
nsenter --net="/run/netns/gen-$SVC-3" sleep 60 &
HOLD=$!
sleep 0.3
G retire "$SVC" 3 --now --wait > /dev/null 2>&1
check "generation 3 retired" gone 3
sleep 1
check "generation 3's link stays while its namespace is held" ip link show dev "$veth3"
for _ in $(seq 70); do link_gone "$veth3" && break; sleep 0.1; done
check "... and gend deletes it within 7 s" link_gone "$veth3"
check "... and says so, naming the link" \
	grep -q "link $veth3 still there 5.0 s after its generation's namespace was let go" "$T/gend.log"
check "... and the holder is untouched" kill -0 "$HOLD"
kill "$HOLD"; wait "$HOLD" 2>/dev/null; HOLD=

# Generation 1, active and holding a connection, retired at once: its
# conntrack entry is deleted, its link goes by itself.
G retire "$SVC" 1 --force --now --wait > /dev/null 2>&1
check "generation 1 retired" gone 1
for _ in $(seq 20); do [ "$(entries_with_mark "$mark1")" = 0 ] && break; sleep 0.1; done
check "no conntrack entry has generation 1's mark any more" [ "$(entries_with_mark "$mark1")" = 0 ]
check "generation 1's link went with its namespace, within 3 s" link_goes "$veth1"
check "... by itself (gend did not have to delete it)" bash -c "! grep -q 'link $veth1 still there' '$T/gend.log'"
exec 3>&-

out=$(G new "$SVC" 2>&1)
check "both blocks are free again: generation 4 deploys" \
	grep -q "switched: new connections to $SVC go to generation 4" <<<"$out"
G retire "$SVC" 4 --force --wait > /dev/null 2>&1
stop_gend
check "gend's log has no sanitizer report" no_sanitizer_reports
