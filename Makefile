# Thin wrapper over CMake: `make demo` and `make test` do all the set-up.
BUILD      ?= build
BUILD_ASAN ?= build-asan
JOBS       ?= $(shell nproc)
# Tests at once: most of a test's time is spent waiting on its processes
# (the suites keep 2 cores under half busy), so 3 at once on 2 cores.
TEST_JOBS  ?= 3
# Warnings are errors in the developers' builds and CI's (.ci/run runs `make
# test` and `make test-asan`), not in a user's `make install` or `make deb`:
# another compiler may warn where ours did not. WERROR=ON|OFF decides for any
# target; a plain `cmake -S . -B build` leaves it off (CMakeLists.txt).
WERROR     ?= ON
install deb: WERROR = OFF

.PHONY: all bootstrap build build-asan test test-sharded test-asan demo bench chaos install deb clean check-compose

all: build

bootstrap:
	@scripts/bootstrap

build: bootstrap
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBT_WERROR=$(WERROR) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

build-asan: bootstrap
	@cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DBT_SANITIZE=ON -DBT_WERROR=$(WERROR) >/dev/null
	@cmake --build $(BUILD_ASAN) -j $(JOBS)

test: build
	@/usr/bin/python3 tests/schemas/check_schemas.py
	@scripts/run-tests $(BUILD)/test.log $(BUILD)/bin/baton-tests --jobs $(TEST_JOBS)

# The suites that touch the sharded keys again, on 8 shards in one
# redis-server (docs/scaling.md): CI runs it after `make test`.
SHARDED_SUITES ?= +(engine|time|outbox|retention|schedule|faults|query|stats)/*
test-sharded: build
	@BT_TEST_REDIS_SHARDS=8 scripts/run-tests $(BUILD)/test-sharded.log \
	  $(BUILD)/bin/baton-tests --filter '$(SHARDED_SUITES)' --jobs $(TEST_JOBS)

test-asan: build-asan
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	  scripts/run-tests $(BUILD_ASAN)/test.log $(BUILD_ASAN)/bin/baton-tests --jobs $(TEST_JOBS)

# The main job: baton dev with the registration example (two plugins, two
# queues), a batch of registrations run to completion with scripts/carriers
# answering for the carriers, a report and one audit log (scripts/demo).
demo: build
	@BUILD=$(BUILD) scripts/demo

# The benchmark: chain, latency, retry and fanout on a fresh embedded stack,
# one line per workload (bench/README.md). bench/compare runs the peers beside it.
bench: build
	@$(BUILD)/bin/baton bench

# The chaos suite: workers and schedulers killed, paused and restarted, redis
# and the broker taken away, a poison message, for 60 s under a steady load;
# one summary line, exit 1 when an invariant fails. CHAOS_ARGS="--preset a",
# `build/bin/baton-chaos --help` for the flags.
CHAOS_ARGS ?=
chaos: build
	@$(BUILD)/bin/baton-chaos $(CHAOS_ARGS)

# The programs, libbaton, baton.h, baton.pc and the CMake package under
# PREFIX (README.md, "Install"); DESTDIR stages it as packagers do.
PREFIX ?= /usr/local
install: build
	@cmake --install $(BUILD) --prefix $(PREFIX)

# The same as a Debian package, under /usr: $(BUILD)/baton_<version>_<arch>.deb
deb: build
	@cd $(BUILD) && cpack -G DEB

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)

# compose/ checked without Docker: docker-compose config, promtool on the
# Prometheus configuration and alert rules (scripts/check-compose).
check-compose:
	@scripts/check-compose
