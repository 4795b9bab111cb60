# bctx - build, run, test and benchmark.
#
#   make          build bin/bctx-host, bin/bctx and every plugin .so
#   make run      install what is missing, build, run the host on configs/bank.json
#   make test     install what is missing, build, run the whole suite, then
#                 run it again built with AddressSanitizer + UBSan
#   make bench    durable end-to-end throughput and latency, beside the disk's
#                 and SQLite's ceilings measured in the same run
#   make bench-peers  bctx beside PostgreSQL 15 and Redis on one durable-append
#                 workload (installs them and their client libraries if missing)
#   make soak     the bank under load and chaos for SOAK_SECONDS (default 300),
#                 then its invariants checked (SOAK_SEED=N repeats a run)
#   make deps     install the Debian packages we need, only when missing
#   make fuzz     build the libFuzzer targets (clang) under build/fuzz and run
#                 each for FUZZ_SECONDS (default 60) over a copy of its corpus
#
# O=DIR puts every built file under DIR (default: the source tree);
# SAN=1 builds with -fsanitize=address,undefined; FUZZ=1 (what `make fuzz`
# uses, with CC=clang) adds libFuzzer's coverage instrumentation.

O       ?= .
SAN     ?=
CC      ?= cc
PKGS    := libzmq jansson sqlite3 libmicrohttpd
DEBS    := libzmq3-dev libjansson-dev libjsmn-dev libcmocka-dev libsqlite3-dev pkg-config curl \
           libmicrohttpd-dev python3-prometheus-client
# What make test alone needs: the browser test_console drives (make run
# does not install it).
TEST_DEBS := chromium
FUZZ_DEBS := clang libclang-rt-14-dev
# What make bench-peers alone needs: the peers and their client libraries.
PEER_DEBS := postgresql-15 libpq-dev redis-server libhiredis-dev
FUZZ    ?=
FUZZ_O  := build/fuzz
FUZZ_SECONDS ?= 60

OPT     := -O2
SANFLAGS :=
ifeq ($(SAN),1)
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined
OPT     := -O1 -fno-omit-frame-pointer $(SANFLAGS)
endif
ifeq ($(FUZZ),1)
SANFLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
OPT     := -O1 -fno-omit-frame-pointer $(SANFLAGS)
endif
CFLAGS  := -std=c11 -Wall -Wextra -Werror -g $(OPT) -D_GNU_SOURCE -pthread \
           -Iplugin-api -Ihost $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDFLAGS := $(SANFLAGS) -pthread
LIBS    := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -ldl
PLUGIN_CFLAGS := $(CFLAGS) -fPIC -fvisibility=hidden
PLUGIN_LDFLAGS := $(LDFLAGS) -shared $(shell pkg-config --libs jansson 2>/dev/null)
ifeq ($(FUZZ),1)
# Plugins get no coverage counters: libFuzzer cannot forget the counters
# of a library that is dlclose'd, and a reload unloads the old version.
comma := ,
PLUGIN_CFLAGS := $(subst fuzzer-no-link$(comma),,$(PLUGIN_CFLAGS))
PLUGIN_LDFLAGS := $(subst fuzzer-no-link$(comma),,$(PLUGIN_LDFLAGS))
endif

HOST_MODULES := util errors route pidfile runner config config_context config_paths endpoint log host_api loader store readside datadir bus protocol security \
                worker worker_link dedup decided cache feed consumer projection sender lanes reactor reactor_lanes bridge \
                loop registry api peers commands core reload watch reconfig ops link poison supervise hold runs frames histogram figures relay gather context_main http console metrics server
HOST_OBJS    := $(HOST_MODULES:%=$(O)/obj/host/%.o) $(O)/obj/host/console_assets.o
# The web console's files, embedded by console_assets.S (.incbin).
CONSOLE_FILES := host/console/index.html host/console/console.css host/console/console.js
HEADERS      := $(wildcard host/*.h) plugin-api/bctx/plugin.h plugin-api/bctx/testing.h

PLUGINS      := $(O)/plugins/accounts/accounts.so $(O)/plugins/transfers/transfers.so \
                $(O)/plugins/accounts/accounts_v2.so $(O)/plugins/transfers/transfers_v2.so
TEST_PLUGINS := $(patsubst tests/plugins/%.c,$(O)/tests/plugins/%.so,$(wildcard tests/plugins/*.c))
# Test plugins that also come in a second version (tests/plugins/NAME.c
# built with -DPLUGIN_V2 as NAME_v2.so).
TEST_PLUGINS += $(patsubst %,$(O)/tests/plugins/%_v2.so,$(basename $(notdir $(shell grep -l PLUGIN_V2 tests/plugins/*.c 2>/dev/null))))
UNIT_TESTS   := $(patsubst tests/unit/%.c,$(O)/tests/unit/%,$(wildcard tests/unit/test_*.c))
INTEG_TESTS  := $(patsubst tests/integration/%.c,$(O)/tests/integration/%,$(wildcard tests/integration/test_*.c))
HARNESS_OBJ  := $(O)/obj/tests/integration/harness.o
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,$(O)/tests/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))

.PHONY: all run test check bench bench-peers soak deps clean fuzz fuzz-deps fuzz-build profile
# Keep every intermediate file (objects of the test harness among them).
.SECONDARY:
.DEFAULT_GOAL := all

all: $(O)/bin/bctx-host $(O)/bin/bctx $(O)/bin/bctx-bench $(O)/bin/bctx-fill $(O)/bin/bctx-ceiling \
     $(PLUGINS)

$(O)/obj/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

# The console's files go into the object as they are: no generator, no xxd.
$(O)/obj/host/console_assets.o: host/console_assets.S $(CONSOLE_FILES)
	@mkdir -p $(dir $@)
	$(CC) -c -o $@ $<

$(O)/bin/bctx-host: $(O)/obj/host/main.o $(HOST_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -rdynamic -o $@ $^ $(LIBS)

$(O)/bin/bctx: $(O)/obj/host/cli.o $(O)/obj/host/cli_ops.o $(O)/obj/host/cli_show.o \
              $(O)/obj/host/cli_live.o $(O)/obj/host/cli_new.o $(O)/obj/host/protocol.o $(O)/obj/host/util.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(O)/bin/bctx-bench: $(O)/obj/bench/bench.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) -lm

$(O)/bin/bctx-fill: $(O)/obj/bench/fill.o $(HOST_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# The disk's and SQLite's ceilings, measured by make bench beside the host.
$(O)/bin/bctx-ceiling: $(O)/obj/bench/ceiling.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs sqlite3 2>/dev/null)

# The peers' clients and bctx's check for make bench-peers, built only by
# it: make and make test need neither libpq nor hiredis.
PEER_BINS := $(O)/bin/bctx-peer-pg $(O)/bin/bctx-peer-redis $(O)/bin/bctx-peer-check

$(O)/bin/bctx-peer-pg: bench/peer_pg.c bench/peer.c bench/peer.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(shell pkg-config --cflags libpq) $(LDFLAGS) -o $@ bench/peer_pg.c bench/peer.c \
	    $(shell pkg-config --libs libpq)

$(O)/bin/bctx-peer-redis: bench/peer_redis.c bench/peer.c bench/peer.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(shell pkg-config --cflags hiredis) $(LDFLAGS) -o $@ bench/peer_redis.c bench/peer.c \
	    $(shell pkg-config --libs hiredis)

$(O)/bin/bctx-peer-check: $(O)/obj/bench/peer_bctx.o $(HOST_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# The soak and chaos runner (make soak, tests/integration/test_soak).
$(O)/bin/bctx-soak: $(O)/obj/tests/soak/soak.o $(HARNESS_OBJ) $(HOST_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) -lcmocka

$(O)/plugins/%.so: plugins/%.c plugin-api/bctx/plugin.h
	@mkdir -p $(dir $@)
	$(CC) $(PLUGIN_CFLAGS) -o $@ $< $(PLUGIN_LDFLAGS)

# A second version of the accounts plugin, for reload tests and benches.
$(O)/plugins/accounts/accounts_v2.so: plugins/accounts/accounts.c plugin-api/bctx/plugin.h
	@mkdir -p $(dir $@)
	$(CC) $(PLUGIN_CFLAGS) -DACCOUNTS_VERSION='"2.0.0"' -o $@ $< $(PLUGIN_LDFLAGS)

# The transfers plugin with its balances projection at version 2 (rebuild tests).
$(O)/plugins/transfers/transfers_v2.so: plugins/transfers/transfers.c plugin-api/bctx/plugin.h
	@mkdir -p $(dir $@)
	$(CC) $(PLUGIN_CFLAGS) -DBALANCES_VERSION=2 -o $@ $< $(PLUGIN_LDFLAGS)

# A second version of a test plugin: the same source built with -DPLUGIN_V2.
$(O)/tests/plugins/%_v2.so: tests/plugins/%.c plugin-api/bctx/plugin.h
	@mkdir -p $(dir $@)
	$(CC) $(PLUGIN_CFLAGS) -DPLUGIN_V2=1 -o $@ $< $(PLUGIN_LDFLAGS)

$(O)/tests/plugins/%.so: tests/plugins/%.c plugin-api/bctx/plugin.h
	@mkdir -p $(dir $@)
	$(CC) $(PLUGIN_CFLAGS) -o $@ $< $(PLUGIN_LDFLAGS)

# A file that is not a shared object, for the loader's tests.
$(O)/tests/plugins/not_a_plugin.so:
	@mkdir -p $(dir $@)
	printf 'this is not an ELF file\n' > $@

$(O)/tests/unit/%: tests/unit/%.c $(HOST_OBJS) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -rdynamic -o $@ $< $(HOST_OBJS) $(LIBS) -lcmocka

$(O)/tests/integration/%: tests/integration/%.c $(HARNESS_OBJ) tests/integration/harness.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(HARNESS_OBJ) $(LIBS) -lcmocka

# A libFuzzer target: the host's objects built with FUZZ=1, linked with
# libFuzzer's main.  fuzz_request runs the host, whose loader's dlopen it
# wraps so that only the configured plugins can be loaded.
$(O)/tests/fuzz/fuzz_request: FUZZ_LINK := -Wl,--wrap=dlopen
$(O)/tests/fuzz/%: tests/fuzz/%.c $(HOST_OBJS) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer,address,undefined -rdynamic $(FUZZ_LINK) -o $@ $< \
	    $(HOST_OBJS) $(LIBS)

check: all $(O)/bin/bctx-soak $(TEST_PLUGINS) $(O)/tests/plugins/not_a_plugin.so $(UNIT_TESTS) $(INTEG_TESTS)
	@O=$(O) SAN=$(SAN) sh tests/run.sh

deps:
	@sh scripts/deps.sh $(DEBS)

fuzz-deps:
	@sh scripts/deps.sh $(DEBS)

# What `make fuzz` builds, under O=build/fuzz with FUZZ=1 CC=clang.
fuzz-build: $(FUZZ_TARGETS) $(O)/bin/bctx-host $(O)/plugins/accounts/accounts.so \
            $(O)/plugins/transfers/transfers.so

fuzz: fuzz-deps
	@$(MAKE) --no-print-directory O=$(FUZZ_O) FUZZ=1 CC=clang fuzz-build
	@O=$(FUZZ_O) FUZZ_SECONDS=$(FUZZ_SECONDS) sh tests/fuzz/run.sh

# make run CONFIG=path: another config (host.api, host.publish: its ports).
CONFIG ?= configs/bank.json
run: deps
	@$(MAKE) --no-print-directory all
	./bin/bctx-host $(CONFIG)

test: deps
	@sh scripts/deps.sh $(TEST_DEBS)
	@$(MAKE) --no-print-directory check
	@$(MAKE) --no-print-directory O=build/asan SAN=1 check

bench: deps
	@$(MAKE) --no-print-directory all $(O)/tests/plugins/fault.so
	@sh bench/run.sh

# Host instructions per durable Deposit, under callgrind (bench/profile.sh).
profile: deps
	@sh scripts/deps.sh valgrind
	@$(MAKE) --no-print-directory all
	@sh bench/profile.sh

bench-peers: deps
	@sh scripts/deps.sh $(PEER_DEBS)
	@$(MAKE) --no-print-directory all $(PEER_BINS)
	@O=$(O) sh bench/peers.sh

SOAK_SECONDS ?= 300
soak: all $(O)/bin/bctx-soak
	BCTX_BUILD="$(abspath $(O))" $(O)/bin/bctx-soak --seconds $(SOAK_SECONDS) \
	    $(if $(SOAK_SEED),--seed $(SOAK_SEED))

clean:
	rm -rf bin obj build plugins/*/*.so tests/plugins/*.so data

# make install PREFIX=/usr/local DESTDIR=: the host, the CLI, the plugin
# headers (bctx/plugin.h, bctx/testing.h) and bctx-plugin.pc, so that
# `cc $(pkg-config --cflags --libs bctx-plugin) -shared -fPIC` builds a
# plugin outside the tree.  make uninstall removes what it installed.
PREFIX  ?= /usr/local
DESTDIR ?=
INSTALL_FILES := bin/bctx-host bin/bctx include/bctx/plugin.h include/bctx/testing.h \
                 lib/pkgconfig/bctx-plugin.pc

.PHONY: install uninstall
install: $(O)/bin/bctx-host $(O)/bin/bctx
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/include/bctx \
	    $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 755 $(O)/bin/bctx-host $(O)/bin/bctx $(DESTDIR)$(PREFIX)/bin/
	install -m 644 plugin-api/bctx/plugin.h plugin-api/bctx/testing.h \
	    $(DESTDIR)$(PREFIX)/include/bctx/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@ABI@|'"$$(sed -n 's/^#define BCTX_ABI_VERSION //p' plugin-api/bctx/plugin.h)"'|' \
	    scripts/bctx-plugin.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/bctx-plugin.pc

uninstall:
	rm -f $(INSTALL_FILES:%=$(DESTDIR)$(PREFIX)/%)
	-rmdir $(DESTDIR)$(PREFIX)/include/bctx 2>/dev/null
