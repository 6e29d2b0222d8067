# Sourced by the CLI test scripts: expect STATUS DESCRIPTION COMMAND... runs COMMAND with its output
# in $work/out, prints "ok: DESCRIPTION" or "FAILED: ..." with the output, and counts failures in
# $fails (both set by the sourcing script).
expect() {
	want=$1 what=$2
	shift 2
	"$@" >"$work/out" 2>&1
	got=$?
	if [ "$got" -ne "$want" ]; then
		echo "FAILED: $what: exit $got, expected $want"
		sed 's/^/    /' "$work/out" | head -20
		fails=$((fails + 1))
	else
		echo "ok: $what"
	fi
}
