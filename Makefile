# Thin wrapper over CMake. The two commands a new user needs:
#   make run    build and start the server (Streamable HTTP on 127.0.0.1:8080, local sandboxes)
#   make test   build and run every test (unit, protocol, e2e, conformance, sanitizers)
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
LISTEN     ?= 127.0.0.1:8080
PREFIX     ?= /usr/local
CMAKE_ARGS ?=

.PHONY: all deps test-deps build build-asan run test test-fast test-asan js-deps fuzz bench install clean

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

run: build
	$(BUILD)/agentbox serve --http $(LISTEN) $(ARGS)

js-deps:
	@scripts/js-deps.sh

# The full suite: first under ASan+UBSan (tests labelled noasan, e.g. timing-heavy load
# runs, are skipped there), then on the release build; the last lines printed are ctest's
# summary of the release run. A failure in either run fails `make test`.
test: test-deps build build-asan js-deps
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(ASAN_BUILD) --output-on-failure -LE noasan ; asan_rc=$$?; \
	  ctest --test-dir $(BUILD) --output-on-failure ; rc=$$?; \
	  if [ $$asan_rc -ne 0 ]; then echo "make test: the ASan+UBSan run failed (see above)"; exit 1; fi; \
	  exit $$rc

test-fast: build js-deps
	ctest --test-dir $(BUILD) --output-on-failure $(CTEST_ARGS)

fuzz: test-deps
	@cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DAGENTBOX_FUZZ=ON -DAGENTBOX_SANITIZE=ON >/dev/null
	@cmake --build build-fuzz -j$(JOBS)
	ctest --test-dir build-fuzz -L fuzz-long --output-on-failure

bench: build js-deps
	bench/run.sh

install: build
	DESTDIR=$(DESTDIR) cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
