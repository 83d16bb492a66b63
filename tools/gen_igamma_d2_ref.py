#!/usr/bin/env python3
"""Generate tests/data/igamma_d2_ref.csv: mpmath ground truth for the second derivatives in the shape
(csrc/core/igamma_d2.h; issue 15), on the points of tests/data/igamma_ref.csv (the first-order grid).

Columns: set,a,x,logx,d2pda2,dgda,dhda,scale
  set, a, x, logx: copied from igamma_ref.csv (every 20th point of the paper grid, set 0; every point of the
  extended domain, the branch boundaries and the double-only inputs, sets 1-3; rows with x = 0 or x = inf
  are left to the special-value tests).
  d2pda2 = d2P/da2 at (a, x); dgda = d/da standard_gamma_grad(a, x) at fixed x; dhda = d/da
  log_standard_gamma_grad(a, logx) at fixed logx (nan where logx is not tested); scale = x q (|D| +
  |h (log x - psi(a))|), the sum of the sizes of the two parts of d2P/da2 = -x q (D + h (log x - psi(a)))
  (h = (dx/da)/x, D = dh/da): where d2P/da2 crosses zero it is small against them, and a relative error is
  measured against the scale instead.
Reference values: gradkern/reference/gamma.py (tail integrals of the density's second a-derivative,
mpmath.diff of mpmath.gammainc for a <= 1e4, the tail integral of the density's second a-derivative above),
40 digits, written with 20 significant digits.
Usage: nice -n 10 python tools/gen_igamma_d2_ref.py [out.csv]
"""
import csv
import math
import os
import sys

import mpmath as mp
from tqdm import tqdm

HERE = os.path.dirname(os.path.abspath(__file__))


sys.path.insert(0, HERE)
from _standalone_reference import load  # noqa: E402

ref = load("gamma")


def main():
    src = os.path.join(HERE, "..", "tests", "data", "igamma_ref.csv")
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "tests", "data", "igamma_d2_ref.csv")
    rows = []
    with open(src) as fh:
        for i, r in enumerate(csv.DictReader(fh)):
            x = float(r["x"])
            if not (0 < x < math.inf):
                continue
            if r["set"] == "0" and i % 20:
                continue
            rows.append((r["set"], r["a"], r["x"], r["logx"]))
    fmt = lambda v: mp.nstr(v, 20, min_fixed=0, max_fixed=0)  # noqa: E731
    with open(path, "w") as fh:
        fh.write("set,a,x,logx,d2pda2,dgda,dhda,scale\n")
        for s, a, x, lx in tqdm(rows, desc="igamma d2 reference"):
            af, xf, lxf = float(a), float(x), float(lx)
            d2, p1, p2 = ref.second_order_parts(af, xf)
            dg = ref.standard_gamma_grad_dalpha(af, xf)
            dh = fmt(ref.log_standard_gamma_grad_dalpha(af, lxf)) if lxf == lxf else "nan"
            fh.write(f"{s},{a},{x},{lx},{fmt(d2)},{fmt(dg)},{dh},{fmt(p1 + p2)}\n")


if __name__ == "__main__":
    main()
