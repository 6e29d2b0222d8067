#!/usr/bin/python3
"""The GPU baseline for the CUDA router: DeepSeekV3 grouped routing written with plain torch ops on
the GPU, as the engines' Python reference paths write it (sigmoid, + bias, top-2 group scores,
group top-k, masked expert top-k, renormalize, * rsf), timed with CUDA events.

Usage: cuda/torch_route_gpu.py [-T 16384] [-E 256] [-K 8] [-G 8] [--tg 4] [--rsf 2.5] [--reps 200]
Exit status 3 with one line when torch or a CUDA device is missing."""
import argparse
import sys

try:
    import torch
except Exception as e:
    print(f"torch is not installed for {sys.executable} (import torch: {e})")
    sys.exit(3)
if not torch.cuda.is_available():
    print(f"torch {torch.__version__} sees no CUDA device")
    sys.exit(3)

ap = argparse.ArgumentParser()
ap.add_argument("-T", type=int, default=16384)
ap.add_argument("-E", type=int, default=256)
ap.add_argument("-K", type=int, default=8)
ap.add_argument("-G", type=int, default=8)
ap.add_argument("--tg", type=int, default=4)
ap.add_argument("--rsf", type=float, default=2.5)
ap.add_argument("--reps", type=int, default=200)
a = ap.parse_args()

g = torch.Generator(device="cuda").manual_seed(1)
logits = torch.randn(a.T, a.E, device="cuda", generator=g)
bias = 0.1 * torch.randn(a.E, device="cuda", generator=g)


def route(x):
    s = torch.sigmoid(x)
    key = s + bias
    gs = key.view(a.T, a.G, -1).topk(2, dim=-1).values.sum(-1)
    gidx = gs.topk(a.tg, dim=-1, sorted=False).indices
    gmask = torch.zeros_like(gs).scatter_(1, gidx, 1.0)
    emask = gmask.unsqueeze(-1).expand(a.T, a.G, a.E // a.G).reshape(a.T, a.E)
    key = key.masked_fill(emask == 0, float("-inf"))
    ids = key.topk(a.K, dim=-1).indices
    w = s.gather(1, ids)
    w = w / (w.sum(-1, keepdim=True) + 1e-20) * a.rsf
    return ids.int(), w


for _ in range(10):
    route(logits)
torch.cuda.synchronize()
times = []
for _ in range(11):
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    e0.record()
    for _ in range(a.reps):
        route(logits)
    e1.record()
    torch.cuda.synchronize()
    times.append(e0.elapsed_time(e1) * 1e3 / a.reps)
us = sorted(times)[len(times) // 2]
print(f'device="{torch.cuda.get_device_name()}" torch={torch.__version__} method=DeepSeekV3 T={a.T} E={a.E} '
      f'K={a.K} G={a.G} TG={a.tg} logits=f32 torch_us={us:.2f} torch_Mtok_s={a.T / us:.1f}')
