"""Single-precision arithmetic helpers for the independent models.

numpy float32 arrays round every +, -, *, / exactly as C fp32 does (one IEEE rounding per op, no
contraction), so the models write each formula op by op on float32 arrays. exp and tanh are
evaluated in float64 and rounded once to float32: that is the correctly rounded result except in
vanishingly rare double-rounding cases, and it differs from a libm float function (glibc 2.36:
expf in about 5e-4 of arguments by 1 ulp, tanhf in about 3% by up to 2 ulps) by those ulps only;
the comparison budgets in crosscheck.py say how that error is allowed to propagate. LIBM swaps in
the C library's functions instead (crosscheck.py --libm).
"""
import numpy as np

F32 = np.float32
U32 = np.uint32


def f32(x):
    return np.asarray(x, dtype=F32)


def bits(x):
    return np.ascontiguousarray(x, dtype=F32).view(U32)


def from_bits(b):
    return np.ascontiguousarray(b, dtype=U32).view(F32)


def quiet(x):
    """NaN -> the same NaN with the quiet bit set (what any arithmetic op returns for it)."""
    b = bits(x).copy()
    b[np.isnan(x)] |= U32(0x00400000)
    return from_bits(b)


def bf16_bits(x):
    """fp32 -> bf16 bit pattern: round to nearest even; NaN stays a quiet NaN with its sign."""
    b = bits(x).astype(np.uint64)
    r = (b + 0x7FFF + ((b >> 16) & 1)) >> 16
    r = np.where(np.isnan(x), (b >> 16) | 0x40, r)
    return (r & 0xFFFF).astype(np.uint16)


def bf16_to_f32(h):
    return from_bits(np.asarray(h, dtype=np.uint16).astype(U32) << U32(16))


def round_bf16(x):
    return bf16_to_f32(bf16_bits(x))


# Optional replacement of exp and tanh by a C library's expf and tanhf (crosscheck.py --libm):
# a function (which, float32 array) -> float32 array, which 0 = exp, 1 = tanh.
LIBM = None


def exp32(x):
    x = f32(x)
    if LIBM:
        r = LIBM(0, x)
    else:
        with np.errstate(all="ignore"):
            r = np.exp(x.astype(np.float64)).astype(F32)
    return np.where(np.isnan(x), quiet(x), r)


def tanh32(x):
    x = f32(x)
    if LIBM:
        r = LIBM(1, x)
    else:
        with np.errstate(all="ignore"):
            r = np.tanh(x.astype(np.float64)).astype(F32)
    return np.where(np.isnan(x), quiet(x), r)


def ulp32(x):
    """Spacing of fp32 at |x| (the gap to the next larger magnitude); min subnormal at 0."""
    with np.errstate(all="ignore"):
        return np.spacing(np.abs(f32(x))).astype(np.float64)


def ulp_bf16(x):
    return ulp32(x) * 65536.0
