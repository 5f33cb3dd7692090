# gen — zero-downtime generations of a service. See README.md.
#   make          build build/gend and build/gen
#   make check    every test (unit, sanitizers, root integration, man lint)
#   make demo     a live deployment on this machine, cleaned up afterwards
#   make deps     install missing Debian packages (apt-get)

CC      ?= cc
PREFIX  ?= /usr/local
PKGS    := libnl-3.0 libnl-route-3.0 libnl-nf-3.0 libcap libseccomp libsystemd inih jansson
OPT     ?= -O2 -g
CFLAGS  ?=
FLAGS    = $(OPT) -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE \
           -DGEN_PROFILE_DIR='"$(PROFILE_DIR)"' $(CFLAGS)
# Where gend reads the seccomp profiles (gend -P overrides; the tests pass
# policy/profiles of this tree). make install puts them there.
PROFILE_DIR ?= $(PREFIX)/share/gen/profiles

# Debian packages: build, test, and run time.
DEBS := build-essential pkg-config libnl-3-dev libnl-route-3-dev libnl-nf-3-dev libcap-dev \
        libseccomp-dev libsystemd-dev libinih-dev libjansson-dev libcmocka-dev \
        iptables iproute2 conntrack mandoc curl jq

B    ?= build
SAN  := build-san
SANFLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

POLICY_SRC  := policy/policy.c policy/parse.c policy/validate.c
SANDBOX_SRC := sandbox/util.c sandbox/naming.c sandbox/cgroup.c sandbox/netns.c \
               sandbox/veth.c sandbox/spawn.c sandbox/confine.c sandbox/limits.c
GEND_SRC    := supervisor/gend.c supervisor/log.c supervisor/fsm.c supervisor/rules.c \
               supervisor/fwd.c supervisor/conntrack.c supervisor/probe.c \
               supervisor/generation.c supervisor/job.c supervisor/drain.c supervisor/record.c \
               supervisor/adopt.c supervisor/ports.c supervisor/control.c \
               supervisor/idle.c supervisor/quiet.c supervisor/cut.c \
               $(POLICY_SRC) $(SANDBOX_SRC)
GEN_SRC     := supervisor/gen.c policy/parse.c sandbox/util.c
HEADERS     := $(wildcard supervisor/*.h sandbox/*.h policy/*.h)
UNIT_TESTS  := test_policy test_naming test_rules test_fsm test_cgroup test_limits test_confine \
               test_drain
TOOLS       := sample load ctlraw taskpool udpclient

all: $(B)/gend $(B)/gen

$(B)/gend: $(GEND_SRC) $(HEADERS) | $(B)
	$(CC) $(FLAGS) $(shell pkg-config --cflags $(PKGS)) -o $@ $(GEND_SRC) \
		$(shell pkg-config --libs $(PKGS))

$(B)/gen: $(GEN_SRC) $(HEADERS) | $(B)
	$(CC) $(FLAGS) -o $@ $(GEN_SRC) $(shell pkg-config --libs jansson)

# Unit tests: pure code only, no root.
UNIT_DEPS_test_policy := policy/policy.c policy/parse.c policy/validate.c sandbox/confine.c \
                         sandbox/util.c
UNIT_DEPS_test_naming := sandbox/naming.c sandbox/util.c
UNIT_DEPS_test_rules  := supervisor/rules.c sandbox/naming.c policy/parse.c sandbox/util.c
UNIT_DEPS_test_fsm    := supervisor/fsm.c
UNIT_DEPS_test_drain  := supervisor/quiet.c policy/policy.c policy/parse.c sandbox/util.c
UNIT_DEPS_test_cgroup := sandbox/cgroup.c sandbox/util.c
UNIT_DEPS_test_confine := sandbox/confine.c sandbox/util.c
UNIT_DEPS_test_limits := sandbox/limits.c policy/policy.c policy/parse.c sandbox/util.c
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
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# Everything, twice built: plain, and with ASan+UBSan for the tests.
check: deps
	$(MAKE) all units tools
	$(MAKE) B=$(SAN) OPT="$(SANFLAGS)" all units tools
	tests/run $(B) $(SAN)

demo: deps all tools
	tests/demo.sh $(B)

bench: deps all tools
	tests/bench/run.sh $(B)

install: all
	install -D -m 0755 $(B)/gend $(DESTDIR)$(PREFIX)/sbin/gend
	install -D -m 0755 $(B)/gen $(DESTDIR)$(PREFIX)/sbin/gen
	install -D -m 0644 policy/profiles/default.profile $(DESTDIR)$(PROFILE_DIR)/default.profile
	install -D -m 0644 policy/profiles/strict.profile $(DESTDIR)$(PROFILE_DIR)/strict.profile
	install -D -m 0644 man/gen.8 $(DESTDIR)$(PREFIX)/share/man/man8/gen.8
	install -D -m 0644 man/gend.8 $(DESTDIR)$(PREFIX)/share/man/man8/gend.8
	install -D -m 0644 man/gen.policy.5 $(DESTDIR)$(PREFIX)/share/man/man5/gen.policy.5

clean:
	rm -rf $(B) $(SAN)

.PHONY: all deps check demo bench install clean tools units
