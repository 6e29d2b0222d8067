#!/bin/sh
# The CUDA backend plugins (cuda/) on any machine: they load, export only the entry point, and
# `moebench verify` runs them to a clean end. Without a usable GPU (CI: nvcc, no GPU) every problem
# is declined: SKIP lines (route, norm, expert; quantize is not provided), the reason once per
# child on stderr ("moebench-cuda: ... every problem is declined"), no FAIL, no crash, and exit
# status 0 (nothing failed). With a usable device (sm_90a) the quick catalogue must PASS.
# usage: test-cuda-plugin.sh MOEBENCH CUDA_PLUGIN CUDA_FAST_PLUGIN WORK_DIR
set -u
mb=$1
plugin=$2
fast=$3
work=$4
fails=0
rm -rf "$work" && mkdir -p "$work"
. "$(dirname "$0")/cli_expect.sh"

check() {
	if eval "$2"; then
		echo "ok: $1"
	else
		echo "FAILED: $1"
		sed 's/^/    /' "$work/out" | head -30
		fails=$((fails + 1))
	fi
}

for so in "$plugin" "$fast"; do
	syms=$(nm -D --defined-only "$so" | awk '{print $3}' | tr '\n' ' ')
	echo "$syms" >"$work/out"
	check "$so exports only moe_backend_entry_v2" '[ "$syms" = "moe_backend_entry_v2 " ]'
done

"$mb" verify --backend "$plugin" --op route --quick >"$work/out" 2>&1
rc=$?
if grep -q 'moebench-cuda: .*every problem is declined' "$work/out"; then
	echo "no usable CUDA device here: $(grep -m1 'moebench-cuda:' "$work/out")"
	for so in "$plugin" "$fast"; do
		for op in route norm expert; do
			expect 0 "verify --backend $(basename "$so") --op $op without a GPU: no FAIL" \
				"$mb" verify --backend "$so" --op "$op" --quick
			check "$op: SKIP lines, declined by supports()" \
				'grep -Eq "^SKIP +$op +cuda.*(declined by supports|profile not supported)" "$work/out"'
			check "$op: the reason on stderr" 'grep -q "moebench-cuda: .*every problem is declined (SKIP)" "$work/out"'
			check "$op: no PASS, FAIL or crash" '! grep -Eq "^(PASS|FAIL)|killed by signal|crashed" "$work/out"'
		done
		expect 0 "verify --backend $(basename "$so") --op quantize: not provided" \
			"$mb" verify --backend "$so" --op quantize --quick
		check "quantize: SKIP not provided" 'grep -Eq "^SKIP +quantize +cuda.*not provided" "$work/out"'
	done
else
	echo "a CUDA device is usable here"
	[ "$rc" -eq 0 ] || { echo "FAILED: verify --op route on the GPU: exit $rc"; sed 's/^/    /' "$work/out" | head -40; fails=$((fails + 1)); }
	expect 0 "verify --backend $(basename "$plugin") --op norm on the GPU" "$mb" verify --backend "$plugin" --op norm --quick
	check "norm: PASS lines" 'grep -Eq "^PASS +norm +cuda" "$work/out"'
	expect 0 "verify --backend $(basename "$plugin") --op expert on the GPU" "$mb" verify --backend "$plugin" --op expert --quick
	check "expert: PASS lines" 'grep -Eq "^PASS +expert +cuda" "$work/out"'
fi

[ "$fails" -eq 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all checks passed"
