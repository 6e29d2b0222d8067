#!/bin/sh
# Plugins run isolated (verify/isolate.c): each broken plugin of tests/broken_plugin.c misbehaves on
# the norm group "layernorm in=bf16 w=bf16 out=bf16" only. `moebench verify` must turn a segfault,
# an abort in supports(), a hang and an exit(0) into a FAIL line naming backend, op and group, the
# signal or status and a repro, go on with the following groups, print the summary, exit 1, and
# lose nothing through a pipe; a plugin that crashes while loading or exports its entry as data
# must be refused with exit status 2. The reference as a plugin must still pass.
# usage: test-plugin-isolation.sh MOEBENCH BROKEN_PLUGIN_DIR WORK_DIR REF_PLUGIN
set -u
mb=$1
dir=$2
work=$3
ref_plugin=$4
fails=0
rm -rf "$work" && mkdir -p "$work"

fail() {
	echo "FAILED: $*"
	sed 's/^/    /' "$work/out" | head -40
	fails=$((fails + 1))
}

# piped COMMAND...: runs COMMAND with stdout and stderr through a pipe into $work/out and its exit
# status in $rc, the way CI logs see it.
piped() {
	{
		"$@" 2>&1
		echo $? >"$work/rc"
	} | cat >"$work/out"
	rc=$(cat "$work/rc")
}

bad_group='layernorm in=bf16 w=bf16 out=bf16'
# check_fail NAME WHAT...: exit 1, the FAIL line and its reason, the repro, the later groups, the summary.
check_fail() {
	name=$1
	shift
	before=$fails
	[ "$rc" -eq 1 ] || fail "$name: exit $rc, expected 1"
	grep -Eq "^FAIL +norm +broken +$bad_group " "$work/out" || fail "$name: no FAIL line for norm / broken / $bad_group"
	for what in "$@"; do
		grep -qF -- "$what" "$work/out" || fail "$name: the output does not say '$what'"
	done
	grep -qF -- "repro: moebench verify --backend $dir/broken_$name.so --op norm --case 'norm kind=layernorm" "$work/out" ||
		fail "$name: no repro line for the case"
	grep -Eq '^PASS +norm +broken +layernorm in=f32 w=f32 out=f32 ' "$work/out" || fail "$name: the group before did not pass"
	grep -Eq '^PASS +norm +broken +layernorm in=bf16 w=f32 out=f32 ' "$work/out" || fail "$name: the group after did not run"
	grep -Eq '^PASS +norm +broken +rmsnorm in=f32 w=bf16 out=bf16 ' "$work/out" || fail "$name: the last group did not run"
	tail -n 1 "$work/out" | grep -Eq '^[0-9]+ cases in .* groups PASS, 1 FAIL, ' ||
		fail "$name: the output does not end with the summary counting one FAIL"
	grep -q 'Sanitizer' "$work/out" && fail "$name: a sanitizer report in the output"
	[ "$(grep -c '^moebench verify ' "$work/out")" -gt 1 ] && fail "$name: the header is printed more than once"
	[ "$fails" -eq "$before" ] && echo "ok: $name"
}

piped "$mb" verify --backend "$dir/broken_segv.so" --op norm
check_fail segv "plugin crashed running the case: killed by signal 11 (SIGSEGV)" "later cases of the group not run"
cp "$work/out" "$work/segv-jobs-default"
piped "$mb" verify --backend "$dir/broken_segv.so" --op norm --jobs 1
sed 's/cases in [0-9.]* s/cases in T s/' "$work/out" >"$work/segv-jobs-1"
sed -i 's/cases in [0-9.]* s/cases in T s/' "$work/segv-jobs-default"
cmp -s "$work/segv-jobs-1" "$work/segv-jobs-default" || {
	diff "$work/segv-jobs-1" "$work/segv-jobs-default" | head -20
	fail "segv: the report depends on --jobs"
}

piped "$mb" verify --backend "$dir/broken_abort_supports.so" --op norm
check_fail abort_supports "plugin crashed in supports(): killed by signal 6 (SIGABRT)"

start=$(date +%s)
piped timeout 120 "$mb" verify --backend "$dir/broken_hang.so" --op norm --plugin-timeout 2
check_fail hang "plugin hung running the case: no answer within 2 s: killed"
[ $(($(date +%s) - start)) -lt 60 ] || fail "hang: took $(($(date +%s) - start)) s with --plugin-timeout 2"

# exit(0) in a kernel must not read as a passing run (status 0 and no summary before isolation).
piped "$mb" verify --backend "$dir/broken_exit0.so" --op norm
check_fail exit0 "plugin ended the process running the case: exited with status"

piped "$mb" verify --backend "$dir/broken_ctor_segv.so" --op norm
[ "$rc" -eq 2 ] || fail "ctor_segv: exit $rc, expected 2"
grep -qF "while the library was loaded (its constructors or its dependencies)" "$work/out" &&
	grep -qF "killed by signal 11 (SIGSEGV)" "$work/out" && grep -qF "broken_ctor_segv.so" "$work/out" ||
	fail "ctor_segv: the error does not name the plugin, the step and the signal"
[ "$rc" -eq 2 ] && echo "ok: ctor_segv"

piped "$mb" verify --backend "$dir/broken_entry_data.so" --op norm
[ "$rc" -eq 2 ] || fail "entry_data: exit $rc, expected 2"
grep -qF "its moe_backend_entry_v2 is not a function" "$work/out" || fail "entry_data: the error does not say the entry is data"
[ "$rc" -eq 2 ] && echo "ok: entry_data"

piped "$mb" verify --backend "$dir/broken_segv.so" --op norm --plugin-timeout 0
[ "$rc" -eq 2 ] || fail "--plugin-timeout 0: exit $rc, expected 2"
"$mb" verify --help | grep -q -- '--plugin-timeout' || { echo "FAILED: --help does not document --plugin-timeout"; fails=$((fails + 1)); }

# bench: the plugin's norm on Command A+ (layernorm, bf16) misbehaves, on Qwen3 (rmsnorm) it runs.
export XDG_CACHE_HOME="$work/cache"
for name in segv hang exit0 abort_supports; do
	piped timeout 120 "$mb" bench --backend "$dir/broken_$name.so" --op norm --model command-a-plus,qwen3-30b-a3b \
		--no-baselines --no-torch --no-calibrate --min-time 0.001 --reps 7 --budget 2 --plugin-timeout 2 \
		--json "$work/bench-$name.json"
	before=$fails
	[ "$rc" -eq 1 ] || fail "bench $name: exit $rc, expected 1"
	grep -Eq '^command-a-plus/layernorm-bf16/rows:1/.* broken +FAILED: plugin (crashed|hung|ended the process|failed in supports\(\)): (killed by signal|exited with status|no answer within 2 s)' "$work/out" ||
		fail "bench $name: no FAILED row for the Command A+ norm"
	grep -Eq '^qwen3-30b-a3b/rmsnorm-bf16/rows:256/.* broken +[0-9.]+ (ns|us|ms) ' "$work/out" ||
		fail "bench $name: the Qwen3 norm after it was not measured"
	grep -q '"error_message": "plugin ' "$work/bench-$name.json" || fail "bench $name: no error entry in the JSON"
	[ "$fails" -eq "$before" ] && echo "ok: bench $name"
done

# A correct plugin: every group as the built-in reference gives it.
piped "$mb" verify --backend "$ref_plugin" --quick
[ "$rc" -eq 0 ] || fail "ref_plugin: exit $rc, expected 0"
grep -E '^(PASS|FAIL|UNTRUSTED|SKIP) ' "$work/out" | sed -E 's/  ran .*//; s/ +/ /g; s/ ref-plugin / B /' >"$work/plugin-groups"
"$mb" verify --backend ref --quick >"$work/ref-out" 2>&1
grep -E '^(PASS|FAIL|UNTRUSTED|SKIP) ' "$work/ref-out" | sed -E 's/  ran .*//; s/ +/ /g; s/ ref / B /' >"$work/ref-groups"
cmp -s "$work/plugin-groups" "$work/ref-groups" || {
	diff "$work/ref-groups" "$work/plugin-groups" | head -20
	fail "ref_plugin: its groups differ from the built-in reference's"
}
[ "$rc" -eq 0 ] && echo "ok: ref_plugin passes like the built-in reference"

if [ "$fails" -ne 0 ]; then
	echo "$fails check(s) failed"
	exit 1
fi
echo "all checks passed"
