# sharebus - thin wrapper around CMake. The two commands of the README:
#   make demo   builds and runs the whole flow on an in-process mock cluster
#   make test   builds and runs every test tier (also under ASan + UBSan)
# and `make bench`, the benchmarks (see below).

BUILD      ?= build
BUILD_ASAN ?= build-asan
GENERATOR  := $(shell command -v ninja >/dev/null 2>&1 && echo Ninja || echo "Unix Makefiles")
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CTEST_ARGS ?= --output-on-failure --timeout 600

.PHONY: all deps build build-asan demo test test-unit test-mock test-asan \
        bench format format-check clean

all: build

deps:
	@./scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -G "$(GENERATOR)" -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	cmake -S . -B $(BUILD_ASAN) -G "$(GENERATOR)" -DCMAKE_BUILD_TYPE=Debug -DSB_SANITIZE=ON
	cmake --build $(BUILD_ASAN) -j $(JOBS)

demo: build
	./$(BUILD)/sharebus demo

test: format-check build build-asan
	cd $(BUILD) && ctest $(CTEST_ARGS)
	cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest $(CTEST_ARGS)

test-unit: build
	cd $(BUILD) && ctest $(CTEST_ARGS) -L unit

test-mock: build
	cd $(BUILD) && ctest $(CTEST_ARGS) -L mock

# make bench: every benchmark in bench/; each ends with one JSON line.
# erasure_latency measures on the mock cluster and on a real broker: the
# single-node test broker, started here as the ctest fixture starts it
# (tests/kafka/CMakeLists.txt: this build tree's broker directory, so not
# while `make test` runs its kafka tier) and stopped at the end, also when a
# benchmark fails or make is interrupted. Needs Java 17 and Maven Central
# for the first fetch of Kafka, like the kafka test tier. The other
# benchmarks ignore the broker.
BENCH_BROKER_ENV = SB_BROKER_DIR=$(abspath $(BUILD))/tests/kafka/broker \
                   SB_BIN=$(abspath $(BUILD))/sharebus SB_CERTS=sharebus

bench: build
	@export $(BENCH_BROKER_ENV); \
	tests/kafka/broker.sh start || exit 1; \
	trap 'tests/kafka/broker.sh stop' EXIT; trap 'exit 130' INT TERM; \
	for b in $(BUILD)/bench/*; do \
	    [ -x "$$b" ] && [ -f "$$b" ] || continue; \
	    echo "== $$b"; "$$b" || exit 1; \
	done

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check: deps
	@bad=""; for f in $$(git ls-files '*.c' '*.h'); do \
	    clang-format --dry-run --Werror "$$f" >/dev/null 2>&1 || bad="$$bad $$f"; \
	done; \
	if [ -n "$$bad" ]; then echo "not formatted per .clang-format:$$bad (run: make format)"; exit 1; fi

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)
