#!/usr/bin/env bash
# CLI contract of `moebench`: help and version exit 0, bad usage exits 2 with a message on stderr,
# selfcheck passes (the default job is tested in test-main-job-cli.sh). Usage: test-cli.sh PATH/TO/moebench
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
check selfcheck-title 0 'selfcheck of the scalar reference' -- "$bin" selfcheck
check info 0 'built-in backends' -- "$bin" info
check bench-method-list 0 '^route/synthetic-E256-G8-TG4-K8/DeepSeekV3-f32-flashinfer/T:4096$' -- \
	"$bin" bench --method all --profile flashinfer,vllm --shape T=4096 --list
n=$("$bin" bench --method all --profile flashinfer,vllm --shape T=16,4096 --list | grep -c '^route/synthetic-')
if [ "$n" -eq 40 ]; then echo "ok   bench-method-count"; else echo "FAIL bench-method-count: $n cases, expected 10 methods x 2 profiles x 2 T = 40"; fail=1; fi
check bench-method-shape 0 '^route/synthetic-E64-K4/Sigmoid-bf16-vllm/T:1$' -- \
	"$bin" bench --method sigmoid --shape E=64 --shape K=4 --shape T=1 --logits bf16 --list
check bench-method-llama4-k1 0 '^route/synthetic-E128-K1/Llama4-f32-vllm/T:1$' -- "$bin" bench --method Llama4 --shape T=1 --list
check bench-method-bad 2 "unknown routing method 'bogus'" -- "$bin" bench --method Sigmoid,bogus --list
check bench-method-invalid 2 'E=100 must be a multiple of n_group=8' -- "$bin" bench --method DeepSeekV3 --shape E=100 --list
check bench-profile-alone 2 'apply to --method only' -- "$bin" bench --profile hf --list
check bench-logits-bad 2 "bad --logits 'f16'" -- "$bin" bench --method Default --logits f16 --list
# Threads and copies (issue 9): one call on N threads, or N copies; never both; a count above the
# cores this process may use is run but warned about (stderr and the table).
check bench-help-modes 0 '--copies N +throughput mode' -- "$bin" bench --help
check bench-threads-zero 2 "bad --threads '0'" -- "$bin" bench --threads 0 --list
check bench-threads-junk 2 "bad --threads '2x'" -- "$bin" bench --threads 2x --list
check bench-copies-zero 2 "bad --copies '0'" -- "$bin" bench --copies 0 --list
check bench-threads-and-copies 2 'choose one call on N threads' -- "$bin" bench --threads 2 --copies 2 --list
check bench-scaling-copies 2 'does not take --copies' -- "$bin" bench --scaling --copies 2 --list
over=$(( $(nproc) + 1 ))
check bench-threads-over-cores 0 "WARNING: --threads $over ran on fewer cores than threads" -- \
	"$bin" bench --threads "$over" --backend ref --no-baselines --no-calibrate --op route --model qwen3-30b-a3b \
	--shape T=1 --min-time 0.001
# the layer sweep: 7 token counts, warm and cold
n=$("$bin" bench --op layer --model qwen3-30b-a3b --list | grep -c '^layer/qwen3-30b-a3b/')
if [ "$n" -eq 14 ]; then echo "ok   bench-layer-sweep"; else echo "FAIL bench-layer-sweep: $n cases, expected 7 T x warm/cold = 14"; fail=1; fi
check bench-layer-sweep-last 0 '^layer/qwen3-30b-a3b/W=bf16.A=bf16/T:2048/cold$' -- "$bin" bench --op layer --model qwen3-30b-a3b --list
# --weights: the expert and layer cases in another format (with its activation handling)
check bench-weights-nvfp4 0 '^layer/qwen3-30b-a3b/W=nvfp4.A=nvfp4/T:16/cold$' -- "$bin" bench --op layer --model qwen3-30b-a3b --weights nvfp4 --list
check bench-weights-mxfp4 0 '^expert/qwen3-30b-a3b/W=mxfp4.A=bf16/M:1/warm$' -- "$bin" bench --op expert --model qwen3-30b-a3b --weights mxfp4 --list
check bench-weights-bad 2 "bad --weights 'q4'" -- "$bin" bench --weights q4 --list
# --scaling keeps the layer and the expert prefill (M >= 64) only
if "$bin" bench --scaling --model qwen3-30b-a3b --list | grep -qvE '^(layer/|expert/.*/M:(64|256|1024)/)'; then
	echo "FAIL bench-scaling-list: a case other than the layer and expert prefill"; fail=1
else
	echo "ok   bench-scaling-list"
fi
exit $fail
