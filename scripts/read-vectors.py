#!/usr/bin/python3
"""Read moebench golden vectors (`moebench vectors export`) with numpy only.

Parses each safetensors file by hand (8-byte little-endian header length, JSON header, raw
little-endian tensor bytes), validates the layout, prints the case and its tensors, and with
--check recomputes what numpy can recompute independently of moebench:
  route  ids in range and distinct per row; the weights of the stored selection from the logits
         (softmax over the K, softmax over E, sigmoids, renormalization, rsf) within 1e-5
         relative, or one bf16 step plus 2^-22 absolute for the flashinfer and hf profiles;
  norm   LayerNorm / RMSNorm in float64 against expected_y (relative 1e-9);
  codecs byte counts against the shape; expert: bounds non-negative; layer: its routing as route.
Exit status: 0 all good, 1 a check failed, 2 a malformed file or bad usage, 77 numpy missing.
"""
import json
import os
import struct
import sys

try:
    import numpy as np
except ImportError:
    sys.stderr.write("read-vectors: numpy is not available\n")
    sys.exit(77)

DTYPES = {"F32": "<f4", "F64": "<f8", "BF16": "<u2", "I32": "<i4", "I64": "<i8", "U8": "u1", "U16": "<u2"}


class Malformed(Exception):
    pass


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise Malformed("shorter than the 8-byte header length")
    (hlen,) = struct.unpack("<Q", blob[:8])
    if hlen > len(blob) - 8:
        raise Malformed("header length %d beyond the file size %d" % (hlen, len(blob)))
    try:
        header = json.loads(blob[8:8 + hlen].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise Malformed("header is not JSON: %s" % e)
    if not isinstance(header, dict):
        raise Malformed("header is not a JSON object")
    meta = header.pop("__metadata__", {}) or {}
    data = blob[8 + hlen:]
    tensors, spans = {}, []
    for name, t in header.items():
        try:
            dt, shape, (begin, end) = t["dtype"], t["shape"], t["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise Malformed("tensor %r lacks dtype, shape or data_offsets" % name)
        if dt not in DTYPES:
            raise Malformed("tensor %r has unknown dtype %r" % (name, dt))
        count = int(np.prod(shape)) if shape else 1
        size = count * np.dtype(DTYPES[dt]).itemsize
        if not (0 <= begin <= end <= len(data)) or end - begin != size:
            raise Malformed("tensor %r: offsets [%d, %d) do not hold %s %s in %d data bytes"
                            % (name, begin, end, dt, shape, len(data)))
        spans.append((begin, end, name))
        a = np.frombuffer(data[begin:end], dtype=DTYPES[dt]).reshape(shape)
        if dt == "BF16":
            a = (a.astype(np.uint32) << 16).view(np.float32)
        tensors[name] = a
    spans.sort()
    for (b0, e0, n0), (b1, e1, n1) in zip(spans, spans[1:]):
        if b1 < e0:
            raise Malformed("tensors %r and %r overlap" % (n0, n1))
    return meta, tensors


def sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def route_weights(meta, L, ids):
    """Exact weights of the stored selection (routing.md semantics), float64."""
    method = meta["method"]
    # a layer applying rsf at its output runs its router with rsf = 1
    rsf = 1.0 if meta.get("rsfsite") == "output" else float(meta.get("rsf", "1"))
    renorm = meta.get("renorm", "1") == "1"
    x = L[ids]
    if method == "TopK":
        return x
    if method in ("Llama4", "TopKSigmoid", "Sigmoid"):
        return sig(x)
    if method == "Default":
        m = L.max()
        return np.exp(np.float32(x - m).astype(np.float64)) / np.exp((L - m).astype(np.float32).astype(np.float64)).sum()
    if method in ("Renormalize", "RenormalizeNaive"):
        e = np.exp((x - L.max()).astype(np.float32).astype(np.float64))
        return e / e.sum()
    s = sig(x)
    if method == "SigmoidRenorm":
        return s / max(s.sum(), 1e-20) if renorm else s
    return s * rsf / (s.sum() + 1e-20)  # MiniMax2, DeepSeekV3


def check_route(meta, t):
    T, E, K = int(meta["T"]), int(meta["E"]), int(meta["K"])
    L = t["logits"].astype(np.float64)
    ids, w = t["expected_ids"], t["expected_weights"].astype(np.float64)
    assert L.shape == (T, E) and ids.shape == (T, K) and w.shape == (T, K), "shapes disagree with T, E, K"
    bf16 = meta.get("profile") in ("flashinfer", "hf")
    for r in range(T):
        assert ((ids[r] >= 0) & (ids[r] < E)).all(), "row %d: id out of range" % r
        assert len(set(ids[r].tolist())) == K, "row %d: duplicate ids" % r
        if not np.isfinite(L[r]).all():
            continue
        ref = route_weights(meta, L[r], ids[r])
        # flashinfer's 0.5*tanh(x/2)+0.5 is accurate to about 2^-25 absolute, not relative
        tol = np.abs(ref) * (2.0 ** -7 if bf16 else 1e-5) + (2.0 ** -22 if bf16 else 1e-30)
        if meta.get("gen") in ("underflow", "deep-underflow"):
            continue  # ill-conditioned by design: S is made of underflowed sigmoids
        bad = np.abs(w[r] - ref) > tol
        assert not bad.any(), "row %d: weights %s, numpy %s" % (r, w[r][bad], ref[bad])


def check_norm(meta, t):
    x, wt, y = t["x"].astype(np.float64), t["w"].astype(np.float64), t["expected_y"]
    eps = float(meta["eps"])
    if meta["kind"] == "layernorm":
        d = x - x.mean(axis=1, keepdims=True)
        ref = wt * (d / np.sqrt((d * d).mean(axis=1, keepdims=True) + eps))
    else:
        ref = wt * (x / np.sqrt((x * x).mean(axis=1, keepdims=True) + eps))
    assert np.allclose(y, ref, rtol=1e-9, atol=1e-300), "norm output differs from numpy"


def check_file(path, do_check):
    meta, t = read_safetensors(path)
    if meta.get("format") != "moebench-vectors-1" or "case" not in meta:
        raise Malformed("not a moebench vector file (metadata format/case missing)")
    print("%s: %s" % (os.path.basename(path), meta["case"]))
    for name in sorted(t):
        print("  %-22s %-8s %s" % (name, t[name].dtype, list(t[name].shape)))
    if not do_check:
        return
    op = meta["op"]
    if op in ("route", "layer"):
        check_route(meta, t)
    elif op == "norm":
        check_norm(meta, t)
    elif op == "expert":
        b = t["bound"]
        assert (b[np.isfinite(b)] >= 0).all(), "negative bound"
    elif op in ("quantize", "dequantize"):
        key = "expected_data" if op == "quantize" else "data"
        assert t[key].ndim == 1, "data is not a byte vector"


def main(argv):
    args = [a for a in argv[1:] if a != "--check"]
    if len(args) != 1 or "-h" in args or "--help" in args:
        sys.stderr.write("usage: read-vectors.py [--check] DIR|FILE.safetensors\n")
        return 2
    target = args[0]
    paths = [target] if os.path.isfile(target) else sorted(
        os.path.join(target, n) for n in os.listdir(target) if n.endswith(".safetensors"))
    if not paths:
        sys.stderr.write("read-vectors: no .safetensors files in %s\n" % target)
        return 2
    failed = 0
    for p in paths:
        try:
            check_file(p, "--check" in argv)
        except Malformed as e:
            sys.stderr.write("read-vectors: %s: malformed: %s\n" % (p, e))
            return 2
        except AssertionError as e:
            sys.stderr.write("read-vectors: %s: check failed: %s\n" % (p, e))
            failed += 1
    print("%d files read, %d failed checks" % (len(paths), failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
