#!/usr/bin/env bash
# The final measurements of session 4 (issues 9 and 10), run one after the other on the otherwise
# idle 2-vCPU machine. B: a build configured with ggml (-Dggml_DIR=/work/anchors/ggml-install/lib/cmake/ggml);
# A3B: the a3b-shape checkpoint (moebench model init --out /tmp/mb-a3b --preset a3b-shape).
set -u
B=${B:-build-B}
M=$B/tools/moebench
OUT=${OUT:-results/intel-xeon-2c-2026-12-08-final}
A3B=${A3B:-/tmp/mb-a3b}
LB=/work/anchors/build-llama/bin/llama-bench
GG=/work/anchors/cohere2moe
run() { echo "== $(date -u +%H:%M:%S) $*" | tee -a "$OUT/log.txt"; "$@"; }
uptime | tee "$OUT/uptime-start.txt"
run $M calibrate --force > "$OUT/calibrate.txt" 2>&1
# issue 9: the Qwen3-30B-A3B layer, bf16, one and two threads; AMX table against the vdpbf16ps table
for t in 1 2; do
  run $M bench --op layer --model qwen3-30b-a3b --shape T=1,16,512 --backend avx512amx --backend avx512bf16 \
      --threads $t --cold --json "$OUT/layer-bf16-t$t.json" > "$OUT/layer-bf16-t$t.txt" 2>&1
done
# issue 9: 4-bit layers at decode against ggml's q4_0 (same 4.5 bits per weight)
for w in nvfp4 mxfp4; do
  run $M bench --op layer --model qwen3-30b-a3b --weights $w --shape T=1,16 --threads 1 --cold \
      --json "$OUT/layer-$w-t1.json" > "$OUT/layer-$w-t1.txt" 2>&1
done
# issue 9: expert decode (every format at M=1,4,8), one thread, cold
run $M bench --op expert --model qwen3-30b-a3b --shape M=1,4,8 --cold --no-baselines \
    --json "$OUT/expert-decode.json" > "$OUT/expert-decode.txt" 2>&1
for w in nvfp4 mxfp4 fp8; do
  run $M bench --op expert --model qwen3-30b-a3b --weights $w --shape M=1,4,8 --cold --no-baselines \
      --json "$OUT/expert-decode-$w.json" > "$OUT/expert-decode-$w.txt" 2>&1
done
# issue 9: expert prefill on one and two threads of one call (--scaling), bf16 W16A16
run $M bench --op expert --model qwen3-30b-a3b --shape M=256 --scaling --cold --no-baselines \
    --json "$OUT/expert-prefill-scaling.json" > "$OUT/expert-prefill-scaling.txt" 2>&1
# issue 9: routing throughput, every method, T=4096, one core
run $M bench --method all --profile vllm,flashinfer --shape T=4096 --no-baselines \
    --json "$OUT/route-4096.json" > "$OUT/route-4096.txt" 2>&1
# issue 10: end to end beside llama.cpp (bf16 activations into the experts, as ggml's bf16 path)
if [ -d "$A3B" ]; then
  run $M model bench --model "$A3B" --act bf16 --prompt-lengths 512 --contexts 128 --threads 2 --reps 3 \
      --json "$OUT/model-bf16.json" > "$OUT/model-bf16.txt" 2>&1
  run env LD_LIBRARY_PATH=/work/anchors/ggml-install/lib $LB -m $GG/a3b-bf16.gguf -p 512 -n 128 -t 1,2 -r 3 \
      > "$OUT/llama-bench-bf16.txt" 2>&1
  run $M model bench --model "$A3B" --weights nvfp4 --act bf16 --prompt-lengths 512 --contexts 128 --threads 2 --reps 3 \
      --json "$OUT/model-nvfp4.json" > "$OUT/model-nvfp4.txt" 2>&1
  run env LD_LIBRARY_PATH=/work/anchors/ggml-install-noamx/lib $LB -m $GG/a3b-q4_0-experts.gguf -p 512 -n 128 -t 1,2 -r 3 \
      > "$OUT/llama-bench-q4_0-experts-noamx.txt" 2>&1
fi
uptime | tee "$OUT/uptime-end.txt"
