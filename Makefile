# Thin wrapper over CMake so that `make`, `make test`, `make bench` work from the root.
BUILD      ?= build
ASAN_BUILD ?= build-asan
BUILD_TYPE ?= RelWithDebInfo
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE      ?= cmake

.PHONY: all configure run test test-fast test-asan valgrind bench install clean help

all: configure
	$(CMAKE) --build $(BUILD) -j $(JOBS)

configure:
	@test -f $(BUILD)/CMakeCache.txt || $(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

# The main job on its built-in default.
run: all
	$(BUILD)/tools/moebench

# The whole test suite: the normal build, then the same tests under ASan+UBSan.
test: test-fast test-asan

test-fast: all
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan:
	@test -f $(ASAN_BUILD)/CMakeCache.txt || $(CMAKE) -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DMOE_SANITIZE=ON
	$(CMAKE) --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS)

# Every Check unit-test executable (ctest label "unit") under valgrind memcheck, one after the
# other (slow: ~12 minutes on 2 cores, plus test_layer_threads, which alone runs well over
# 10 minutes under memcheck: every weight format x act_quant x 6 token counts x 1/2/3 threads). The script-driven tests (CLI, mutants, SDK, numpy
# cross-check) run other programs and are left out. valgrind cannot execute AVX-512: those tests
# skip their AVX-512 variants under it and say so.
VALGRIND_FLAGS ?= -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
valgrind: all
	@cd $(BUILD) && fail=0; \
	for t in $$(ctest -N -L unit | sed -n 's/^ *Test *#[0-9]*: //p'); do \
		echo "== valgrind $$t"; CK_FORK=no valgrind $(VALGRIND_FLAGS) tests/$$t > /dev/null || { echo "FAIL $$t"; fail=1; }; \
	done; exit $$fail

# The default benchmark suite on this machine (a few minutes): results/<machine>-<date>/ gets
# bench.json (Google Benchmark schema), bench.csv, context.json, table.txt, calibration.json,
# perf-stat.txt and the plots; the table is printed last. BENCH_ARGS adds `moebench bench` options.
BENCH_ARGS ?=
bench: all
	@set -e; moebench=$(BUILD)/tools/moebench; \
	dir=results/$$($$moebench bench --machine-name)-$$(date +%Y-%m-%d); mkdir -p $$dir; \
	$$moebench calibrate --json $$dir/calibration.json; \
	rc=0; $$moebench bench --out $$dir $(BENCH_ARGS) > /dev/null || rc=$$?; \
	scripts/perf-stat --moebench $$moebench --out $$dir/perf-stat.txt > /dev/null || true; \
	/usr/bin/python3 scripts/plot-results $$dir || echo "make bench: no plots (see above)"; \
	cat $$dir/table.txt; echo; echo "make bench: results in $$dir"; exit $$rc

install: all
	$(CMAKE) --install $(BUILD) --prefix $(or $(PREFIX),/usr/local)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)

help:
	@echo "make [all] | run | test | test-fast | test-asan | valgrind | bench [BENCH_ARGS=...] | install [PREFIX=...] | clean"
