#!/bin/sh
# The command-line contract of `moebench verify` and `moebench vectors`: exit status 0 / 1 / 2,
# --help documenting every option, repro lines that reproduce, the regression file passing on the
# reference, the JSON report, golden vectors round trip, malformed input refused without a crash.
# usage: test-verify-cli.sh MOEBENCH SOURCE_DIR WORK_DIR
set -u
mb=$1
src=$2
work=$3
fails=0
rm -rf "$work" && mkdir -p "$work"

. "$(dirname "$0")/cli_expect.sh"

expect 0 "verify --help" "$mb" verify --help
for opt in --backend --op --profile --quick --full --seed --cases --case --vectors --json --help; do
	grep -q -- "$opt" "$work/out" || { echo "FAILED: --help does not document $opt"; fails=$((fails + 1)); }
done
expect 2 "unknown option" "$mb" verify --frobnicate
expect 2 "unknown backend" "$mb" verify --backend no-such-backend
expect 2 "unknown op" "$mb" verify --op transmogrify
expect 2 "unknown profile" "$mb" verify --profile sglang
expect 2 "bad --case" "$mb" verify --case 'route method=Nope'
expect 2 "invalid --case problem" "$mb" verify --case 'route method=Llama4 E=16 K=2'
expect 2 "missing --cases file" "$mb" verify --cases "$work/none.txt"
expect 2 "plugin path that does not exist" "$mb" verify --backend "$work/none.so"
printf 'not an ELF file\n' >"$work/fake.so"
expect 2 "plugin that is not a library" "$mb" verify --backend "$work/fake.so"
# The reference must pass its own bound where outputs round into the subnormal range (the bound
# once counted only relative errors there: error 1.48e-45 against 1.3e-45).
for k in rmsnorm layernorm; do
	expect 0 "reference within the norm bound on subnormal fp32 outputs ($k)" "$mb" verify --backend ref --op norm \
		--case "norm kind=$k rows=5 cols=255 eps=9.99999975e-06 in=f32 w=bf16 out=f32 gen=denormal seed=2"
done
expect 0 "one case on ref" "$mb" verify --backend ref --case 'route method=DeepSeekV3 profile=vllm E=256 K=8 G=8 TG=4 rsf=2.5 bias=f32 T=3 gen=bf16-ties seed=1234'
grep -q '^PASS *route *ref' "$work/out" || { echo "FAILED: no PASS line for the case"; fails=$((fails + 1)); }
expect 0 "regression cases on ref" "$mb" verify --backend ref --cases "$src/tests/cases/regressions.txt" --json "$work/report.json"
grep -q '"summary"' "$work/report.json" || { echo "FAILED: JSON report lacks the summary"; fails=$((fails + 1)); }
ls "$work"/report.json.tmp.* >/dev/null 2>&1 && { echo "FAILED: temporary JSON file left behind"; fails=$((fails + 1)); }
expect 2 "JSON into a missing folder" "$mb" verify --backend ref --op norm --case 'norm kind=rmsnorm rows=1 cols=8 eps=1e-6 in=f32 w=f32 out=f32 gen=normal seed=1' --json "$work/no/dir/r.json"
expect 0 "quick, one op, one profile" "$mb" verify --backend ref --op route --profile hf --quick

expect 0 "vectors export" "$mb" vectors export --out "$work/vec" --op route,norm --profile vllm
expect 0 "verify --vectors on ref" "$mb" verify --backend ref --vectors "$work/vec"
expect 0 "vectors check on ref" "$mb" vectors check "$work/vec" --backend ref
expect 2 "vectors export without --out" "$mb" vectors export
expect 2 "vectors check on a missing folder" "$mb" vectors check "$work/none"
cp -r "$work/vec" "$work/vec-bad"
printf 'garbage' >"$work/vec-bad/route-0000.safetensors"
expect 2 "malformed vector file" "$mb" verify --backend ref --vectors "$work/vec-bad"
grep -q 'route-0000' "$work/out" || { echo "FAILED: the error does not name the file"; fails=$((fails + 1)); }
head -c 100 "$work/vec/norm-0000.safetensors" >"$work/vec-bad/route-0000.safetensors"
expect 2 "truncated vector file" "$mb" verify --backend ref --vectors "$work/vec-bad"

if [ "$fails" -ne 0 ]; then
	echo "$fails check(s) failed"
	exit 1
fi
echo "all checks passed"
