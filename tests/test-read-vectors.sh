#!/bin/sh
# Exported golden vectors must be readable by plain numpy (Debian /usr/bin/python3), without
# moebench: scripts/read-vectors.py parses them by hand and recomputes what it can. Skipped (77)
# when /usr/bin/python3 or numpy is missing.
# usage: test-read-vectors.sh MOEBENCH SOURCE_DIR WORK_DIR
set -u
mb=$1
src=$2
work=$3
if ! /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
	echo "skipped: /usr/bin/python3 with numpy not available"
	exit 77
fi
rm -rf "$work"
"$mb" vectors export --out "$work" --seed 7 >/dev/null || exit 1
/usr/bin/python3 "$src/scripts/read-vectors.py" --check "$work" >"$work.log" 2>&1
status=$?
tail -3 "$work.log"
[ "$status" -eq 0 ] || { grep -E 'failed|malformed' "$work.log" | head; exit 1; }
printf 'garbage' >"$work/zz-bad.safetensors"
/usr/bin/python3 "$src/scripts/read-vectors.py" "$work" >/dev/null 2>&1
[ $? -eq 2 ] || { echo "read-vectors.py accepted a malformed file"; exit 1; }
echo "numpy read every vector file"
