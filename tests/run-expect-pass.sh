#!/bin/sh
# Runs `moebench verify` on a backend that must pass: exit status 0 and no FAIL report line (a group
# line "FAIL      <op> ..." or a "    FAIL: ..." detail; the summary's FAIL column is not one) and no
# sanitizer report.
# usage: run-expect-pass.sh COMMAND [ARGS...]
out=$("$@" 2>&1)
status=$?
printf '%s\n' "$out"
if printf '%s\n' "$out" | grep -q 'Sanitizer'; then
	echo "run-expect-pass: a sanitizer report in the output" >&2
	exit 1
fi
if [ "$status" -ne 0 ]; then
	echo "run-expect-pass: expected exit status 0, got $status" >&2
	exit 1
fi
if printf '%s\n' "$out" | grep -Eq '^ *FAIL[: ]'; then
	echo "run-expect-pass: a FAIL line in the output" >&2
	exit 1
fi
