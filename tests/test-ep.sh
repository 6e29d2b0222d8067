#!/bin/sh
# `moebench ep` under mpirun (expert parallelism, ep/): usage: test-ep.sh MOEBENCH WORKDIR MODE
#   bitwise R   both placements on R ranks, and a placement file: the output is bitwise equal to
#               moe_layer__ref (and, for the dispatched backend, to its single-process layer)
#   shapes      a shared expert (DeepSeek-V3 form), chunked dispatch, the dispatched backend
#   faults      bad placement files (file:line), ranks that disagree on the configuration, the
#               deliberately reversed combine (must FAIL the check), a rank that dies, a rank that hangs
#   nompi       built without MPI: a clear message and exit 2
# Tests run as root in CI: --allow-run-as-root; more ranks than cores: --oversubscribe.
moebench=$1 work=$2 mode=$3 arg=$4
fails=0
mkdir -p "$work" || exit 1
. "$(dirname "$0")/cli_expect.sh"
export OMPI_MCA_rmaps_base_oversubscribe=1
mpirun="mpirun --allow-run-as-root --oversubscribe"
small="--model qwen3-30b-a3b --tokens 37 --hidden 64 --inter 32 --experts 16"
tiny="--model mixtral-8x7b --tokens 20 --hidden 64 --inter 32 --experts 4"

# expect_text STATUS DESCRIPTION TEXT COMMAND...: expect, and TEXT must be in the output
expect_text() {
	want=$1 what=$2 text=$3
	shift 3
	before=$fails
	expect "$want" "$what" "$@"
	if [ "$fails" -eq "$before" ] && ! grep -qF -- "$text" "$work/out"; then
		echo "FAILED: $what: the output lacks \"$text\""
		sed 's/^/    /' "$work/out" | head -20
		fails=$((fails + 1))
	fi
}

case $mode in
bitwise)
	for p in contiguous round-robin; do
		expect_text 0 "R=$arg $p: bitwise equal to moe_layer__ref" "check: bitwise equal to moe_layer__ref" \
			timeout 60 $mpirun -n "$arg" "$moebench" ep $small --placement $p --timeout 50
	done
	# every expert on the last rank but expert 0: ranks without experts still route and combine
	{ echo "# expert rank"; e=0; while [ $e -lt 16 ]; do echo "$e $(( e == 0 ? 0 : $arg - 1 ))"; e=$((e + 1)); done; } > "$work/lopsided.txt"
	expect_text 0 "R=$arg placement file: bitwise equal" "check: bitwise equal to moe_layer__ref" \
		timeout 60 $mpirun -n "$arg" "$moebench" ep $small --placement "$work/lopsided.txt" --timeout 50
	;;
shapes)
	expect_text 0 "DeepSeek-V3 form (grouped, biased, shared expert) on 3 ranks, round-robin, 3 chunks" \
		"check: bitwise equal to moe_layer__ref" timeout 60 $mpirun -n 3 "$moebench" ep --model deepseek-v3 \
		--tokens 29 --hidden 256 --inter 128 --experts 32 --placement round-robin --chunks 3 --timeout 50
	expect_text 0 "dispatched backend on 4 ranks, 2 chunks: equal to its single-process layer" \
		"check: bitwise equal to the single-process layer" timeout 60 $mpirun -n 4 "$moebench" ep $small \
		--backend dispatched --chunks 2 --timeout 50
	expect_text 0 "--bench prints the phases and a csv line" "csv: qwen3-30b-a3b,37,64,32,16,8,2" \
		timeout 60 $mpirun -n 2 "$moebench" ep $small --bench --reps 3 --timeout 50
	expect_text 0 "--model-only prints the projection" "deepseek-v3" "$moebench" ep --model-only
	;;
faults)
	printf '0 0\n1 1\n# comment\n2 0\n2 1\n' > "$work/twice.txt"
	expect_text 2 "placement file: an expert twice" "twice.txt:5: expert 2 placed twice (first at line 4" \
		timeout 60 $mpirun -n 2 "$moebench" ep $tiny --placement "$work/twice.txt" --timeout 50
	printf '0 0\n1 1\n2 7\n3 0\n' > "$work/rank.txt"
	expect_text 2 "placement file: a rank out of range" "rank.txt:3: expert 2: expected a rank in 0..1" \
		timeout 60 $mpirun -n 2 "$moebench" ep $tiny --placement "$work/rank.txt" --timeout 50
	printf '0 0\n1 1\n2 1\n' > "$work/short.txt"
	expect_text 2 "placement file: an expert missing" "short.txt:3: end of file, but expert 3 has no rank" \
		timeout 60 $mpirun -n 2 "$moebench" ep $tiny --placement "$work/short.txt" --timeout 50
	printf '0 0\n1 1 extra\n' > "$work/extra.txt"
	expect_text 2 "placement file: trailing text" "extra.txt:2: unexpected text" \
		timeout 60 $mpirun -n 2 "$moebench" ep $tiny --placement "$work/extra.txt" --timeout 50
	expect_text 2 "placement file: missing" "cannot open the placement file" \
		timeout 60 $mpirun -n 2 "$moebench" ep $tiny --placement "$work/none.txt" --timeout 50
	expect_text 2 "ranks disagree on --tokens: named, no hang" "rank 1: configuration differs from rank 0's: tokens: 32 here, 20 on rank 0" \
		timeout 60 $mpirun -n 1 "$moebench" ep $tiny --timeout 50 : -n 1 "$moebench" ep $tiny --tokens 32 --timeout 50
	expect_text 1 "reversed combine order on rank 1: the bitwise check fails" "check: MISMATCH against moe_layer__ref" \
		timeout 60 $mpirun -n 3 "$moebench" ep $small --inject-fault combine-order:1 --timeout 50
	timeout 60 $mpirun -n 3 "$moebench" ep $tiny --inject-fault die:1 --timeout 50 > "$work/out" 2>&1
	rc=$?
	if [ $rc -eq 0 ] || [ $rc -eq 124 ]; then
		echo "FAILED: a rank that dies: exit $rc (0 or a hang)"; fails=$((fails + 1))
	else
		echo "ok: a rank that dies ends the job (mpirun exit $rc)"
	fi
	timeout 60 $mpirun -n 3 "$moebench" ep $tiny --inject-fault hang:2 --timeout 3 > "$work/out" 2>&1
	rc=$?
	if [ $rc -eq 0 ] || [ $rc -eq 124 ] || ! grep -q "timed out after 3 s" "$work/out"; then
		echo "FAILED: a rank that hangs: exit $rc, or no watchdog message"; sed 's/^/    /' "$work/out" | head; fails=$((fails + 1))
	else
		echo "ok: a rank that hangs: the watchdog ends every rank (mpirun exit $rc)"
	fi
	;;
nompi)
	expect_text 2 "built without MPI: a clear message" "built without MPI" "$moebench" ep
	;;
*)
	echo "test-ep.sh: unknown mode $mode"; exit 2 ;;
esac
[ "$fails" -eq 0 ] && echo "test-ep.sh $mode $arg: all passed" || echo "test-ep.sh $mode $arg: $fails failed"
[ "$fails" -eq 0 ]
