# Thin wrapper over CMake: `make demo` and `make test` do all the set-up.
BUILD      ?= build
BUILD_ASAN ?= build-asan
JOBS       ?= $(shell nproc)

.PHONY: all bootstrap build build-asan test test-asan demo bench clean

all: build

bootstrap:
	@scripts/bootstrap

build: bootstrap
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

build-asan: bootstrap
	@cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DBT_SANITIZE=ON >/dev/null
	@cmake --build $(BUILD_ASAN) -j $(JOBS)

test: build
	@$(BUILD)/bin/baton-tests --jobs 2

test-asan: build-asan
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  $(BUILD_ASAN)/bin/baton-tests --jobs 2

# For now the demo shows the dev stack: baton dev in the background, its Kafka
# topics (kcat) and Redis (redis-cli), then a clean stop. The example
# workflows join it once the worker runs them.
demo: build
	@set -e; home=$$(mktemp -d); export BATON_HOME="$$home"; \
	$(BUILD)/bin/baton dev & pid=$$!; \
	trap 'kill -INT $$pid 2>/dev/null; wait $$pid; rm -rf "$$home"' EXIT; \
	for i in $$(seq 100); do [ -f "$$home/dev.env" ] && break; sleep 0.1; done; \
	[ -f "$$home/dev.env" ] || { echo "demo: baton dev did not start" >&2; exit 1; }; \
	. "$$home/dev.env"; sleep 0.2; \
	echo; echo "\$$ kcat -b $$BATON_BROKERS -L | grep 'topic \"'"; \
	kcat -b "$$BATON_BROKERS" -L | grep 'topic "'; \
	echo; echo "\$$ redis-cli -p $${BATON_REDIS##*:} PING"; \
	redis-cli -p "$${BATON_REDIS##*:}" PING; \
	echo; echo "demo: stopping baton dev (what Ctrl-C does)"

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)
