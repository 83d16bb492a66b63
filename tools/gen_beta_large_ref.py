#!/usr/bin/env python3
"""Generate tests/data/beta_large_ref.csv: mpmath ground truth for the incomplete beta function at large
parameters (a, b from 1e3 to 1e8: the quadrature of csrc/core/ibeta_quad.h, and the continued fraction next
to its regime), where mpmath.betainc itself fails (its hypergeometric series does not converge from ~5e3 on).

Points: 14 pairs (a, b), among them those where the continued fraction used to fail (NaN values and gradients
of the wrong sign at (1e7, 1e6) and (1e8, 1e7) about one standard deviation below the mean; 8e-9 relative at
(1e5, 1e4)), at x = mean + k sd for k in {-200, -100, -30, -10, -3, -1.4, -1, -0.3, 0, 0.5, 1.2, 3, 10, 30, 100, 200}
(the regime's edge is 200: k = +-201 is the fraction next to it); a, b and x rounded to
float32 (so that both dtypes are tested on the same inputs), points outside (0, 1) dropped.

Columns: a,b,x, I,Ic (I_x(a, b), 1 - I_x(a, b): gradkern/reference/beta.py large_betainc), ga,gb
(dx/da, dx/db: large_standard_beta_grad, by quadrature of the integral definition on the tail away from the
mode), Gaa,Gab,Gba,Gbb (d g_a/da, d g_a/db, d g_b/da, d g_b/db at fixed x: central differences of
large_standard_beta_grad at 50 digits, relative step 1e-12), Iaa,Iab,Ibb (the second derivatives of I, from the G's by
I_ij = q (g_i m_j - G_ij), m_j = -d log q(x) / d theta_j = E[l_j] - l_j(x) in closed form (digamma); the
mixed one also from (g_b m_a - G_ba), the two agreeing to the printed bound), k, then the scales sGij =
|I_ij / q| + |g_i m_j| and sIij = q (|G_ij| + |g_i m_j|) (the sizes of the identity's two parts, as
tools/gen_beta_d2_ref.py). 30 digits, written with 20.
Usage: nice -n 10 python tools/gen_beta_large_ref.py [--processes N] [out.csv]   (about 4 minutes on 2)

With --mid: tests/data/beta_mid_ref.csv, the same columns where the smaller parameter lies between 100 and 1e3
(the second order's quadrature, ibeta_quad.h kQuadMinD2; the first order keeps the fraction there): 7 pairs
from (100, 100) to (1e8, 100) at k in {-30, -10, -3, -1, 0, 1, 3, 10, 30}.

With --tail: tests/data/beta_tail_ref.csv, the same columns for the tail quadrature's regime (csrc/core/ibeta.h
tail_regime: one parameter from 1e4 to 1e8, the other from 0.1 to 700, x on the far side of the mean from the
small parameter's end, where the continued fraction lost up to 4e-9 relative): 14 pairs, half of them
mirrored (b >> a), at k in {-40, -10, -3, -1.2} standard deviations (+k for the mirrored pairs). Only the far side:
there the reference's tail (the side without the mode) is the smaller one; between the mean and the mode it
would be the bulk, and its moments cancel (measured: 4e-10 relative error in dx/db at b = 1.5, one standard
deviation above the mean, where gradkern agrees with mpmath.betainc's own derivative to 1e-12).
"""
import argparse
import os
import sys
from multiprocessing import Pool

import mpmath as mp
import numpy as np
from tqdm import tqdm

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _standalone_reference import load  # noqa: E402

ref = load("beta")

PAIRS = ((1e3, 1e3), (1e3, 1e5), (1e5, 1e3), (1e4, 1e4), (1e5, 1e4), (1e4, 1e8), (1e5, 1e5), (1e6, 1e6),
         (1e7, 1e6), (1e8, 1e7), (1e7, 1e8), (3e7, 2e7), (1e8, 1e8), (1e6, 1e8))
TAIL_PAIRS = ((1e4, 1.0), (1e5, 3.0), (1e6, 5.0), (1e7, 2.0), (1e8, 2.0), (1e8, 300.0), (1e6, 700.0),
              (1e6, 0.1), (1e5, 0.5), (3.0, 1e5), (2.0, 1e8), (0.5, 1e6), (300.0, 1e7), (30.0, 1e8))
TAIL_KS = (-40, -10, -3, -1.2)
MID_PAIRS = ((100.0, 100.0), (100.0, 1e3), (300.0, 3e4), (100.0, 1e6), (1e8, 100.0), (500.0, 500.0), (150.0, 2000.0))
MID_KS = (-30, -10, -3, -1, 0, 1, 3, 10, 30)
KS = (-201, -200, -100, -30, -10, -3, -1.4, -1, -0.3, 0, 0.5, 1.2, 3, 10, 30, 100, 200, 201)
COLS = ("I", "Ic", "ga", "gb", "Gaa", "Gab", "Gba", "Gbb", "Iaa", "Iab", "Ibb", "sGaa", "sGab", "sGba", "sGbb",
        "sIaa", "sIab", "sIbb")


def points(tail=False, mid=False):
    out = []
    for a, b in (TAIL_PAIRS if tail else MID_PAIRS if mid else PAIRS):
        a32, b32 = float(np.float32(a)), float(np.float32(b))
        s = a32 + b32
        mean, sd = a32 / s, (a32 * b32 / (s * s * (s + 1))) ** 0.5
        # the tail pairs: x on the far side of the mean from the small parameter's end
        for k in ((k if a > b else -k) for k in TAIL_KS) if tail else MID_KS if mid else KS:
            x = float(np.float32(mean + k * sd))
            if 0 < x < 1:
                out.append((a32, b32, x, k))
    return out


def row(p):
    a, b, x, k = p
    I, Ic = ref.large_betainc(a, b, x)
    ga, gb = ref.large_standard_beta_grad(a, b, x)
    with mp.workdps(30):
        A, B, X = mp.mpf(a), mp.mpf(b), mp.mpf(x)

        def g(i, aa, bb):
            return ref.large_standard_beta_grad(aa, bb, X, dps=50)[i]

        # Central differences with a relative step of 1e-12: truncation ~1e-24 and rounding ~1e-38 relative
        # (the reference rounds its arguments to its own working precision, so mpmath.diff's default step,
        # far below that, would be lost).
        ha, hb = A * mp.mpf("1e-12"), B * mp.mpf("1e-12")
        Gaa = mp.diff(lambda t: g(0, t, B), A, h=ha)
        Gab = mp.diff(lambda t: g(0, A, t), B, h=hb)
        Gba = mp.diff(lambda t: g(1, t, B), A, h=ha)
        Gbb = mp.diff(lambda t: g(1, A, t), B, h=hb)
    with mp.workdps(40):
        q = mp.exp(ref.log_density(A, B, X))
        ma = mp.digamma(A) - mp.digamma(A + B) - mp.log(X)      # E[log t] - log x
        mb = mp.digamma(B) - mp.digamma(A + B) - mp.log1p(-X)   # E[log(1 - t)] - log(1 - x)
        Iaa, Iab, Ibb = q * (ga * ma - Gaa), q * (ga * mb - Gab), q * (gb * mb - Gbb)
        Iab2 = q * (gb * ma - Gba)
        # the sizes of the two parts of each identity (tools/gen_beta_d2_ref.py's scales): where a value is
        # small against them, the tests bound its error by the goal times this scale
        parts = [abs(ga * ma), abs(ga * mb), abs(gb * ma), abs(gb * mb)]
        Iq = [Iaa / q, Iab / q, Iab / q, Ibb / q]
        sG = [abs(Iq[i]) + parts[i] for i in range(4)]
        sI = [q * (abs(Gaa) + parts[0]), q * (abs(Gab) + parts[1]), q * (abs(Gbb) + parts[3])]
        # (where the scale is below float64's range the CSV holds 0 and nothing is compared)
        agree = abs(Iab - Iab2) / sI[1] if sI[1] > mp.mpf(1e-300) else mp.mpf(0)
    return (a, b, x, k, (I, Ic, ga, gb, Gaa, Gab, Gba, Gbb, Iaa, Iab, Ibb, *sG, *sI), float(agree))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", nargs="?")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--tail", action="store_true", help="the tail quadrature's points (beta_tail_ref.csv)")
    ap.add_argument("--mid", action="store_true", help="smaller parameter from 100 to 1e3 (beta_mid_ref.csv)")
    args = ap.parse_args()
    if args.out is None:
        name = "beta_tail_ref.csv" if args.tail else "beta_mid_ref.csv" if args.mid else "beta_large_ref.csv"
        args.out = os.path.join(HERE, "..", "tests", "data", name)
    fmt = lambda v: mp.nstr(v, 20, min_fixed=0, max_fixed=0)  # noqa: E731
    pts = points(args.tail, args.mid)
    with Pool(args.processes) as pool:
        rows = list(tqdm(pool.imap(row, pts), total=len(pts), desc="beta large-parameter reference"))
    worst = max(r[5] for r in rows)
    with open(args.out, "w") as fh:
        fh.write("a,b,x,k," + ",".join(COLS) + "\n")
        for a, b, x, k, vals, _ in rows:
            fh.write(f"{a!r},{b!r},{x!r},{k!r}," + ",".join(fmt(v) for v in vals) + "\n")
    print(f"{len(rows)} points -> {args.out}; the two forms of d2I/(da db) agree to {worst:.1e} of its scale")


if __name__ == "__main__":
    main()
