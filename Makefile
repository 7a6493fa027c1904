# Thin wrapper over CMake. The two commands a new user needs:
#   make run    build and start the server (Streamable HTTP on 127.0.0.1:8080, local sandboxes)
#   make test   build and run every test (unit, protocol, e2e, conformance, sanitizers)
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
LISTEN     ?= 127.0.0.1:8080
PREFIX     ?= /usr/local
CMAKE_ARGS ?=

.PHONY: all deps test-deps build build-asan fuzz-build run test test-fast test-asan js-deps fuzz bench install clean

all: build

deps:
	@scripts/deps.sh

test-deps:
	@scripts/deps.sh test

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

build-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DAGENTBOX_SANITIZE=ON $(CMAKE_ARGS) >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS)

# The libFuzzer targets (tests/fuzz/): clang, ASan+UBSan, coverage-instrumented.
fuzz-build: test-deps
	@cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DAGENTBOX_FUZZ=ON -DAGENTBOX_SANITIZE=ON \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS) >/dev/null
	@cmake --build $(FUZZ_BUILD) -j$(JOBS) --target fuzz_targets

run: build
	$(BUILD)/agentbox serve --http $(LISTEN) $(ARGS)

js-deps:
	@scripts/js-deps.sh

# The full suite: first under ASan+UBSan (tests labelled noasan, e.g. timing-heavy load
# runs, are skipped there), then each fuzz target briefly (its seed corpus, then
# AGENTBOX_FUZZ_SECONDS, default 30 s), then everything on the release build; the last lines
# printed are ctest's summary of the release run. A failure in any run fails `make test`.
test: test-deps build build-asan fuzz-build js-deps
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(ASAN_BUILD) --output-on-failure -LE noasan ; asan_rc=$$?; \
	  if [ $$asan_rc -ne 0 ]; then echo "make test: the ASan+UBSan run FAILED (see above)"; fi; \
	  ctest --test-dir $(FUZZ_BUILD) --output-on-failure -L '^fuzz$$' ; fuzz_rc=$$?; \
	  if [ $$fuzz_rc -ne 0 ]; then echo "make test: a fuzz target FAILED (see above)"; fi; \
	  echo "make test: the release run (the full suite) follows; its summary is the last output"; \
	  ctest --test-dir $(BUILD) --output-on-failure ; rc=$$?; \
	  if [ $$asan_rc -ne 0 ] || [ $$fuzz_rc -ne 0 ]; then \
	    echo "make test: FAILED: asan=$$asan_rc fuzz=$$fuzz_rc release=$$rc (details above)"; exit 1; fi; \
	  exit $$rc

test-fast: build js-deps
	ctest --test-dir $(BUILD) --output-on-failure $(CTEST_ARGS)

# Every fuzz target for AGENTBOX_FUZZ_LONG_SECONDS (default 1200 s) each; new corpus entries
# and crash artifacts land in build-fuzz/fuzz-work/<target>/, a summary in its runs.log.
fuzz: fuzz-build
	ctest --test-dir $(FUZZ_BUILD) -L fuzz-long --output-on-failure

bench: build js-deps
	bench/run.sh

install: build
	DESTDIR=$(DESTDIR) cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
