#!/usr/bin/env python3
"""Generate tests/data/beta_d2_ref.csv: mpmath ground truth for the second derivatives of the regularized
incomplete beta function in its parameters and the parameter derivatives of the Beta implicit gradient
(csrc/core/ibeta_d2.h; issue 15).

Points: (a, b) in {1e-3, 0.1, 0.5, 1, 2.5, 10, 100, 1e4}^2 at the quantiles {1e-10, 1e-3, 0.1, 0.5, 0.9,
0.999, 1 - 1e-10}, plus extremes ((1e-6, 1), (1, 1e-6), (1e5, 3), (3, 1e5), (1e6, 5) at the
quantiles 1e-3, 0.5, 0.999). a, b and x are rounded to float32 (so that both dtypes are tested on the same
inputs; x from gradkern.betaincinv, the quantile only places it); points whose x rounds to 0 or 1 are dropped.

Columns: a,b,x, Iaa,Iab,Ibb (d2I/da2, d2I/(da db), d2I/db2), Gaa,Gab,Gba,Gbb (d g_a/da, d g_a/db, d g_b/da,
d g_b/db at fixed x, g = standard_beta_grad), then one scale per value: sGij = |I_ij / q| + |g_i l_j| (the
sizes of the two parts of G_ij = -I_ij / q - g_i l_j, l_j = dlog q / dtheta_j) and sIij = q (|G_ij| + |g_i l_j|)
for I_ij (the same identity solved for I_ij), against which the error is measured where a value is small
against its parts. Reference: gradkern/reference/beta.py (mpmath.diff of the smaller tail), 30 digits,
written with 20 significant digits. Points where mpmath's hypergeometric series fails to converge are
left out and printed (7 of 334: a = b = 1e4, x from 0.48 to 0.53).
Usage: nice -n 10 python tools/gen_beta_d2_ref.py [out.csv]   (about 2 minutes)
"""
import os
import sys

import mpmath as mp
import numpy as np
import torch
from tqdm import tqdm

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _standalone_reference import load  # noqa: E402

ref = load("beta")

GRID = (1e-3, 0.1, 0.5, 1.0, 2.5, 10.0, 100.0, 1e4)
QUANTILES = (1e-10, 1e-3, 0.1, 0.5, 0.9, 0.999, 1 - 1e-10)
EXTREMES = ((1e-6, 1.0), (1.0, 1e-6), (1e5, 3.0), (3.0, 1e5), (1e6, 5.0))


def points():
    import gradkern  # only to place x at a quantile

    pairs = [(a, b, q) for a in GRID for b in GRID for q in QUANTILES]
    pairs += [(a, b, q) for a, b in EXTREMES for q in (1e-3, 0.5, 0.999)]
    out = []
    for a, b, q in pairs:
        a32, b32 = float(np.float32(a)), float(np.float32(b))
        x = gradkern.betaincinv(torch.tensor(a32, dtype=torch.float64), torch.tensor(b32, dtype=torch.float64),
                                torch.tensor(q, dtype=torch.float64)).item()
        x32 = float(np.float32(x))
        if 0 < x32 < 1:
            out.append((a32, b32, x32))
    return sorted(set(out))


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "tests", "data", "beta_d2_ref.csv")
    fmt = lambda v: mp.nstr(v, 20, min_fixed=0, max_fixed=0)  # noqa: E731
    rows = points()
    skipped = []
    with open(path, "w") as fh:
        fh.write("a,b,x,Iaa,Iab,Ibb,Gaa,Gab,Gba,Gbb,sIaa,sIab,sIbb,sGaa,sGab,sGba,sGbb\n")
        for a, b, x in tqdm(rows, desc="beta d2 reference"):
            try:
                I2 = ref.betainc_grads2(a, b, x)
                G = ref.standard_beta_grad_d2(a, b, x)
            except ValueError as e:  # mpmath's 2F1 series gives up (seen at a = b = 1e4 near the mode)
                skipped.append((a, b, x, str(e).split("\n")[0]))
                continue
            with mp.workdps(40):
                A, B, X = mp.mpf(a), mp.mpf(b), mp.mpf(x)
                q = mp.exp(ref.log_density(A, B, X))
                ga, gb = ref.standard_beta_grad(a, b, x, 40)
                la = mp.log(X) - mp.digamma(A) + mp.digamma(A + B)
                lb = mp.log1p(-X) - mp.digamma(B) + mp.digamma(A + B)
                parts = [abs(ga * la), abs(ga * lb), abs(gb * la), abs(gb * lb)]
                Iq = [I2[0] / q, I2[1] / q, I2[1] / q, I2[2] / q]
                sG = [abs(Iq[i]) + parts[i] for i in range(4)]
                sI = [q * (abs(G[0]) + parts[0]), q * (abs(G[1]) + parts[1]), q * (abs(G[3]) + parts[3])]
            vals = list(I2) + list(G) + sI + sG
            fh.write(f"{a!r},{b!r},{x!r}," + ",".join(fmt(v) for v in vals) + "\n")
    print(f"{len(rows) - len(skipped)} points -> {path}; left out, mpmath failed: {len(skipped)}")
    for a, b, x, why in skipped:
        print(f"  a={a!r} b={b!r} x={x!r}: {why}")


if __name__ == "__main__":
    main()
