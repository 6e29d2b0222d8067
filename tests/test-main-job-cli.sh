#!/usr/bin/env bash
# CLI contract of the front end added for "a tool people pick up in five minutes": did-you-mean
# for commands and options, the --version fields, info --json, and the main job (`moebench run`,
# also `moebench` alone) exiting 0 with its summary. Usage: test-main-job-cli.sh PATH/TO/moebench WORKDIR
set -u
bin=$1 work=$2
mkdir -p "$work"
fails=0
. "$(dirname "$0")/cli_expect.sh"
has() { # has DESCRIPTION PATTERN: the last expect's output matches PATTERN (grep -E)
	if grep -qE -- "$2" "$work/out"; then echo "ok: $1"; else
		echo "FAILED: $1: output lacks /$2/"; sed 's/^/    /' "$work/out" | head -20; fails=$((fails + 1)); fi
}

expect 2 "unknown command benh" "$bin" benh
has "benh -> bench" "unknown command 'benh'; did you mean 'bench'\?"
expect 2 "unknown command verfy" "$bin" verfy
has "verfy -> verify" "did you mean 'verify'\?"
expect 2 "unknown command far from every name" "$bin" frobnicate
if grep -q "did you mean" "$work/out"; then echo "FAILED: frobnicate got a suggestion"; fails=$((fails + 1)); else echo "ok: no suggestion for frobnicate"; fi
expect 2 "bench --threds" "$bin" bench --threds 2 --list
has "--threds -> --threads" "unknown or incomplete option '--threds'; did you mean '--threads'\?"
expect 2 "verify --qick" "$bin" verify --qick
has "--qick -> --quick" "did you mean '--quick'\?"
expect 2 "bench: unknown model" "$bin" bench --model nosuchmodel --list
if grep -qE "bench: (moebench )?bench:|moebench bench: bench:" "$work/out"; then
	echo "FAILED: doubled prefix"; sed 's/^/    /' "$work/out"; fails=$((fails + 1)); else echo "ok: one prefix"; fi

expect 0 "--version" "$bin" --version
has "version line" "^moebench [0-9]+\.[0-9]+\.[0-9]+$"
has "git revision" "^git revision: [0-9a-f]{7,}(-dirty)?$|^git revision: unknown$"
has "build type" "^build type: [A-Za-z]+"
has "compiler" "^compiler: (gcc|clang) "
has "ISAs compiled" "^ISAs compiled: scalar( [a-z0-9]+)*$"

expect 0 "info --json" "$bin" info --json
if python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["version"] and d["backends"] and d["isa"]["dispatch"]' "$work/out"; then
	echo "ok: info --json parses and has version, backends, isa"; else echo "FAILED: info --json"; head -5 "$work/out"; fails=$((fails + 1)); fi

for cmd in run selfcheck info verify vectors bench calibrate compare model; do
	expect 0 "$cmd --help" "$bin" $cmd --help
	has "$cmd --help documents the exit status" "[Ee]xit status|[Ee]xit [0-9]"
done

# The main job: the default command, with its summary; a short verify-only run and the whole job.
expect 0 "run --no-bench" timeout 300 "$bin" run --no-bench
has "verify counts" "^verify: [0-9]+ PASS, 0 FAIL, [0-9]+ UNTRUSTED, [0-9]+ SKIP"
has "verdict" "^PASS: every check passed"
# The whole job times real model shapes: under a sanitizer build (make test-asan sets ASAN_OPTIONS)
# that is many minutes of instrumented benchmarking and checks nothing the plain build does not;
# the sanitizers still run the verify step above.
if [ -n "${ASAN_OPTIONS:-}" ]; then
	echo "skip moebench alone: the whole job under a sanitizer build (its verify step ran above)"
else
	expect 0 "moebench alone: the main job" timeout 600 "$bin"
	has "summary header" "^== summary =="
	has "verify line" "^verify: [0-9]+ PASS, 0 FAIL"
	has "speed table" "^  route .* T=1 "
	has "layer row" "^  layer bf16 T=64"
	has "model rows" "^  model tiny decode"
	has "verdict" "^PASS: every check passed in [0-9.]+ s"
fi
echo "$fails failure(s)"
[ "$fails" -eq 0 ]
