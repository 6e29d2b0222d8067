#!/bin/bash
# One run of the CUDA backend on a GPU machine, every output under OUTDIR: the machine (nvcc,
# cmake, nvidia-smi, torch), the project built in Release (build-cuda, or BUNDLE: a prebuilt
# moebench + plugins directory when the machine lacks the build dependencies), verify of both
# plugins (route quick and full, norm), the kernel-only router benchmark of every method, a
# `moebench bench` of DeepSeekV3 routing at T=16384 E=256 next to the CPU backends, and torch's GPU
# routing when torch is there. Each command is echoed into OUTDIR/commands.txt as it runs.
# usage: cuda/device-run.sh OUTDIR [BUNDLE]
set -u
out=$1
bundle=${2:-}
mkdir -p "$out"
cd "$(dirname "$0")/.."
cmds="$out/commands.txt"
: >"$cmds"
run() { # run LOG COMMAND...: echo the command, run it with its output in OUTDIR/LOG
	local log=$1
	shift
	echo "$* > $log" >>"$cmds"
	local t0=$(date +%s%N)
	"$@" >"$out/$log" 2>&1
	local rc=$?
	echo "  # exit $rc, $(( ($(date +%s%N) - t0) / 1000000 )) ms" >>"$cmds"
	return $rc
}
{
	echo "== which"; which nvcc cmake gcc python3
	echo "== nvcc"; nvcc --version
	echo "== cmake"; cmake --version
	echo "== nvidia-smi"; nvidia-smi
	nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem,power.limit --format=csv
	echo "== cpu"; lscpu | head -20
	echo "== torch"; python3 -c 'import torch; print(torch.__version__, torch.cuda.is_available())'
	echo "== deps"; for m in openblas hwloc papi jansson check; do printf '%s: ' $m; pkg-config --modversion $m; done
} >"$out/machine.txt" 2>&1
export PATH=$PATH:/usr/local/cuda/bin

if [ -z "$bundle" ]; then
	run configure.log cmake -S . -B build-cuda -DCMAKE_BUILD_TYPE=Release || { echo "configure failed"; tail -5 "$out/configure.log"; exit 1; }
	run build.log cmake --build build-cuda -j16 || { echo "build failed"; tail -30 "$out/build.log"; exit 1; }
	mb=build-cuda/tools/moebench
	so=build-cuda/cuda/libmoebench_cuda.so
	fast=build-cuda/cuda/libmoebench_cuda_fast.so
	rb=build-cuda/cuda/moebench-cuda-route-bench
else
	export LD_LIBRARY_PATH=$bundle/lib
	mb=$bundle/moebench
	so=$bundle/libmoebench_cuda.so
	fast=$bundle/libmoebench_cuda_fast.so
	rb=$bundle/moebench-cuda-route-bench
fi

run verify-route-quick.txt $mb verify --backend $so --op route --quick --json "$out/verify-route-quick.json"
run verify-route-full.txt $mb verify --backend $so --op route --full --jobs 8
run verify-norm.txt $mb verify --backend $so --op norm --json "$out/verify-norm.json"
run verify-fast-route.txt $mb verify --backend $fast --op route --quick
run verify-fast-norm.txt $mb verify --backend $fast --op norm --quick
for f in verify-route-quick verify-route-full verify-norm verify-fast-route verify-fast-norm; do
	printf '%-20s ' $f; tail -1 "$out/$f.txt"
	grep -E '^(FAIL|UNTRUSTED)' "$out/$f.txt" | head -20
done

: >"$out/route-kernel.txt"
for mode in "" --fast; do
	for m in Default Renormalize DeepSeekV3 Llama4 RenormalizeNaive TopK SigmoidRenorm MiniMax2 Sigmoid TopKSigmoid; do
		for prof in flashinfer vllm; do
			case $m in
			DeepSeekV3) a="-E 256 -K 8 -G 8 --tg 4 --bias f32" ;;
			MiniMax2) a="-E 256 -K 8 -G 0 --tg 0 --rsf 1 --bias f32" ;;
			Llama4) a="-E 128 -K 1 -G 0 --tg 0 --bias none" ;;
			*) a="-E 128 -K 8 -G 0 --tg 0 --bias none" ;;
			esac
			echo "$rb --method $m --profile $prof -T 16384 $a $mode" >>"$cmds"
			$rb --method $m --profile $prof -T 16384 $a $mode >>"$out/route-kernel.txt" 2>&1
		done
	done
done
for T in 1 16 256 4096 16384 65536; do
	echo "$rb --method DeepSeekV3 --profile vllm -T $T" >>"$cmds"
	$rb --method DeepSeekV3 --profile vllm -T $T >>"$out/route-kernel-sweep.txt" 2>&1
	$rb --method DeepSeekV3 --profile vllm -T $T --logits bf16 >>"$out/route-kernel-sweep.txt" 2>&1
done
cat "$out/route-kernel-sweep.txt"

run torch-gpu.txt python3 cuda/torch_route_gpu.py -T 16384
cat "$out/torch-gpu.txt"

run bench-route.txt timeout 300 $mb bench --backend $so --backend $fast --method DeepSeekV3 --profile vllm,flashinfer \
	--shape T=16384 --no-calibrate --budget 10 --out "$out/bench-route"
tail -25 "$out/bench-route.txt"
