#!/usr/bin/env python3
"""Generate tests/data/igamma_ref.csv (mpmath ground truth for tests/native/test_igamma.cpp).

Columns: set,a,x,P,Q,dpda,dxda,logx,dlogxda
  set: 0 = paper grid (a in {1e-2..1e3}, 1000 Gamma(a) samples each (numpy, seed 1234),
           float32-rounded and clamped below at the smallest normal float, as torch does),
       1 = extended domain (a 1e-6..1e8, quantiles 1e-10..1-1e-10), 2 = branch boundaries / special,
       3 = double-only inputs (not representable in float; the float check skips them).
  a, x, logx are float32-representable (except set 3) and written exactly (repr of the double).
  dlogxda = d(log x)/da at x = exp(logx) (log-space entry point); logx = nan when not tested.
Reference values are computed by gradkern/reference/gamma.py at 40 digits and written with 20
significant digits. Usage: nice -n 10 python tools/gen_igamma_ref.py [out.csv]
"""
import math
import os
import sys

import numpy as np
import mpmath as mp
from scipy import special as sps

def _load_ref():
    # Load the reference module by path: importing the gradkern package needs the built extension.
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "gradkern", "reference", "gamma.py")
    spec = importlib.util.spec_from_file_location("gradkern_reference_gamma", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ref = _load_ref()


def f32(v):
    return float(np.float32(v))


def rows_paper(seed=1234):
    rng = np.random.default_rng(seed)
    out = []
    for a in [1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0]:
        x = rng.gamma(a, size=1000).astype(np.float32)
        x = np.maximum(x, np.float32(1.17549435e-38))  # torch clamps samples to the smallest normal
        for xi in x:
            out.append((0, f32(a), float(xi), True))
    return out


def rows_extended():
    out = []
    avals = [f32(v) for v in np.logspace(-6, 8, 29)]
    qs = list(np.logspace(-10, math.log10(0.5), 12))
    for a in avals:
        for q in qs:
            for lower in (True, False):
                p = q if lower else 1 - q
                if lower:
                    x = float(sps.gammaincinv(a, q))
                else:
                    x = float(sps.gammainccinv(a, q))
                # log-space point: log x of the quantile (small-a lower tail underflows in x)
                if lower and (x == 0 or x < 1e-300):
                    lx = (math.log(q) + float(sps.gammaln(a + 1))) / a
                elif x > 0:
                    lx = math.log(x)
                else:
                    continue
                out.append((1, a, f32(x), f32(lx), True))
    return out


def rows_special():
    out = []
    # Temme boundary a = 20 (both sides), |eta| = 1 boundary, series/CF boundary x = a + 1.
    for a in [19.5, 20.0, 20.5, 25.0, 50.0, 200.0]:
        for lam in [0.25, 0.3, 0.35, 0.4, 0.6, 0.9, 1.0, 1.1, 1.5, 2.0, 2.2, 2.4, 2.6, 3.0]:
            out.append((2, f32(a), f32(a * lam), True))
    for a in [1e-6, 1e-3, 0.3, 0.9, 1.0, 2.0, 5.0, 9.9, 10.0, 10.1, 15.0]:
        for dx in [-0.5, -0.01, 0.0, 0.01, 0.5]:
            x = a + 1 + dx
            out.append((2, f32(a), f32(x), True))
    # x near 0 (float denormals, tiny normals) and huge x
    for a in [1e-6, 1e-2, 0.5, 1.0, 3.0, 30.0]:
        for x in [1.4e-45, 1e-40, 1e-38, 1e-20, 1e-8, 50.0, 80.0, 120.0, 1e3]:
            out.append((2, f32(a), f32(x), True))
    # far right tail (asymptotic CF branch x >> a), float-representable
    for a in [1e-3, 0.5, 2.0, 100.0]:
        for x in [1e7, 1e12, 1e30]:
            out.append((2, f32(a), f32(x), True))
    # double-only: denormal doubles, very small x
    for a in [1e-6, 1e-2, 0.5, 2.0]:
        for x in [5e-324, 1e-310, 1e-300, 1e-200]:
            out.append((3, a, x, True))
    return out


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(__file__), "..", "tests", "data", "igamma_ref.csv")
    rows = []
    for s, a, x, _ in rows_paper():
        rows.append((s, a, x, math.log(x) if x > 0 else float("nan")))
    for s, a, x, lx, _ in rows_extended():
        rows.append((s, a, x, lx))
    for s, a, x, _ in rows_special():
        rows.append((s, a, x, math.log(x) if x > 0 else float("nan")))
    mp.mp.dps = 40
    with open(path, "w") as fh:
        fh.write("set,a,x,P,Q,dpda,dxda,logx,dlogxda\n")
        for i, (s, a, x, lx) in enumerate(rows):
            if x > 0:
                P = ref.gammainc_p(a, x)
                Q = ref.gammainc_q(a, x)
                dxda = ref.standard_gamma_grad(a, x)
                with mp.workdps(40):
                    # dP/da = -(dx/da) q(x)
                    dp = -dxda * mp.exp(ref.log_q(mp.mpf(a), mp.mpf(x)))
            else:
                P, Q, dxda, dp = mp.mpf(0), mp.mpf(1), mp.mpf(0), mp.mpf(0)
            dl = ref.log_standard_gamma_grad(a, lx) if lx == lx else float("nan")
            vals = [mp.nstr(v, 20, min_fixed=0, max_fixed=0) if not isinstance(v, float) else repr(v)
                    for v in (P, Q, dp, dxda, dl)]
            fh.write(f"{s},{a!r},{x!r},{vals[0]},{vals[1]},{vals[2]},{vals[3]},{lx!r},{vals[4]}\n")
            if i % 500 == 0:
                print(i, len(rows), file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
