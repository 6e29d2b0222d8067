#!/bin/sh
# The command-line contract of `moebench model`: init / run / verify on tiny presets, the output
# files (safetensors "logits" [T][V] and "ids" [T], T = prompt + generated; "hidden.<l>" [T][H]),
# the same bits at 1 and 2 threads, verify passing (exit 0) on every tiny preset, and bad input
# (missing directory, bad ids, bad flags, ids outside the vocabulary) refused with exit 2 and a
# message that names the problem.
# With MUTANT.so (a plugin whose expert op uses ReLU for SiLU), verify must fail (exit 1) on a
# preset with a dense layer, whose MLP runs through the expert op.
# usage: test-model-cli.sh MOEBENCH WORK_DIR [MUTANT.so]
set -u
mb=$1
work=$2
mutant=${3:-}
fails=0
rm -rf "$work" && mkdir -p "$work"

. "$(dirname "$0")/cli_expect.sh"
says() { # says TEXT: the last command's output mentions TEXT
	grep -q -- "$1" "$work/out" || { echo "FAILED: output does not mention '$1'"; sed 's/^/    /' "$work/out" | head; fails=$((fails + 1)); }
}

expect 0 "model --help" "$mb" model --help
for opt in --out --preset --seed --list-presets --model --prompt-ids --prompt-file --max-new-tokens --logits \
	--hidden-states --path --backend --threads --weights --window-convention --profile --json; do
	says "$opt"
done
expect 0 "init --list-presets" "$mb" model init --list-presets
says tiny-

presets=$("$mb" model init --list-presets | awk '/^tiny-/ {print $1}')
[ -n "$presets" ] || { echo "FAILED: no tiny presets"; fails=$((fails + 1)); }
for p in $presets; do
	d="$work/$p"
	expect 0 "init $p" "$mb" model init --out "$d" --preset "$p" --seed 3
	expect 0 "run $p (ref)" "$mb" model run --model "$d" --prompt-ids 5,17,42 --max-new-tokens 3 --path ref \
		--logits "$d/ref.st"
	expect 0 "run $p (opt, 1 thread)" "$mb" model run --model "$d" --prompt-ids 5,17,42 --max-new-tokens 3 \
		--logits "$d/opt1.st" --hidden-states "$d/hid1.st"
	says "generated:"
	expect 0 "run $p (opt, 2 threads)" "$mb" model run --model "$d" --prompt-ids 5,17,42 --max-new-tokens 3 \
		--threads 2 --logits "$d/opt2.st" --hidden-states "$d/hid2.st"
	cmp -s "$d/opt1.st" "$d/opt2.st" && cmp -s "$d/hid1.st" "$d/hid2.st" ||
		{ echo "FAILED: $p: opt path differs between 1 and 2 threads"; fails=$((fails + 1)); }
	# header: 8-byte length, JSON naming logits [6][V] and ids [6] (3 prompt + 3 generated)
	head -c 400 "$d/opt1.st" | tail -c +9 | grep -q '"logits":{"dtype":"F32","shape":\[6,' ||
		{ echo "FAILED: $p: logits tensor is not F32 [6][V]"; fails=$((fails + 1)); }
	head -c 400 "$d/opt1.st" | tail -c +9 | grep -q '"ids":{"dtype":"I32","shape":\[6\]' ||
		{ echo "FAILED: $p: ids tensor is not I32 [6]"; fails=$((fails + 1)); }
	head -c 400 "$d/hid1.st" | tail -c +9 | grep -q '"hidden.0":{"dtype":"F32","shape":\[6,' ||
		{ echo "FAILED: $p: hidden.0 tensor is not F32 [6][H]"; fails=$((fails + 1)); }
	for t in 1 2; do
		expect 0 "verify $p ($t threads)" "$mb" model verify --model "$d" --prompt-ids 5,17,42,7,9,11 \
			--max-new-tokens 5 --threads $t
		says PASS
	done
done

# the window convention changes the output once a sliding layer sees more than W keys
d="$work/tiny-ln-softmax-avg"
if [ -d "$d" ]; then
	expect 0 "run --window-convention hf" "$mb" model run --model "$d" --prompt-ids 1,2,3,4,5,6,7,8,9,10 \
		--max-new-tokens 1 --window-convention hf --logits "$d/w0.st"
	expect 0 "run --window-convention plus1" "$mb" model run --model "$d" --prompt-ids 1,2,3,4,5,6,7,8,9,10 \
		--max-new-tokens 1 --window-convention plus1 --logits "$d/w1.st"
	cmp -s "$d/w0.st" "$d/w1.st" && { echo "FAILED: the window convention changed nothing"; fails=$((fails + 1)); }
	printf '5, 17\n42\n' >"$work/prompt.txt"
	expect 0 "run --prompt-file" "$mb" model run --model "$d" --prompt-file "$work/prompt.txt" --max-new-tokens 3 \
		--logits "$d/pf.st"
	cmp -s "$d/pf.st" "$d/opt1.st" || { echo "FAILED: --prompt-file gave another result than --prompt-ids"; fails=$((fails + 1)); }
	expect 0 "bench (tiny, short)" "$mb" model bench --model "$d" --prompt-lengths 8 --contexts 16 --threads 1 \
		--reps 2 --json "$work/bench.json"
	says "decode phases"
	grep -q '"benchmarks"' "$work/bench.json" || { echo "FAILED: bench JSON has no benchmarks"; fails=$((fails + 1)); }

	if [ -n "$mutant" ]; then
		expect 1 "verify catches a broken expert op (--backend mutant)" "$mb" model verify --model "$d" \
			--prompt-ids 5,17,42,7 --max-new-tokens 3 --backend "$mutant"
		says FAIL
	fi

	# bad input: exit 2 with a message naming the problem
	expect 2 "run: missing model dir" "$mb" model run --model "$work/nope" --prompt-ids 1 --max-new-tokens 1
	says "nope"
	expect 2 "run: bad ids" "$mb" model run --model "$d" --prompt-ids 1,x,3 --max-new-tokens 1
	says "bad token id"
	expect 2 "run: negative id" "$mb" model run --model "$d" --prompt-ids 1,-3 --max-new-tokens 1
	says "bad token id"
	expect 2 "run: id outside the vocabulary" "$mb" model run --model "$d" --prompt-ids 1,99999 --max-new-tokens 1
	says "outside the vocabulary"
	expect 2 "run: empty prompt" "$mb" model run --model "$d" --prompt-ids , --max-new-tokens 1
	says "no token ids"
	expect 2 "run: no prompt" "$mb" model run --model "$d" --max-new-tokens 1
	says "prompt"
	expect 2 "run: missing prompt file" "$mb" model run --model "$d" --prompt-file "$work/none.txt" --max-new-tokens 1
	says "none.txt"
	expect 2 "run: no --max-new-tokens" "$mb" model run --model "$d" --prompt-ids 1
	says "max-new-tokens"
	expect 2 "run: bad --max-new-tokens" "$mb" model run --model "$d" --prompt-ids 1 --max-new-tokens -1
	expect 2 "run: bad --threads" "$mb" model run --model "$d" --prompt-ids 1 --max-new-tokens 1 --threads 0
	expect 2 "run: bad --path" "$mb" model run --model "$d" --prompt-ids 1 --max-new-tokens 1 --path fast
	says "ref or opt"
	expect 2 "run: bad --window-convention" "$mb" model run --model "$d" --prompt-ids 1 --max-new-tokens 1 --window-convention w
	expect 2 "run: bad --profile" "$mb" model run --model "$d" --prompt-ids 1 --max-new-tokens 1 --profile sglang
	expect 2 "run: bad --weights" "$mb" model run --model "$d" --prompt-ids 1 --max-new-tokens 1 --weights int3
	expect 2 "run: unknown backend" "$mb" model run --model "$d" --prompt-ids 1 --max-new-tokens 1 --backend nope
	expect 2 "run: unknown option" "$mb" model run --model "$d" --frobnicate
	expect 2 "run: logits into a missing folder" "$mb" model run --model "$d" --prompt-ids 1 --max-new-tokens 1 \
		--logits "$work/no/such/dir/l.st"
	[ -e "$work/no" ] && { echo "FAILED: a failed write left something behind"; fails=$((fails + 1)); }
	expect 2 "verify: missing model dir" "$mb" model verify --model "$work/nope" --prompt-ids 1
	expect 2 "bench: bad --contexts" "$mb" model bench --model "$d" --contexts 0,x
fi
expect 2 "init: unknown preset" "$mb" model init --out "$work/x" --preset no-such-preset
expect 2 "init: no --out" "$mb" model init --preset tiny-fp8
expect 2 "unknown subcommand" "$mb" model frobnicate
expect 2 "no subcommand" "$mb" model

[ "$fails" -eq 0 ] && echo "all model CLI checks passed" || echo "$fails model CLI check(s) failed"
[ "$fails" -eq 0 ]
