"""Single-thread CPU ns/element of gradkern.standard_gamma_grad vs torch._standard_gamma_grad.

    python bench/igamma_speed.py [--n 1000000] [--repeats 7] [--dtype float32,float64] [--docs]

The paper's grid: alpha in {1e-2, 1e-1, 1, 10, 100, 1000}, 1000 Gamma(alpha) samples each
(torch._standard_gamma, fixed seed), tiled to >= n elements. Times are CPU time of this thread
(time.thread_time, so that other load on a shared machine counts less), best of `repeats` after one
warm-up call, both ops timed alternately in the same process. Prints per-alpha and overall ns/element
and the ratio gradkern / torch (<= 1: gradkern is at least as fast). --docs also writes the printout
into docs/performance.md (section igamma_speed).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import _common as C  # noqa: E402
import gradkern  # noqa: E402,F401  (registers torch.ops.gradkern)

ALPHAS = [1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0]
SAMPLES = 1000


def grid(alphas, n, dtype, seed=0):
    torch.manual_seed(seed)
    a = torch.tensor(alphas, dtype=torch.float64).repeat_interleave(SAMPLES)
    x = torch._standard_gamma(a)
    reps = math.ceil(n / a.numel())
    return a.repeat(reps).to(dtype).contiguous(), x.repeat(reps).to(dtype).contiguous()


def best_time(fn, a, x, repeats):
    fn(a, x)  # warm-up
    best = math.inf
    for _ in range(repeats):
        t0 = time.thread_time()
        fn(a, x)
        best = min(best, time.thread_time() - t0)
    return best


def bench(alphas, n, dtype, repeats):
    a, x = grid(alphas, n, dtype)
    gk = torch.ops.gradkern.standard_gamma_grad
    th = torch._standard_gamma_grad
    tg = tt = math.inf
    for _ in range(2):  # alternate so that load changes hit both
        tg = min(tg, best_time(gk, a, x, repeats))
        tt = min(tt, best_time(th, a, x, repeats))
    return tg / a.numel() * 1e9, tt / a.numel() * 1e9


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--dtype", default="float32,float64")
    p.add_argument("--docs", action="store_true", help="write the printout into docs/performance.md")
    args = p.parse_args()
    torch.set_num_threads(1)
    lines = []
    for name in args.dtype.split(","):
        dtype = getattr(torch, name)
        lines.append(f"{name}: ns/element (single thread, best of {args.repeats}), gradkern / torch")
        print(lines[-1])
        rows = [(f"alpha={al:g}", [al], max(args.n // 6, SAMPLES)) for al in ALPHAS]
        rows.append(("overall", ALPHAS, args.n))
        for label, alphas, n in rows:
            g, t = bench(alphas, n, dtype, args.repeats)
            lines.append(f"  {label:<12} gradkern {g:7.2f}  torch {t:7.2f}  ratio {g / t:5.2f}")
            print(lines[-1], flush=True)
    if args.docs:
        cmd = " ".join(["python bench/igamma_speed.py"] + [a for a in sys.argv[1:] if a != "--docs"])
        print("wrote", C.write_doc_section("performance.md", "igamma_speed", "\n".join(["```", *lines, "```"]),
                                           command=cmd), file=sys.stderr)


if __name__ == "__main__":
    main()
