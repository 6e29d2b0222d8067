"""Independent model of the element codecs and the NVFP4, MXFP4, MXFP8 and FP8-scheme quantizers.

Written from docs/formats.md and include/moe/codec.h only (not from reference/).

Encoding does not manipulate bits: each format's non-negative finite values are tabulated from the
definition (sign, exponent bias, mantissa width), and |x| goes to the nearest value, comparing 2|x|
with the exact sum of the two neighbours (all exact in float64); on a tie the code with an even
last bit wins. A value past the largest finite one rounds against a virtual next code (E4M3: 480,
0x7F; E5M2: 65536, the infinity code) and then overflows per mode. The sign bit is copied from x,
for zeros and for results that round to zero too.

Readings where the texts leave a choice (each one is a sentence in the report; [aligned]: settled
on the reference's side after the first comparison, the texts being silent):
- FP8 NaN input -> 0x7F in both modes and both formats (codec.h); an E4M3 overflow in NaN mode
  (|x| > 464 or inf) -> NaN with x's sign, 0xFF for negative x (PyTorch ORs the sign in).
- [aligned] Decoding a NaN code gives the positive quiet NaN 0x7FC00000 whatever the code's sign
  bit (the encoders drop a NaN's sign too).
- NVFP4 amax ignores NaN (a NaN never compares greater); [aligned] the global scale 2688/amax is
  clamped to FLT_MAX when it overflows (a tiny amax), not left infinite.
- [aligned] FP8 per-tensor/per-channel scale 448/amax is 1 for a zero or infinite amax and FLT_MAX
  when the quotient overflows; a 1x128/128x128 block with an infinite amax has dequant scale 1.
- MX scale exponent e = ceil(log2(amax/EMAX)) (EMAX 6 for MXFP4, 448 for MXFP8) with the quotient
  rounded to fp32, clamped to the UE8M0 range [-127, 127]; amax = 0 gives code 0 (2^-127, the
  smallest scale), amax = inf code 254; elements e2m1(x * 2^-e), or e4m3 of the product clamped
  to +-448, with 2^-e applied as an exact power-of-two scaling (ldexp).
"""
import numpy as np

from fp32 import F32, U32, bits, f32

SATFINITE, NAN_ON_OVERFLOW = 0, 1


def _fp8_table(ebits, mbits):
    bias = (1 << (ebits - 1)) - 1
    vals = []
    for c in range(1 << (ebits + mbits)):
        e, m = c >> mbits, c & ((1 << mbits) - 1)
        if e == 0:
            vals.append(m * 2.0 ** (1 - bias - mbits))
        else:
            vals.append((1 + m / (1 << mbits)) * 2.0 ** (e - bias))
    return np.array(vals)


E4M3_VALUES = _fp8_table(4, 3)  # index = code 0..127; 0x7F is NaN (value there = 480, virtual)
E5M2_VALUES = _fp8_table(5, 2)  # 0x7C.. are inf/NaN; value at 0x7C = 65536, virtual
E2M1_VALUES = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0])


def _nearest(a, table):
    """RNE index into an ascending table of magnitudes for finite a >= 0 not above table[-1]."""
    lo = np.searchsorted(table, a, side="right") - 1
    lo = np.clip(lo, 0, len(table) - 1)
    hi = np.minimum(lo + 1, len(table) - 1)
    mid2 = table[lo] + table[hi]
    a2 = 2.0 * a
    up = (a2 > mid2) | ((a2 == mid2) & (lo % 2 == 1))
    return np.where((table[lo] == a) | (hi == lo), lo, np.where(up, hi, lo))


def _sign(x):
    return (bits(x) >> U32(31)).astype(np.uint8)


def _abs64(x):
    with np.errstate(invalid="ignore"):  # signaling NaNs raise FE_INVALID when widened
        return np.abs(x.astype(np.float64))


def fp8e4m3_encode(x, mode):
    x = f32(x)
    a = _abs64(x)
    fin = np.isfinite(a)
    top = E4M3_VALUES[:128]  # includes the virtual 480 at 0x7F
    code = _nearest(np.where(fin, np.minimum(a, 480.0), 0.0), top).astype(np.uint8)
    over = ~fin | (code == 0x7F) | (a > 480.0)
    if mode == SATFINITE:
        code = np.where(over, 0x7E, code)
    else:
        code = np.where(over, 0x7F, code)
    out = code | (_sign(x) << 7)
    return np.where(np.isnan(x), 0x7F, out).astype(np.uint8)


def fp8e5m2_encode(x, mode):
    x = f32(x)
    a = _abs64(x)
    fin = np.isfinite(a)
    top = E5M2_VALUES[:0x7D]  # up to the virtual 65536 at 0x7C
    code = _nearest(np.where(fin, np.minimum(a, 65536.0), 0.0), top).astype(np.uint8)
    over = ~fin | (code == 0x7C) | (a > 65536.0)
    code = np.where(over, 0x7B if mode == SATFINITE else 0x7C, code)
    out = code | (_sign(x) << 7)
    return np.where(np.isnan(x), 0x7F, out).astype(np.uint8)


def e2m1_encode(x):
    x = f32(x)
    a = _abs64(x)
    a = np.where(np.isnan(a), np.inf, a)  # NaN -> 6 with its sign bit
    code = _nearest(np.minimum(a, 6.0), E2M1_VALUES).astype(np.uint8)
    return (code | (_sign(x) << 3)).astype(np.uint8)


QNAN = np.array([0x7FC00000], dtype=U32).view(F32)[0]


def fp8e4m3_decode(c):
    c = np.asarray(c, dtype=np.int64)
    v = E4M3_VALUES[c & 0x7F].astype(F32)
    v = np.where(c & 0x80, -v, v).astype(F32)
    return np.where((c & 0x7F) == 0x7F, QNAN, v)


def fp8e5m2_decode(c):
    c = np.asarray(c, dtype=np.int64)
    m = c & 0x7F
    v = np.where(m == 0x7C, np.inf, E5M2_VALUES[np.minimum(m, 0x7B)])
    v = np.where(c & 0x80, -v, v).astype(F32)
    return np.where(m > 0x7C, QNAN, v)


def e2m1_decode(c):
    c = np.asarray(c, dtype=np.int64)
    v = E2M1_VALUES[c & 7]
    return np.where(c & 8, -v, v).astype(F32)


def ue8m0_decode(c):
    c = np.asarray(c, dtype=np.int64)
    with np.errstate(over="ignore"):
        return np.where(c == 255, QNAN, np.ldexp(1.0, c - 127).astype(F32))


# ---- NVFP4 ----

def pad(n, m):
    return (n + m - 1) // m * m


def nvfp4_sf_offset(layout, rows, kb_count, m, k):
    if layout == 0:
        return m * kb_count + k
    cb = (kb_count + 3) // 4
    if layout == 1:
        return (m // 128) * (cb * 512) + (k // 4) * 512 + (m % 32) * 16 + ((m % 128) // 32) * 4 + (k % 4)
    return (m // 8) * (cb * 32) + (k // 4) * 32 + (m % 8) * 4 + (k % 4)


def nvfp4_scale_bytes(layout, rows, kb_count):
    if layout == 0:
        return rows * kb_count
    if layout == 1:
        return pad(rows, 128) * pad(kb_count, 4)
    return pad(rows, 8) * pad(kb_count, 4)


def nan_max_abs(x, axis=None):
    a = np.abs(f32(x))
    a = np.where(np.isnan(a), F32(0), a)
    return a.max(axis=axis)


def nvfp4_global_scale(amax):
    amax = F32(amax)
    if not np.isfinite(amax) or amax == 0:
        return F32(1)
    with np.errstate(all="ignore"):
        return min(F32(F32(448) * F32(6)) / amax, np.finfo(F32).max)


def pack_nibbles(codes):
    """codes[rows][cols] (cols even) -> bytes[rows][cols/2], low nibble = even element."""
    return (codes[:, 0::2] | (codes[:, 1::2] << 4)).astype(np.uint8)


def nvfp4_quantize(x, layout, gs_in):
    """formats.md's IEEE-exact recipe. Returns (data bytes, scale bytes, gs)."""
    x = f32(x)
    rows, cols = x.shape
    kb = cols // 16
    gs = F32(gs_in) if gs_in > 0 else nvfp4_global_scale(nan_max_abs(x))
    blocks = x.reshape(rows, kb, 16)
    with np.errstate(all="ignore"):
        vmax = nan_max_abs(blocks, axis=2)
        sf = np.where(vmax != 0, vmax * (gs * (F32(1) / F32(6))), F32(0))
        sf8 = fp8e4m3_encode(sf, SATFINITE)
        sfq = fp8e4m3_decode(sf8)
        osc = F32(1) / (sfq * (F32(1) / gs))
        osc = np.where(vmax != 0, np.fmin(osc, F32(np.finfo(F32).max)), F32(0))
        q = e2m1_encode(blocks * osc[:, :, None]).reshape(rows, cols)
    scales = np.zeros(nvfp4_scale_bytes(layout, rows, kb), dtype=np.uint8)
    m, k = np.meshgrid(np.arange(rows), np.arange(kb), indexing="ij")
    scales[nvfp4_sf_offset(layout, rows, kb, m, k)] = sf8
    return pack_nibbles(q), scales, gs


def nvfp4_dequantize(data, scales, layout, rows, cols, gs):
    kb = cols // 16
    codes = unpack_nibbles(data, rows, cols)
    m, k = np.meshgrid(np.arange(rows), np.arange(kb), indexing="ij")
    sfq = fp8e4m3_decode(scales[nvfp4_sf_offset(layout, rows, kb, m, k)])
    with np.errstate(all="ignore"):
        dq = sfq * (F32(1) / F32(gs))
        return (e2m1_decode(codes).reshape(rows, kb, 16) * dq[:, :, None]).reshape(rows, cols)


# ---- MXFP4 ----

def mx_exponent(amax, elem_max):
    """Smallest e with 2^e >= amax / elem_max (the quotient rounded to fp32), in [-127, 127]."""
    with np.errstate(all="ignore"):
        r = (f32(amax) / F32(elem_max)).astype(np.float64)
    mant, ex = np.frexp(r)  # r = mant * 2^ex, mant in [0.5, 1)
    e = np.where(mant == 0.5, ex - 1, ex)
    e = np.where(r == 0, -127, e)
    e = np.where(np.isinf(r), 127, e)
    return np.clip(e, -127, 127)


def mxfp4_quantize(x):
    x = f32(x)
    rows, cols = x.shape
    blocks = x.reshape(rows, cols // 32, 32)
    e = mx_exponent(nan_max_abs(blocks, axis=2), 6)
    with np.errstate(all="ignore"):
        y = np.ldexp(blocks.astype(np.float64), -e[:, :, None]).astype(F32)
    q = e2m1_encode(y).reshape(rows, cols)
    return pack_nibbles(q), (e + 127).astype(np.uint8)


# ---- FP8 scaling schemes (codec.h) and MXFP8 ----

def fp8_amax_scale(amax):
    """Per-tensor / per-channel encode scale 448/amax (fp32 divide); 1 where amax is 0 or not
    finite, FLT_MAX where the quotient overflows (as the NVFP4 global scale)."""
    amax = f32(amax)
    with np.errstate(all="ignore"):
        gs = np.minimum(F32(448) / amax, np.finfo(F32).max)
    return np.where((amax == 0) | ~np.isfinite(amax), F32(1), gs).astype(F32)


def fp8_quantize(x, scaling, mode):
    """Returns (codes[rows][cols], scales as float32 array) for scalings 1..4 of codec.h. A block
    whose amax is infinite gets the dequant scale 1 (the scale of an all-zero or non-finite
    per-tensor amax)."""
    x = f32(x)
    rows, cols = x.shape
    with np.errstate(all="ignore"):
        if scaling in (1, 2):
            amax = nan_max_abs(x) if scaling == 1 else nan_max_abs(x, axis=1)
            gs = fp8_amax_scale(np.atleast_1d(amax))
            q = fp8e4m3_encode(x * (gs[0] if scaling == 1 else gs[:, None]), mode)
            return q, gs.astype(F32)
        br = 1 if scaling == 3 else 128
        nr, nc = (rows + br - 1) // br, (cols + 127) // 128
        s = np.zeros((nr, nc), dtype=F32)
        q = np.zeros((rows, cols), dtype=np.uint8)
        for i in range(nr):
            for j in range(nc):
                blk = x[i * br:(i + 1) * br, j * 128:(j + 1) * 128]
                amax = nan_max_abs(blk)
                s[i, j] = np.maximum(amax, F32(1e-12)) / F32(448) if np.isfinite(amax) else F32(1)
                q[i * br:(i + 1) * br, j * 128:(j + 1) * 128] = fp8e4m3_encode(blk / s[i, j], mode)
        return q, s.reshape(-1)


def mxfp8_quantize(x):
    x = f32(x)
    rows, cols = x.shape
    blocks = x.reshape(rows, cols // 32, 32)
    e = mx_exponent(nan_max_abs(blocks, axis=2), 448)
    with np.errstate(all="ignore"):
        y = np.ldexp(blocks.astype(np.float64), -e[:, :, None]).astype(F32)
        y = np.where(np.isnan(y), y, np.clip(y, F32(-448), F32(448)))
    return fp8e4m3_encode(y, SATFINITE).reshape(rows, cols), (e + 127).astype(np.uint8)


def unpack_nibbles(data, rows, cols):
    codes = np.empty((rows, cols), dtype=np.uint8)
    d = np.asarray(data, dtype=np.uint8).reshape(rows, cols // 2)
    codes[:, 0::2] = d & 0xF
    codes[:, 1::2] = d >> 4
    return codes


def fp8_dequantize(codes, scales, scaling, rows, cols):
    """codec.h: per-tensor/channel x' = f(q) / gs; blocks x' = f(q) * s."""
    v = fp8e4m3_decode(codes).reshape(rows, cols)
    s = f32(scales)
    with np.errstate(all="ignore"):
        if scaling == 1:
            return v / s[0]
        if scaling == 2:
            return v / s[:, None]
        br = 1 if scaling == 3 else 128
        nc = (cols + 127) // 128
        srow = s.reshape(-1, nc)[np.arange(rows) // br]
        return v * srow[:, np.arange(cols) // 128]


def mx_dequantize(values, scales, rows, cols):
    """x' = f(q) * 2^(b-127): exact, then rounded once (only an fp32 overflow rounds)."""
    e = np.asarray(scales, dtype=np.int64).reshape(rows, cols // 32) - 127
    with np.errstate(all="ignore"):
        return np.ldexp(values.reshape(rows, cols // 32, 32).astype(np.float64), e[:, :, None]).astype(F32).reshape(rows, cols)
