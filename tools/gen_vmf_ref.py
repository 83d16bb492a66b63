#!/usr/bin/env python3
"""Generate tests/data/vmf_ref.csv, the mpmath ground truth of tests/test_vmf.py.

Grid: d in {2, 3, 5, 10, 50, 200, 1000} x kappa in {0, 1e-3, 1e-1, 1, 10, 1e2, 1e3, 1e4} (and 1e6 for d = 3,
10), and for each the points u = 1 - mu^T z at the mean + {-4, -2, -1, 0, 1, 2, 4, 8} standard deviations
(inside (0, 2)) and at 1e-1, 1e-2, 1e-4 times the mean (the lower tail: quantiles down to ~1e-300 for large
d), every input rounded to float32 (so the float32 and float64 checks share them). Columns: d, kappa, u,
the CDF P(U <= u), du/dkappa, log Z_u, E[u], Var[u] from gradkern/reference/vmf.py (moments from Bessel
functions at 50 digits, the CDF and gradient by tanh-sinh quadrature at 30 digits), as float64 reprs.

    python tools/gen_vmf_ref.py [--out tests/data/vmf_ref.csv]     (about 5 minutes, one process)
"""
import argparse
import importlib.util
import os
import sys
import types

import numpy as np
from tqdm import tqdm

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.join(HERE, "..", "gradkern", "reference")


def _load_reference():
    # by path: importing the gradkern package would need the compiled extension
    pkg = types.ModuleType("gkref")
    pkg.__path__ = [REF]
    sys.modules["gkref"] = pkg
    for name in ("_mp", "vmf"):
        spec = importlib.util.spec_from_file_location(f"gkref.{name}", os.path.join(REF, f"{name}.py"))
        mod = importlib.util.module_from_spec(spec)
        sys.modules[f"gkref.{name}"] = mod
        spec.loader.exec_module(mod)
    return sys.modules["gkref.vmf"]


def grid():
    ds = (2, 3, 5, 10, 50, 200, 1000)
    kappas = (0.0, 1e-3, 1e-1, 1.0, 10.0, 1e2, 1e3, 1e4)
    for d in ds:
        for k in kappas + ((1e6,) if d in (3, 10) else ()):
            yield d, float(np.float32(k))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(HERE, "..", "tests", "data", "vmf_ref.csv"))
    args = ap.parse_args(argv)
    vmf = _load_reference()
    import mpmath as mp

    rows = []
    for d, k in tqdm(list(grid()), desc="vmf reference"):
        log_z, mean, var = vmf.moments(k, d, dps=50)
        sd = mp.sqrt(var)
        us = [mean + z * sd for z in (-4, -2, -1, 0, 1, 2, 4, 8)] + [mean * f for f in (1e-1, 1e-2, 1e-4)]
        us = sorted({float(np.float32(float(u))) for u in us if 0 < u < 2})
        for u in us:
            if not 0 < u < 2:
                continue
            rows.append((d, k, u, float(vmf.cdf_u(k, d, u)), float(vmf.grad_u(k, d, u)), float(log_z),
                         float(mean), float(var)))
    with open(args.out, "w") as f:
        f.write("# tools/gen_vmf_ref.py: d, kappa, u, cdf_u, grad_u, log_z, mean_u, var_u (mpmath)\n")
        for r in rows:
            f.write(",".join([str(r[0])] + [repr(x) for x in r[1:]]) + "\n")
    print(f"{len(rows)} points -> {args.out}")


if __name__ == "__main__":
    main()
