# Res-Edge: hub, agent and CLI on one shared static library.
# `make` builds bin/; `make test` builds with ASan+UBSan and runs every test.

PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
VERSION := 0.1.0

# Debian 12 packages this project builds against (`make deps` installs them).
BUILD_DEPS := build-essential pkg-config libuv1-dev libmbedtls-dev libcjson-dev \
              libsqlite3-dev libgit2-dev libcurl4-openssl-dev libhttp-parser-dev \
              libyaml-dev zlib1g-dev
TEST_DEPS  := git curl openssl ca-certificates procps psmisc faketime jq python3 \
              systemd lintian man-db sqlite3 cppcheck sslscan valgrind bc \
              python3-yaml python3-jsonschema

PKGS    := libuv libcjson sqlite3 libgit2 libcurl yaml-0.1 zlib
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# mbedTLS 2.28 ships no .pc file; http-parser neither.
LIBS    := $(PKG_LIBS) -lmbedtls -lmbedx509 -lmbedcrypto -lhttp_parser -lpthread -lm

ifeq ($(SANITIZE),1)
BUILD   ?= build/san
SANFLAGS := -fsanitize=address,undefined,float-cast-overflow -fno-omit-frame-pointer \
            -fno-sanitize-recover=undefined
OPT     := -O1 -g
else
BUILD   ?= build/rel
SANFLAGS :=
OPT     := -O2 -g
endif
BIN     ?= $(if $(filter 1,$(SANITIZE)),$(BUILD)/bin,bin)

# DEVELOPER=1 makes warnings errors (git's DEVELOPER=1); `make test` and
# `make lint` pass it, so CI builds are strict, while a plain release `make`
# only warns and does not break on a newer compiler's new warning. The build
# is also clean with clang: `make CC=clang DEVELOPER=1 BUILD=build/clang
# BIN=build/clang/bin all unit-tests sim` (and with SANITIZE=1); not part of
# `make test`, for time. Flags are not tracked: `make clean` before switching.
WARN    := -Wall -Wextra -Wshadow -Wno-unused-parameter -Wformat=2 -Wvla
ifeq ($(DEVELOPER),1)
WARN    += -Werror
endif
CFLAGS  ?= $(OPT)
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE -DRE_VERSION='"$(VERSION)"' $(WARN) $(CFLAGS) \
              $(SANFLAGS) $(PKG_CFLAGS) -Ishared -MMD -MP
ALL_LDFLAGS := $(SANFLAGS) $(LDFLAGS)

SHARED_SRC := $(wildcard shared/*.c)
# hub/ holds the process (main, config, state); its layers are folders (README).
HUB_SRC    := $(filter-out hub/main.c hub/ctl/%,$(wildcard hub/*.c hub/*/*.c))
AGENT_SRC  := $(filter-out agent/main.c,$(wildcard agent/*.c))
CTL_SRC    := $(wildcard hub/ctl/*.c)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)

obj = $(patsubst %.c,$(BUILD)/%.o,$(1))

LIBSHARED := $(BUILD)/libresedge.a
LIBHUB    := $(BUILD)/libhub.a
LIBAGENT  := $(BUILD)/libagent.a
PROGS     := $(BIN)/resedge-hub $(BIN)/resedge-agent $(BIN)/resedgectl
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

.PHONY: all deps test check unit-tests demo lint clean install bench
all: $(PROGS)

# V=1 shows the compiler command lines.
Q := $(if $(filter 1,$(V)),,@)
$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) $(EXTRA_INC) -c -o $@ $<

# Hub modules name another layer's header by folder: "inventory/db.h".
$(BUILD)/hub/%.o: EXTRA_INC := -Ihub
# Unit tests reach into hub and agent modules; shared/ never may.
$(BUILD)/tests/unit/%.o: EXTRA_INC := -Ihub -Iagent -Itests/unit

$(LIBSHARED): $(call obj,$(SHARED_SRC))
	@rm -f $@; ar rcs $@ $^
$(LIBHUB): $(call obj,$(HUB_SRC))
	@rm -f $@; ar rcs $@ $^ $(if $^,,)
$(LIBAGENT): $(call obj,$(AGENT_SRC))
	@rm -f $@; ar rcs $@ $^

$(BIN)/resedge-hub: $(call obj,hub/main.c) $(LIBHUB) $(LIBSHARED)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)
$(BIN)/resedge-agent: $(call obj,agent/main.c) $(LIBAGENT) $(LIBSHARED)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)
$(BIN)/resedgectl: $(call obj,$(CTL_SRC)) $(LIBSHARED)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

# Unit tests link the real modules; hub and agent archives come first.
$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(BUILD)/tests/unit/testlib.o $(LIBHUB) $(LIBAGENT) $(LIBSHARED)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

unit-tests: $(UNIT_BINS)

# Asks dpkg per package and calls apt-get only for what is not installed
# ("dpkg -s" also succeeds for a removed package whose config files remain).
deps:
	@missing=""; for p in $(BUILD_DEPS) $(TEST_DEPS); do \
	  [ "$$(dpkg-query -W -f='$${db:Status-Status}' $$p 2>/dev/null)" = installed ] || \
	    missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	else echo "all build and test dependencies present"; fi

# The README's test command: installs what is missing, builds with sanitizers, runs all.
# VALGRIND=1: the daemons run under memcheck instead, so build without ASan.
test: deps
	$(MAKE) DEVELOPER=1 $(if $(filter 1,$(VALGRIND)),,SANITIZE=1) all unit-tests sim
	RE_BIN=$(CURDIR)/$(if $(filter 1,$(VALGRIND)),bin,build/san/bin) \
	RE_UNIT=$(CURDIR)/$(if $(filter 1,$(VALGRIND)),build/rel,build/san)/tests bash tests/run.sh
check: test

demo: deps
	$(MAKE) all
	bash tests/demo.sh

# Builds first, strictly: the layer check reads the hub's objects (nm).
lint:
	$(MAKE) DEVELOPER=1 all
	@LINT_OBJECTS=$(BUILD) bash tests/lint.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(PROGS) $(DESTDIR)$(PREFIX)/bin/

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)

# ---- packaging ----
# `make deb`: resedge-hub and resedge-agent .deb packages in build/deb/ (from
# $(BIN), so `make SANITIZE=1 deb` packages the sanitized build).
# `make install-units`: systemd units, man pages, bash completion (when
# packaging/completion/resedgectl exists) and /etc/resedge/{agent.conf,hub.env}
# (kept if present) under DESTDIR; units go to /lib/systemd/system when
# PREFIX=/usr, else PREFIX/lib/systemd/system, with ExecStart= in PREFIX/bin.
UNITDIR ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)
MANDIR  ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
.PHONY: deb install-units
deb: $(PROGS)
	bash packaging/build-deb.sh --bin $(BIN) --out build/deb --version $(VERSION)

install-units:
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(SYSCONFDIR)/resedge
	for u in resedge-hub resedge-agent; do \
	  sed 's|/usr/bin/|$(PREFIX)/bin/|g' packaging/systemd/$$u.service >$(DESTDIR)$(UNITDIR)/$$u.service && \
	  chmod 0644 $(DESTDIR)$(UNITDIR)/$$u.service || exit 1; done
	install -m 0644 packaging/man/resedge-hub.1 packaging/man/resedge-agent.1 \
	  packaging/man/resedgectl.1 $(DESTDIR)$(MANDIR)/man1/
	test -e $(DESTDIR)$(SYSCONFDIR)/resedge/agent.conf || \
	  install -m 0644 packaging/etc/agent.conf $(DESTDIR)$(SYSCONFDIR)/resedge/agent.conf
	test -e $(DESTDIR)$(SYSCONFDIR)/resedge/hub.env || \
	  install -m 0644 packaging/etc/hub.env $(DESTDIR)$(SYSCONFDIR)/resedge/hub.env
	if [ -f packaging/completion/resedgectl ]; then \
	  install -D -m 0644 packaging/completion/resedgectl \
	    $(DESTDIR)$(PREFIX)/share/bash-completion/completions/resedgectl; fi

# ---- hardening ----
# `make fuzz [FUZZ_SECONDS=60]`: the libFuzzer drivers in tests/fuzz/ (clang,
# ASan, UBSan), each on a copy of its seed corpus; prints executions per
# second and total runs; a crash input is copied to tests/fuzz/regressions/
# (replayed by `make test`) and fails the target.
# `make audit`: sslscan against a running hub (TLS 1.2 only, ECDHE + AEAD
# only, no renegotiation, no compression).
# `make test VALGRIND=1`: the e2e harness runs the hub and the agent under
# valgrind memcheck (RE_WRAP; resedgectl too with RE_WRAP_CTL="$RE_WRAP",
# see tests/e2e/lib.sh); a memcheck error or definite leak fails the script.
FUZZ_SECONDS ?= 60
FUZZ_DEPS := clang libclang-rt-14-dev libfuzzer-14-dev
.PHONY: fuzz audit
fuzz:
	@missing=""; for p in $(FUZZ_DEPS); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; fi
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash tests/fuzz/run.sh

audit: all
	RE_BIN=$(CURDIR)/$(BIN) bash tests/audit.sh

ifeq ($(VALGRIND),1)
export RE_WRAP := valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
                   --show-leak-kinds=definite --suppressions=$(CURDIR)/tests/valgrind.supp
endif

# ---- bench ----
# `make bench [BENCH_SCALE=small]`: every performance figure in one table
# (tests/bench/run.sh; results in bench/last.json, the previous run beside).
# $(BIN)/resedge-sim is the fleet simulator it drives (tests/sim/);
# $(BUILD)/bench/crypto_ceiling times the handshake's public-key operations.
BENCH_SCALE ?=
SIM_SRC := $(wildcard tests/sim/*.c)
$(BUILD)/tests/sim/%.o: EXTRA_INC := -Ihub -Iagent
$(BIN)/resedge-sim: $(call obj,$(SIM_SRC)) $(LIBHUB) $(LIBAGENT) $(LIBSHARED)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)
$(BUILD)/bench/crypto_ceiling: $(call obj,tests/bench/crypto_ceiling.c)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)
# $(BUILD)/bench/curl_floor: a bare libcurl mTLS client, the agent RSS baseline.
$(BUILD)/bench/curl_floor: $(call obj,tests/bench/curl_floor.c)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ -lcurl
.PHONY: sim
sim: $(BIN)/resedge-sim
bench: $(PROGS) $(BIN)/resedge-sim $(BUILD)/bench/crypto_ceiling $(BUILD)/bench/curl_floor
	RE_BIN=$(CURDIR)/$(BIN) CEILING=$(CURDIR)/$(BUILD)/bench/crypto_ceiling \
	  CURL_FLOOR=$(CURDIR)/$(BUILD)/bench/curl_floor \
	  BENCH_SCALE=$(BENCH_SCALE) bash tests/bench/run.sh
