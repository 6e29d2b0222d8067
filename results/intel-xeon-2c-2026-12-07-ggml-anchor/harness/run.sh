#!/bin/sh
# Runs the ggml MoE FFN harness and moebench's layer and writes the logs to ../logs.
# Usage: run.sh HARNESS MOEBENCH interleaved [ROUNDS [THREADS [TAG]]]   ggml bf16/q4_0/mxfp4 and
#                                                       moebench's bf16 layer at T=1,16,512, THREADS
#                                                       (default 1) threads on one call, alternating
#        run.sh HARNESS MOEBENCH interleaved-omp1 [ROUNDS]  the same, ggml bf16 against moebench with
#                                                       OMP_NUM_THREADS=1 --budget 0 --no-baselines
#        run.sh HARNESS - sweep                         ggml: bf16, q4_0, mxfp4 x T in
#                                                       {1,4,16,64,256,512} x threads 1, 2, warm+cold
#   HARNESS   the built ggml_moe_ffn (see README.md); MOEBENCH a built tools/moebench
# The machine is shared: the runs raise their session's autogroup and process priority (root only;
# ignored otherwise) so that a benchmark thread gets a core instead of 1/8 of one.
set -eu
H=$1
M=$2
WHAT=$3
ROUNDS=${4:-3}
THR=${5:-1}     # interleaved: threads of one call, for both
TAG=${6:-}      # interleaved: a prefix for the log and output names
D=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$D/logs"
echo -20 > /proc/self/autogroup 2>/dev/null || true
P="nice -n -20"
$P true 2>/dev/null || P=""
case "$WHAT" in
interleaved)
	r=1
	while [ "$r" -le "$ROUNDS" ]; do
		for t in bf16 q4_0 mxfp4; do
			f="$D/logs/${TAG}interleaved-r$r-ggml-$t.txt"
			uptime > "$f"
			$P "$H" --type "$t" --tokens 1,16,512 --threads "$THR" --mode both --reps 7 >> "$f" 2>&1
		done
		f="$D/logs/${TAG}interleaved-r$r-moebench.txt"
		uptime > "$f"
		$P "$M" bench --op layer --model qwen3-30b-a3b --shape T=1,16,512 --backend avx512bf16 \
			--threads "$THR" --out "$D/${TAG}moebench-r$r" >> "$f" 2>&1
		r=$((r + 1))
	done
	;;
interleaved-omp1)
	# moebench's layer with its OpenMP team held to one thread and no time budget (at the commit
	# measured, a pinned caller's layer opens a 2-thread team on the caller's one core: issue 9),
	# the baselines (scalar reference, OpenBLAS) left out, against ggml bf16
	r=1
	while [ "$r" -le "$ROUNDS" ]; do
		f="$D/logs/omp1-r$r-ggml-bf16.txt"
		uptime > "$f"
		$P "$H" --type bf16 --tokens 1,16,512 --threads 1 --mode both --reps 7 >> "$f" 2>&1
		f="$D/logs/omp1-r$r-moebench.txt"
		uptime > "$f"
		OMP_NUM_THREADS=1 $P "$M" bench --op layer --model qwen3-30b-a3b --shape T=1,16,512 \
			--backend avx512bf16 --threads 1 --budget 0 --no-baselines --out "$D/moebench-omp1-r$r" >> "$f" 2>&1
		r=$((r + 1))
	done
	;;
sweep)
	for t in bf16 q4_0 mxfp4; do
		f="$D/logs/sweep-ggml-$t.txt"
		uptime > "$f"
		$P "$H" --type "$t" --tokens 1,4,16,64,256,512 --threads 1,2 --mode both --reps 7 --check >> "$f" 2>&1
	done
	;;
*)
	echo "run.sh: unknown mode '$WHAT' (interleaved, interleaved-omp1, sweep)" >&2
	exit 2
	;;
esac
