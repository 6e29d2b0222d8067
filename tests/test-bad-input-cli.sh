#!/bin/sh
# Issue 11, a verifier kernel authors can trust blindly: input that makes nothing useful run, or
# cannot be judged, must give a non-zero exit with a message, never exit 0, hang or crash; every
# output-writing failure names the path and the reason.
# usage: test-bad-input-cli.sh MOEBENCH WORK_DIR
set -u
mb=$1
work=$2
fails=0
rm -rf "$work" && mkdir -p "$work"
# cases that cannot get memory must come back as such under the sanitizers too
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}allocator_may_return_null=1"

. "$(dirname "$0")/cli_expect.sh"
says() {
	grep -q -- "$1" "$work/out" || { echo "FAILED: the message lacks '$1':"; sed 's/^/    /' "$work/out" | head -5; fails=$((fails + 1)); }
}

# --cases: what is not a regular file with at least one case is refused (once: 0 cases, exit 0,
# or an endless loop on /dev/zero)
: >"$work/empty.txt"
printf '# only a comment\n\n   \n' >"$work/comments.txt"
expect 2 "--cases on an empty file" "$mb" verify --backend ref --cases "$work/empty.txt"
says "no case"
expect 2 "--cases on comments only" "$mb" verify --backend ref --cases "$work/comments.txt"
says "no case"
expect 2 "--cases on a folder" "$mb" verify --backend ref --cases "$work"
says "regular file"
expect 2 "--cases /dev/stdin from /dev/null" sh -c '"$1" verify --backend ref --cases /dev/stdin </dev/null' sh "$mb"
expect 2 "--cases /dev/zero" timeout 60 "$mb" verify --backend ref --cases /dev/zero
says "/dev/zero"

# seeds: out of range or negative is refused, not clamped or wrapped
expect 2 "verify --seed 2^64" "$mb" verify --backend ref --op norm --seed 18446744073709551616
expect 2 "verify --seed 1e30" "$mb" verify --backend ref --op norm --seed 99999999999999999999999999999
expect 2 "selfcheck --seed -5" "$mb" selfcheck --seed -5
expect 2 "selfcheck --seed 2^64" "$mb" selfcheck --seed 18446744073709551616

# a case that cannot get its memory (T*E = 2^36 floats, 256 GiB) did not run: not exit 0. Capped
# at 8 GiB of address space, so that a machine with that much memory refuses too (not under
# AddressSanitizer, which reserves more; there allocator_may_return_null above applies)
limit=
grep -q __asan_init "$mb" || limit="ulimit -v 8388608;"
expect 3 "verify with a case too large for memory" sh -c "$limit"' exec "$@"' sh "$mb" verify --backend ref \
	--case 'route method=Renormalize profile=vllm E=65536 K=8 T=1048576 seed=1'
says "could not get"

# bench: K for Llama4 (top_k 1 only) is refused, not ignored
expect 2 "bench --method Llama4 --shape K=2" "$mb" bench --method Llama4 --shape K=2 --list
says "Llama4"
expect 0 "bench --method Llama4 --list" "$mb" bench --method Llama4 --list

# compare: a non-finite median is not a verdict, a negative bytes_per_call is refused
bm() { # NAME REAL_TIME TIME_UNIT BYTES_PER_CALL: three repetitions
	printf '{"benchmarks": ['
	for r in 1 2 3; do
		[ "$r" -gt 1 ] && printf ','
		printf '{"name": "%s", "run_name": "%s", "run_type": "iteration", "real_time": %s, "time_unit": "%s", "bytes_per_call": %s}' \
			"$1" "$1" "$2" "$3" "$4"
	done
	printf ']}\n'
}
bm route 100 ns 4096 >"$work/a.json"
bm route 101 ns 4096 >"$work/b.json"
bm route 1e308 s 4096 >"$work/inf.json"
bm route 100 ns -5 >"$work/neg.json"
expect 0 "compare of two finite runs" "$mb" compare "$work/a.json" "$work/b.json"
expect 2 "compare with an infinite median (A)" "$mb" compare "$work/inf.json" "$work/a.json"
says "finite"
expect 2 "compare with an infinite median (B)" "$mb" compare "$work/a.json" "$work/inf.json"
expect 2 "compare with a negative bytes_per_call" "$mb" compare "$work/neg.json" "$work/a.json"
says "bytes_per_call"

# output-writing failures name the path and the reason
one='norm kind=rmsnorm rows=1 cols=8 eps=1e-6 in=f32 w=f32 out=f32 gen=normal seed=1'
expect 2 "verify --json into a missing folder" "$mb" verify --backend ref --op norm --case "$one" --json "$work/no/dir/r.json"
says "$work/no/dir/r.json"
says "No such file or directory"
# a device is written in place (a link to /dev/full here: the old writer renamed its temporary over
# the link, and as root would have replaced /dev/full itself)
ln -s /dev/full "$work/full.json"
expect 2 "verify --json into /dev/full" "$mb" verify --backend ref --op norm --case "$one" --json "$work/full.json"
says "$work/full.json"
says "No space left on device"
[ -L "$work/full.json" ] || { echo "FAILED: the link to /dev/full was replaced"; fails=$((fails + 1)); }
[ -c /dev/full ] || { echo "FAILED: /dev/full is no longer a device"; fails=$((fails + 1)); }
expect 2 "vectors export under a file" "$mb" vectors export --out /dev/full/vec --op norm
says "/dev/full/vec"
if [ "$(id -u)" -ne 0 ]; then
	mkdir -p "$work/ro" && chmod 555 "$work/ro"
	expect 2 "verify --json into a read-only folder" "$mb" verify --backend ref --op norm --case "$one" --json "$work/ro/r.json"
	says "Permission denied"
	expect 2 "vectors export into a read-only folder" "$mb" vectors export --out "$work/ro" --op norm
	says "Permission denied"
	chmod 755 "$work/ro"
else
	echo "skipped: read-only folder checks (running as root, which writes anyway)"
fi

if [ "$fails" -ne 0 ]; then
	echo "$fails check(s) failed"
	exit 1
fi
echo "all checks passed"
