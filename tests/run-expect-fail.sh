#!/bin/sh
# Runs `moebench verify` on a backend that must be caught: exit status exactly 1 ("some case
# FAILed"; 2 would be a usage error and above 128 a crash, neither of which proves a mutant caught)
# and a FAIL report line for the given op ("FAIL      route      <backend> <group> ..."), with no
# sanitizer report (ASan exits 1 by default, which must not pass for a caught mutant).
# With --reason TEXT, the output must also contain TEXT (e.g. the reason a thread mutant fails).
# usage: run-expect-fail.sh [--reason TEXT] OP COMMAND [ARGS...]
reason=
if [ "$1" = --reason ]; then
	reason=$2
	shift 2
fi
op=$1
shift
out=$("$@" 2>&1)
status=$?
printf '%s\n' "$out"
if printf '%s\n' "$out" | grep -q 'Sanitizer'; then
	echo "run-expect-fail: a sanitizer report in the output" >&2
	exit 1
fi
if [ "$status" -ne 1 ]; then
	echo "run-expect-fail: expected exit status 1 (FAIL), got $status" >&2
	exit 1
fi
if ! printf '%s\n' "$out" | grep -Eq "^FAIL +$op "; then
	echo "run-expect-fail: no FAIL line for op '$op' in the output" >&2
	exit 1
fi
if [ -n "$reason" ] && ! printf '%s\n' "$out" | grep -qF "$reason"; then
	echo "run-expect-fail: caught, but not for the expected reason ('$reason' missing)" >&2
	exit 1
fi
echo "run-expect-fail: caught (exit 1, FAIL on $op)"
