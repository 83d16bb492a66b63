"""Mixtures of diagonal Normals: the distributional transform (MixtureSameFamily.rsample, section 4 of
Figurnov et al. 2018) against the transport-equation fields (MixtureOfDiagNormals, Jankowiak & Karaletsos
2019), side by side.

    python bench/mixture_transform.py            # K in {3, 10}, D in {2, 10}
    python bench/mixture_transform.py --docs     # also rewrite its section of docs/mixtures.md

For each configuration and method: whether the per-sample gradients coincide with the distributional
transform's at the same samples (max relative difference of dz/dlocs . g over 64 samples), the variance of
the per-sample gradient of E[f(z)], f(z) = sum_d (sin z_d + z_d^2 / 2), w.r.t. each parameter group (summed
over the group's entries; n per-sample gradients from one batched call), and the time of rsample +
backward per sample (1 thread). Both estimators are unbiased; the means are printed with their standard
errors as a check.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402


def setup(torch, K, D, seed=0):
    g = torch.Generator().manual_seed(seed)
    locs = 2 * torch.randn(K, D, generator=g, dtype=torch.float64)
    scales = 0.5 + torch.rand(K, D, generator=g, dtype=torch.float64)
    logits = torch.randn(K, generator=g, dtype=torch.float64)
    return locs, scales, logits


def f(torch, z):
    return (torch.sin(z) + 0.5 * z * z).sum(-1)


def per_sample_grads(torch, gk, method, params, n, seed):
    locs, scales, logits = params
    L = locs.expand(n, *locs.shape).clone().requires_grad_()
    S = scales.expand(n, *scales.shape).clone().requires_grad_()
    W = logits.expand(n, *logits.shape).clone().requires_grad_()
    gen = torch.Generator().manual_seed(seed)
    if method == "distributional transform":
        TD = torch.distributions
        m = gk.distributions.MixtureSameFamily(TD.Categorical(logits=W), TD.Independent(TD.Normal(L, S), 1))
        torch.manual_seed(seed)
        z = m.rsample()
    else:
        vel = "pairwise" if "pairwise" in method else "reference"
        z = gk.distributions.MixtureOfDiagNormals(L, S, W, velocity=vel).rsample(generator=gen)
    grads = torch.autograd.grad(f(torch, z).sum(), (L, S, W))
    return z, grads


def coincide(torch, gk, method, params, seed=5, n=64):
    """Max relative difference between the method's per-sample dz/dlocs . g and the transform's, at the
    method's own samples."""
    locs, scales, logits = params
    L = locs.expand(n, *locs.shape).clone().requires_grad_()
    vel = "pairwise" if "pairwise" in method else "reference"
    z = gk.distributions.MixtureOfDiagNormals(L, scales, logits, velocity=vel).rsample(
        generator=torch.Generator().manual_seed(seed))
    g = torch.randn(z.shape, generator=torch.Generator().manual_seed(seed + 1), dtype=z.dtype)
    (a,) = torch.autograd.grad((z * g).sum(), L)
    TD = torch.distributions
    L2 = locs.expand(n, *locs.shape).clone().requires_grad_()
    m = gk.distributions.MixtureSameFamily(TD.Categorical(logits=logits.expand(n, -1)),
                                           TD.Independent(TD.Normal(L2, scales.expand(n, -1, -1)), 1))
    zz = m._distributional_transform(z.detach(), m._factorized())
    (b,) = torch.autograd.grad((zz * g).sum(), L2)
    return ((a - b).abs().amax((-1, -2)) / b.abs().amax((-1, -2))).max().item()


def time_per_sample(torch, gk, method, params, n=2000, repeats=3):
    best = math.inf
    for r in range(repeats):
        t = time.perf_counter()
        per_sample_grads(torch, gk, method, params, n, seed=100 + r)
        best = min(best, (time.perf_counter() - t) / n * 1e6)
    return best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20000, help="samples for the variance")
    ap.add_argument("--docs", action="store_true")
    args = ap.parse_args(argv)
    import torch
    from tqdm import tqdm

    gk, note = C.import_gradkern()
    if gk is None:
        sys.exit(note)
    torch.set_num_threads(1)
    methods = ["distributional transform", "transport (reference field)", "transport (pairwise field)"]
    configs = [(3, 2), (3, 10), (10, 2), (10, 10)]
    rows = []
    for K, D in tqdm(configs, desc="mixtures", unit="config"):
        params = setup(torch, K, D)
        for method in methods:
            _, grads = per_sample_grads(torch, gk, method, params, args.n, seed=1)
            var = [g.var(0).sum().item() for g in grads]
            means = [g.mean(0) for g in grads]
            same = "—" if method.startswith("distributional") else f"{coincide(torch, gk, method, params):.2f}"
            us = time_per_sample(torch, gk, method, params)
            rows.append([f"K={K}, D={D}", method, same] + [f"{v:.3g}" for v in var] + [f"{us:.1f}"])
            rows[-1].append(" / ".join(f"{m.sum().item():.4f}" for m in means))
    headers = ["config", "method", "differs from the transform (max rel.)", "var d/dlocs", "var d/dscales",
               "var d/dlogits", "us / sample (rsample + backward)", "mean gradient sums (locs / scales / logits)"]
    md = (f"{args.n} samples per row, float64, 1 thread; variance: of the per-sample gradient of "
          "E[sum_d sin z_d + z_d^2 / 2], summed over each parameter group's entries.\n\n"
          + C.markdown_table(headers, rows, align=["l", "l"] + ["r"] * 6))
    print(md)
    if args.docs:
        C.write_doc_section("mixtures.md", "mixture_transform", md, command="python bench/mixture_transform.py --docs")


if __name__ == "__main__":
    main()
