#!/usr/bin/env bash
# CLI contract of `moebench`: help and version exit 0, bad usage exits 2 with a message on stderr,
# the default job (selfcheck) passes. Usage: test-cli.sh PATH/TO/moebench
set -u
bin=$1
fail=0
check() { # check NAME EXPECTED_RC PATTERN -- command...
	local name=$1 want=$2 pat=$3
	shift 4
	local out rc
	out=$("$@" 2>&1)
	rc=$?
	if [ "$rc" -ne "$want" ]; then
		echo "FAIL $name: exit $rc, expected $want"; echo "$out" | tail -5; fail=1; return
	fi
	if ! grep -qE -- "$pat" <<<"$out"; then
		echo "FAIL $name: output lacks /$pat/"; echo "$out" | tail -5; fail=1; return
	fi
	echo "ok   $name"
}
check help 0 'usage: moebench' -- "$bin" --help
check version 0 '^moebench [0-9]+\.[0-9]+\.[0-9]+' -- "$bin" --version
check unknown-command 2 "unknown command 'frobnicate'" -- "$bin" frobnicate
check selfcheck-help 0 'usage: moebench selfcheck' -- "$bin" selfcheck --help
check selfcheck-bad-seed 2 "--seed needs an integer" -- "$bin" selfcheck --seed x12
check selfcheck-extra-arg 2 "unexpected argument" -- "$bin" selfcheck extra
check selfcheck 0 ' 0 failed' -- "$bin" selfcheck
check default-job 0 'selfcheck of the scalar reference' -- "$bin"
check info 0 'built-in backends' -- "$bin" info
exit $fail
