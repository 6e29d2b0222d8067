#!/usr/bin/python3
"""Independent cross-check of `moebench model run` against a numpy forward written from the spec.

Written from docs/cohere2-moe.md and the Hugging
Face checkpoint conventions only, not from model/. The script
  1. writes small Cohere2-MoE checkpoints of its own (config.json + safetensors, the HF tensor names,
     bf16 weights drawn with numpy), covering: softmax and sigmoid expert selection, norm_topk_prob
     on and off, LayerNorm and RMSNorm, "average" and "sum" shared experts and none, a dense prefix
     given by first_k_dense_replace and by explicit layer_types, sliding and full attention layers,
     GQA, per-expert and fused (gate_up_proj / down_proj) expert tensors, a sharded checkpoint;
  2. runs `moebench model run` on a prompt with greedy decode and reads back the logits it writes;
  3. runs the same sequence through the numpy model in float64 and compares.

What "agree" means. The numpy model computes in float64 on the checkpoint's bf16 values, so it is
an accurate value of the function; moebench computes in fp32 and may round activations (bf16 act
quantization where the experts ask for it; bf16 dense weights are exact already). The criterion is
relative to the size of the logits: max |l_c - l_np| <= tol * max(1, max |l_np|), with tol given per
path (--tol-ref 1e-4, --tol-opt 1e-3 by default: fp32 accumulation over these widths gives ~3e-7
relative, seen 6e-6 absolute on logits of size ~20). Structural errors move the logits far more:
measured on these checkpoints, no RoPE 13-28% of the scale, the other window convention 26-38%,
norm_topk_prob flipped 5-28%, the other shared combine 25-34%. Generated tokens must equal the numpy greedy
choice wherever numpy's top-2 margin exceeds twice the observed max difference.

Exit: 0 agree, 1 disagreement, 77 numpy missing (skipped), 2 usage / moebench failed to run.
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile

try:
    import numpy as np
except ImportError:
    print("test_model_crosscheck: numpy not available, skipped")
    sys.exit(77)

sys.dont_write_bytecode = True


# ---------------------------------------------------------------- bf16 and safetensors, by hand

def to_bf16_bits(a):
    """float -> bf16 bits, round to nearest even (finite inputs)."""
    u = np.asarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def bf16_bits_to_f64(b):
    return (b.astype(np.uint32) << 16).view(np.float32).astype(np.float64)


def write_safetensors(path, tensors):
    """tensors: name -> (dtype string, shape, raw bytes). 8-byte aligned offsets."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        dt, shape, raw = tensors[name]
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        pad = (-len(raw)) % 8
        blobs.append(raw + b"\0" * pad)
        header[name]["data_offsets"] = [off, off + len(raw)]
        off += len(raw) + pad
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((-len(h)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        raw = data[base + a:base + b]
        dt = {"F32": np.float32, "I32": np.int32, "I64": np.int64, "BF16": np.uint16}[t["dtype"]]
        arr = np.frombuffer(raw, dtype=dt).reshape(t["shape"])
        if t["dtype"] == "BF16":
            arr = bf16_bits_to_f64(arr)
        out[name] = arr
    return out


# ---------------------------------------------------------------- the checkpoints

CASES = {
    # softmax + renormalize, LayerNorm, average shared, dense prefix from first_k_dense_replace
    "softmax-ln-avg": dict(selection="softmax", norm_topk_prob=True, rms=False, shared=1, combine="average",
                           first_k_dense=1, explicit_types=False, fused=False, shards=1),
    # sigmoid, RMSNorm, sum shared, no dense prefix, explicit layer_types, fused expert tensors
    "sigmoid-rms-sum": dict(selection="sigmoid", norm_topk_prob=True, rms=True, shared=1, combine="sum",
                            first_k_dense=0, explicit_types=True, fused=True, shards=1),
    # softmax without renormalization, no shared expert, two dense prefix layers, sharded
    "softmax-nonorm-sharded": dict(selection="softmax", norm_topk_prob=False, rms=False, shared=0,
                                   combine="average", first_k_dense=2, explicit_types=False, fused=False,
                                   shards=2),
}

DIMS = dict(V=96, H=64, I=32, DI=48, L=4, heads=4, kv=2, hd=16, E=8, K=2, W=3)


def layer_types(L, F, pattern=4, prefix_pattern=1):
    prefix = ["sliding_attention" if (i + 1) % prefix_pattern else "full_attention" for i in range(F)]
    rest = ["sliding_attention" if (i + 1) % pattern else "full_attention" for i in range(L - F)]
    return prefix + rest, ["dense" if i < F else "sparse" for i in range(L)]


def make_checkpoint(dirname, case, seed):
    d = DIMS
    rng = np.random.default_rng(seed)
    V, H, I, DI, L = d["V"], d["H"], d["I"], d["DI"], d["L"]
    heads, kv, hd, E = d["heads"], d["kv"], d["hd"], d["E"]
    cfg = {
        "model_type": "cohere2_moe", "architectures": ["Cohere2MoeForCausalLM"],
        "vocab_size": V, "hidden_size": H, "intermediate_size": I, "prefix_dense_intermediate_size": DI,
        "num_hidden_layers": L, "num_attention_heads": heads, "num_key_value_heads": kv, "head_dim": hd,
        "hidden_act": "silu", "logit_scale": 0.5, "tie_word_embeddings": True, "rope_theta": 10000.0,
        "sliding_window": d["W"], "sliding_window_pattern": 4, "prefix_dense_sliding_window_pattern": 1,
        "num_experts": E, "num_experts_per_tok": d["K"], "num_shared_experts": case["shared"],
        "shared_expert_combination_strategy": case["combine"], "expert_selection_fn": case["selection"],
        "norm_topk_prob": case["norm_topk_prob"], "max_position_embeddings": 256,
    }
    if case["rms"]:
        cfg["rms_norm_eps"] = 1e-5
    else:
        cfg["layer_norm_eps"] = 1e-5
    types, mlp_types = layer_types(L, case["first_k_dense"])
    if case["explicit_types"]:
        cfg["layer_types"] = types
        cfg["mlp_layer_types"] = mlp_types
    else:
        cfg["first_k_dense_replace"] = case["first_k_dense"]

    W = {}  # name -> float64 array of bf16 values

    def put(name, shape, scale):
        bits = to_bf16_bits(rng.standard_normal(shape) * scale)
        W[name] = bits

    put("model.embed_tokens.weight", (V, H), 1.0)
    put("model.norm.weight", (H,), 0.2)
    W["model.norm.weight"] = to_bf16_bits(1.0 + bf16_bits_to_f64(W["model.norm.weight"]))
    for l in range(L):
        p = f"model.layers.{l}."
        put(p + "input_layernorm.weight", (H,), 0.2)
        W[p + "input_layernorm.weight"] = to_bf16_bits(1.0 + bf16_bits_to_f64(W[p + "input_layernorm.weight"]))
        put(p + "self_attn.q_proj.weight", (heads * hd, H), H ** -0.5)
        put(p + "self_attn.k_proj.weight", (kv * hd, H), H ** -0.5)
        put(p + "self_attn.v_proj.weight", (kv * hd, H), H ** -0.5)
        put(p + "self_attn.o_proj.weight", (H, heads * hd), (heads * hd) ** -0.5)
        if mlp_types[l] == "dense":
            put(p + "mlp.gate_proj.weight", (DI, H), H ** -0.5)
            put(p + "mlp.up_proj.weight", (DI, H), H ** -0.5)
            put(p + "mlp.down_proj.weight", (H, DI), DI ** -0.5)
            continue
        put(p + "mlp.gate.weight", (E, H), 2 * H ** -0.5)
        for e in range(E):
            q = p + f"mlp.experts.{e}."
            put(q + "gate_proj.weight", (I, H), H ** -0.5)
            put(q + "up_proj.weight", (I, H), H ** -0.5)
            put(q + "down_proj.weight", (H, I), I ** -0.5)
        if case["shared"]:
            SI = I * case["shared"]
            put(p + "mlp.shared_experts.gate_proj.weight", (SI, H), H ** -0.5)
            put(p + "mlp.shared_experts.up_proj.weight", (SI, H), H ** -0.5)
            put(p + "mlp.shared_experts.down_proj.weight", (H, SI), SI ** -0.5)

    files = {}
    stored = dict(W)
    if case["fused"]:
        for l in range(L):
            p = f"model.layers.{l}.mlp.experts."
            if mlp_types[l] == "dense":
                continue
            gu = np.stack([np.concatenate([W[p + f"{e}.gate_proj.weight"], W[p + f"{e}.up_proj.weight"]])
                           for e in range(E)])
            dn = np.stack([W[p + f"{e}.down_proj.weight"] for e in range(E)])
            for e in range(E):
                for k in ("gate", "up", "down"):
                    del stored[p + f"{e}.{k}_proj.weight"]
            stored[p + "gate_up_proj"] = gu
            stored[p + "down_proj"] = dn
    # an all-zero bias, which the loader must ignore
    stored["model.layers.0.self_attn.o_proj.bias"] = to_bf16_bits(np.zeros(H))
    names = sorted(stored)
    nshard = case["shards"]
    for i, name in enumerate(names):
        fname = "model.safetensors" if nshard == 1 else f"model-{i % nshard + 1:05d}-of-{nshard:05d}.safetensors"
        a = stored[name]
        files.setdefault(fname, {})[name] = ("BF16", a.shape, a.astype("<u2").tobytes())
    for fname, t in files.items():
        write_safetensors(os.path.join(dirname, fname), t)
    if nshard > 1:
        index = {"metadata": {}, "weight_map": {n: f for f, t in files.items() for n in t}}
        with open(os.path.join(dirname, "model.safetensors.index.json"), "w") as f:
            json.dump(index, f)
    with open(os.path.join(dirname, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    Wf = {n: bf16_bits_to_f64(b) for n, b in W.items()}
    return cfg, types, mlp_types, Wf


# ---------------------------------------------------------------- the numpy forward (float64)

def norm(x, w, rms, eps):
    if rms:
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w
    mu = np.mean(x, axis=-1, keepdims=True)
    var = np.mean((x - mu) ** 2, axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w


def rope_interleaved(x, pos, theta):
    """x [T, n, d]; pairs (x[2i], x[2i+1]) rotated by pos * theta^(-2i/d)."""
    d = x.shape[-1]
    i = np.arange(d // 2)
    ang = pos[:, None] * theta ** (-2.0 * i / d)  # [T, d/2]
    c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    a, b = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = a * c - b * s
    out[..., 1::2] = a * s + b * c
    return out


def silu(g):
    return g / (1.0 + np.exp(-g))


def mlp(h, gate, up, down):
    return (silu(h @ gate.T) * (h @ up.T)) @ down.T


def forward(cfg, types, mlp_types, W, ids):
    d = DIMS
    T = len(ids)
    H, heads, kv, hd, E, K, W_ = d["H"], d["heads"], d["kv"], d["hd"], d["E"], d["K"], d["W"]
    rms = "rms_norm_eps" in cfg
    eps = cfg.get("rms_norm_eps", cfg.get("layer_norm_eps"))
    pos = np.arange(T, dtype=np.float64)
    x = W["model.embed_tokens.weight"][ids]
    causal = np.arange(T)[None, :] <= np.arange(T)[:, None]
    window = np.arange(T)[None, :] > np.arange(T)[:, None] - W_  # W keys including the query (HF)
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        h = norm(x, W[p + "input_layernorm.weight"], rms, eps)
        q = (h @ W[p + "self_attn.q_proj.weight"].T).reshape(T, heads, hd)
        k = (h @ W[p + "self_attn.k_proj.weight"].T).reshape(T, kv, hd)
        v = (h @ W[p + "self_attn.v_proj.weight"].T).reshape(T, kv, hd)
        sliding = types[l] == "sliding_attention"
        use_rope = sliding or (mlp_types[l] == "dense" and cfg["prefix_dense_sliding_window_pattern"] == 1)
        if use_rope:
            q, k = rope_interleaved(q, pos, cfg["rope_theta"]), rope_interleaved(k, pos, cfg["rope_theta"])
        mask = causal & window if sliding else causal
        att = np.empty((T, heads, hd))
        for n in range(heads):
            g = n // (heads // kv)
            s = (q[:, n, :] @ k[:, g, :].T) * hd ** -0.5
            s = np.where(mask, s, -np.inf)
            s = np.exp(s - s.max(axis=1, keepdims=True))
            s /= s.sum(axis=1, keepdims=True)
            att[:, n, :] = s @ v[:, g, :]
        a = att.reshape(T, heads * hd) @ W[p + "self_attn.o_proj.weight"].T
        if mlp_types[l] == "dense":
            m = mlp(h, W[p + "mlp.gate_proj.weight"], W[p + "mlp.up_proj.weight"], W[p + "mlp.down_proj.weight"])
        else:
            logits = h @ W[p + "mlp.gate.weight"].T
            if cfg["expert_selection_fn"] == "softmax":
                z = np.exp(logits - logits.max(axis=1, keepdims=True))
                scores = z / z.sum(axis=1, keepdims=True)
            else:
                scores = 1.0 / (1.0 + np.exp(-logits))
            m = np.zeros_like(h)
            for t in range(T):
                top = np.argsort(-scores[t], kind="stable")[:K]
                wts = scores[t, top]
                if cfg["norm_topk_prob"]:
                    wts = wts / wts.sum()
                for e, w in zip(top, wts):
                    q_ = p + f"mlp.experts.{e}."
                    m[t] += w * mlp(h[t:t + 1], W[q_ + "gate_proj.weight"], W[q_ + "up_proj.weight"],
                                    W[q_ + "down_proj.weight"])[0]
            if cfg["num_shared_experts"]:
                s_ = p + "mlp.shared_experts."
                sh = mlp(h, W[s_ + "gate_proj.weight"], W[s_ + "up_proj.weight"], W[s_ + "down_proj.weight"])
                m = (m + sh) / 2 if cfg["shared_expert_combination_strategy"] == "average" else m + sh
        x = x + a + m
    x = norm(x, W["model.norm.weight"], rms, eps)
    return (x @ W["model.embed_tokens.weight"].T) * cfg["logit_scale"]


# ---------------------------------------------------------------- driver

def run_case(name, case, args, tmp):
    d = os.path.join(tmp, name)
    os.makedirs(d)
    cfg, types, mlp_types, W = make_checkpoint(d, case, seed=len(name) * 7919)
    rng = np.random.default_rng(len(name))
    prompt = [int(i) for i in rng.integers(0, DIMS["V"], size=args.prompt_len)]
    ok = True
    for path, tol in (("ref", args.tol_ref), ("opt", args.tol_opt)):
        for threads in ((1,) if path == "ref" else (1, 2)):
            out = os.path.join(d, f"logits-{path}-{threads}.safetensors")
            cmd = [args.moebench, "model", "run", "--model", d, "--prompt-ids", ",".join(map(str, prompt)),
                   "--max-new-tokens", str(args.new_tokens), "--logits", out, "--path", path,
                   "--threads", str(threads)] + args.extra
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                print(f"{name} [{path}, {threads} thr]: moebench failed (exit {r.returncode}): {' '.join(cmd)}\n"
                      f"{r.stderr.strip()}")
                return None
            got = read_safetensors(out)
            lg = got["logits"].astype(np.float64)
            fed = [int(i) for i in got["ids"][:lg.shape[0]]] if "ids" in got else prompt
            if fed[:len(prompt)] != prompt:
                print(f"{name} [{path}]: the ids file does not start with the prompt: {fed[:len(prompt)]}")
                ok = False
                continue
            want = forward(cfg, types, mlp_types, W, np.array(fed))
            diff = np.abs(lg - want).max()
            scale = max(1.0, np.abs(want).max())
            verdict = diff <= tol * scale
            # greedy choices where numpy's margin is clear
            bad_tok = []
            for t in range(len(prompt) - 1, lg.shape[0] - 1):
                srt = np.sort(want[t])[::-1]
                if srt[0] - srt[1] > 2 * diff and int(np.argmax(want[t])) != fed[t + 1]:
                    bad_tok.append(t)
            print(f"{name} [{path}, {threads} thr]: {lg.shape[0]} positions, max |diff| {diff:.3e} "
                  f"(bound {tol * scale:.3e}), greedy tokens {'agree' if not bad_tok else 'DISAGREE at ' + str(bad_tok)}"
                  f": {'ok' if verdict and not bad_tok else 'FAIL'}")
            ok = ok and verdict and not bad_tok
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--moebench", required=True)
    ap.add_argument("--prompt-len", type=int, default=7)
    ap.add_argument("--new-tokens", type=int, default=5)
    ap.add_argument("--tol-ref", type=float, default=1e-4)
    ap.add_argument("--tol-opt", type=float, default=1e-3)
    ap.add_argument("--keep", action="store_true", help="keep the checkpoints (printed path)")
    ap.add_argument("extra", nargs="*", help="more `model run` options after --")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="moe-xmodel-")
    results = {}
    for name, case in CASES.items():
        results[name] = run_case(name, case, args, tmp)
    if args.keep:
        print("checkpoints kept in", tmp)
    else:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    if any(v is None for v in results.values()):
        return 2
    passed = sum(1 for v in results.values() if v)
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
