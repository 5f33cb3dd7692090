# gen — zero-downtime generations of a service. See README.md.
#   make          build build/gend and build/gen
#   make check    every test (unit, sanitizers, root integration, man lint)
#   make demo     a live deployment on this machine, cleaned up afterwards
#   make deps     install missing Debian packages (apt-get)
#   make install  PREFIX (default /usr/local) and DESTDIR; make uninstall alike
#   make check-vm boots Debian 12 under qemu and runs everything there (root)

CC      ?= cc
PREFIX  ?= /usr/local
PKGS    := libnl-3.0 libnl-route-3.0 libnl-nf-3.0 libcap libseccomp libsystemd inih jansson
OPT     ?= -O2 -g
CFLAGS  ?=
FLAGS    = $(OPT) -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE $(CFLAGS)
# Installed paths. Nothing is compiled in: gend finds its seccomp profiles
# in ../share/gen/profiles and a generation's pid 1, gen-init, beside itself
# or in ../libexec/gen from its own executable (gend -P overrides the
# profiles; the tests pass policy/profiles of this tree), so any PREFIX works.
SBINDIR       = $(PREFIX)/sbin
DATADIR       = $(PREFIX)/share
MANDIR        = $(DATADIR)/man
UNITDIR       = $(PREFIX)/lib/systemd/system
TMPFILESDIR   = $(PREFIX)/lib/tmpfiles.d
COMPLETIONDIR = $(DATADIR)/bash-completion/completions
LIBEXECDIR    = $(PREFIX)/libexec/gen

# Debian packages: build, test, and run time.
DEBS := build-essential pkg-config libnl-3-dev libnl-route-3-dev libnl-nf-3-dev libcap-dev \
        libseccomp-dev libsystemd-dev libinih-dev libjansson-dev libcmocka-dev \
        iptables iproute2 conntrack mandoc curl jq \
        nginx-light php-cli nodejs python3

B    ?= build
SAN  := build-san
SANFLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

POLICY_SRC  := policy/policy.c policy/parse.c policy/validate.c
SANDBOX_SRC := sandbox/util.c sandbox/naming.c sandbox/cgroup.c sandbox/netns.c \
               sandbox/veth.c sandbox/spawn.c sandbox/confine.c sandbox/limits.c \
               sandbox/dns.c sandbox/userns.c sandbox/view.c sandbox/init.c
GEND_SRC    := supervisor/gend.c supervisor/log.c supervisor/fsm.c supervisor/rules.c \
               supervisor/fwd.c supervisor/conntrack.c supervisor/probe.c \
               supervisor/service.c supervisor/generation.c supervisor/job.c supervisor/drain.c supervisor/record.c \
               supervisor/adopt.c supervisor/ports.c supervisor/control.c \
               supervisor/idle.c supervisor/quiet.c supervisor/cut.c supervisor/procwatch.c supervisor/teardown.c \
               $(POLICY_SRC) $(SANDBOX_SRC)
GEN_SRC     := supervisor/gen.c policy/parse.c sandbox/util.c
HEADERS     := $(wildcard supervisor/*.h sandbox/*.h policy/*.h)
UNIT_TESTS  := test_policy test_naming test_rules test_fsm test_cgroup test_limits test_confine \
               test_dns test_view test_drain
TOOLS       := sample load ctlraw killat ctlflood taskpool udpclient
BENCH_TOOLS := firstnew ctltime swload
# make bench: the alternatives it measures gen against, and its plots.
BENCH_DEBS  := nginx wrk gnuplot-nox

all: $(B)/gend $(B)/gen $(B)/gen-init

$(B)/gend: $(GEND_SRC) $(HEADERS) | $(B)
	$(CC) $(FLAGS) $(shell pkg-config --cflags $(PKGS)) -o $@ $(GEND_SRC) \
		$(shell pkg-config --libs $(PKGS))

# Static and without sanitizers: it runs inside every generation.
$(B)/gen-init: sandbox/init.c sandbox/init_main.c sandbox/init.h | $(B)
	$(CC) -O2 -g -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -static -o $@ \
		sandbox/init.c sandbox/init_main.c

$(B)/gen: $(GEN_SRC) $(HEADERS) | $(B)
	$(CC) $(FLAGS) -o $@ $(GEN_SRC) $(shell pkg-config --libs jansson)

# Unit tests: pure code only, no root.
UNIT_DEPS_test_policy := policy/policy.c policy/parse.c policy/validate.c sandbox/confine.c \
                         sandbox/dns.c sandbox/userns.c sandbox/util.c
UNIT_DEPS_test_naming := sandbox/naming.c sandbox/util.c
UNIT_DEPS_test_rules  := supervisor/rules.c sandbox/naming.c policy/parse.c sandbox/util.c
UNIT_DEPS_test_fsm    := supervisor/fsm.c
UNIT_DEPS_test_drain  := supervisor/quiet.c supervisor/conntrack.c sandbox/naming.c policy/policy.c policy/parse.c sandbox/util.c
UNIT_DEPS_test_cgroup := sandbox/cgroup.c sandbox/util.c
UNIT_DEPS_test_confine := sandbox/confine.c sandbox/dns.c sandbox/userns.c sandbox/util.c
UNIT_DEPS_test_limits := sandbox/limits.c policy/policy.c policy/parse.c sandbox/util.c
UNIT_DEPS_test_dns    := sandbox/dns.c sandbox/util.c
UNIT_DEPS_test_view   := sandbox/view.c sandbox/init.c sandbox/userns.c sandbox/util.c
.SECONDEXPANSION:
$(B)/test_%: tests/unit/test_%.c $$(UNIT_DEPS_test_$$*) $(HEADERS) | $(B)
	$(CC) $(FLAGS) $(shell pkg-config --cflags $(PKGS)) -o $@ $< $(UNIT_DEPS_test_$*) \
		$(shell pkg-config --libs $(PKGS) cmocka)

$(B)/%: tests/tools/%.c | $(B)
	$(CC) $(FLAGS) -o $@ $< -pthread

$(B):
	mkdir -p $@

tools: $(addprefix $(B)/,$(TOOLS))
units: $(addprefix $(B)/,$(UNIT_TESTS))

deps:
	@missing=$$(for p in $(DEBS); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "make deps: installing missing Debian packages:" $$missing; \
		[ "$$(id -u)" = 0 ] || { echo "make deps: run as root to install them"; exit 1; }; \
		norc=; [ -e /usr/sbin/policy-rc.d ] || { \
			printf '#!/bin/sh\n# make deps (gen): no service starts while it installs\nexit 101\n' \
				> /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && norc=1 && \
			trap 'rm -f /usr/sbin/policy-rc.d' EXIT; }; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		rc=$$?; [ -z "$$norc" ] || rm -f /usr/sbin/policy-rc.d; \
		[ $$rc != 0 ] || case " $$missing " in *" nginx"*) \
			! command -v systemctl > /dev/null || systemctl disable -q nginx 2>/dev/null; \
			echo "make deps: nginx is for the tests and make bench, which run their own; its service was neither started nor enabled";; \
		esac; \
		exit $$rc; \
	fi

# Everything, twice built: plain, and with ASan+UBSan for the tests.
check: deps
	$(MAKE) all units tools
	$(MAKE) B=$(SAN) OPT="$(SANFLAGS)" all units tools
	tests/run $(B) $(SAN)

demo: deps all tools
	tests/demo.sh $(B)

# make bench (root): gen against what users do today, in one run, about
# five and a half minutes; the table, a Markdown report and plots go to
# tests/bench/results/.
bench-deps:
	@$(MAKE) --no-print-directory deps DEBS="$(DEBS) $(BENCH_DEBS)"

bench: bench-deps
	$(MAKE) all tools $(addprefix $(B)/,$(BENCH_TOOLS))
	tests/bench/run.sh $(B)

# Every path under $(DESTDIR)$(PREFIX); the unit's ExecStart= names
# $(SBINDIR) (without DESTDIR, where it will run).
INSTALLED := $(SBINDIR)/gend $(SBINDIR)/gen $(LIBEXECDIR)/gen-init \
             $(DATADIR)/gen/profiles/default.profile $(DATADIR)/gen/profiles/strict.profile \
             $(MANDIR)/man8/gen.8 $(MANDIR)/man8/gend.8 $(MANDIR)/man5/gen.policy.5 \
             $(UNITDIR)/gend.service $(TMPFILESDIR)/gen.conf $(COMPLETIONDIR)/gen

install: all
	install -D -m 0755 $(B)/gend $(DESTDIR)$(SBINDIR)/gend
	install -D -m 0755 $(B)/gen $(DESTDIR)$(SBINDIR)/gen
	install -D -m 0755 $(B)/gen-init $(DESTDIR)$(LIBEXECDIR)/gen-init
	install -D -m 0644 policy/profiles/default.profile $(DESTDIR)$(DATADIR)/gen/profiles/default.profile
	install -D -m 0644 policy/profiles/strict.profile $(DESTDIR)$(DATADIR)/gen/profiles/strict.profile
	install -D -m 0644 man/gen.8 $(DESTDIR)$(MANDIR)/man8/gen.8
	install -D -m 0644 man/gend.8 $(DESTDIR)$(MANDIR)/man8/gend.8
	install -D -m 0644 man/gen.policy.5 $(DESTDIR)$(MANDIR)/man5/gen.policy.5
	sed 's|@SBINDIR@|$(SBINDIR)|g' supervisor/gend.service > $(B)/gend.service
	install -D -m 0644 $(B)/gend.service $(DESTDIR)$(UNITDIR)/gend.service
	install -D -m 0644 supervisor/gen.tmpfiles $(DESTDIR)$(TMPFILESDIR)/gen.conf
	install -D -m 0644 supervisor/gen.bash-completion $(DESTDIR)$(COMPLETIONDIR)/gen

# What install put there, with the same PREFIX and DESTDIR. Directories:
# gen's own (share/gen); under a DESTDIR also those the files leave empty.
uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	-rmdir $(DESTDIR)$(DATADIR)/gen/profiles $(DESTDIR)$(DATADIR)/gen $(DESTDIR)$(LIBEXECDIR) 2>/dev/null
	@if [ -n "$(DESTDIR)" ]; then for f in $(INSTALLED); do d=$${f%/*}; \
		while [ -n "$$d" ]; do rmdir "$(DESTDIR)$$d" 2>/dev/null || [ ! -e "$(DESTDIR)$$d" ] || break; \
		d=$${d%/*}; done; done; fi

# The real target: Debian 12 booted under qemu (systemd, pure cgroup v2),
# gend installed and started by its unit, then make check inside. Root.
VM_TOOLS := qemu-system-x86 debootstrap e2fsprogs
check-vm:
	@missing=$$(for p in $(VM_TOOLS); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "make check-vm: installing" $$missing; \
		[ "$$(id -u)" = 0 ] || { echo "make check-vm: run as root"; exit 1; }; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends $$missing >/dev/null; \
	fi
	VM_DEBS="$(DEBS)" tests/vm/run.sh

# Is check-vm's image in the cache? (.ci/run's time estimate)
vm-cached:
	@VM_DEBS="$(DEBS)" tests/vm/image.sh --cached

clean:
	rm -rf $(B) $(SAN)

.PHONY: all deps check check-vm vm-cached demo bench bench-deps install uninstall clean tools units
