#!/usr/bin/env python3
"""Generate tests/data/vonmises_d2_ref.csv: mpmath ground truth for the second derivatives in the concentration
(csrc/core/vonmises_cdf.h, WANT_D2; issue 15), on the points of tests/data/vonmises_ref.csv (the first-order grid).

Columns: set,x,kappa,Fkk,g1,scale
  set, x, kappa: copied from vonmises_ref.csv (every 10th point of the paper grid; every point of the extended
  domain, kappa 1e-6..1e6 down to the 1e-10 tail quantiles, x at 0, +-pi and wrapped; the 'far' points beyond
  the 1e-10 quantiles are left out).
  Fkk = d2F/dkappa2 at fixed x; g1 = d/dkappa of the implicit gradient g = dx/dkappa at fixed x; scale =
  |Fkk| / q + |g (cos x - r1)|, the sizes of the two terms of g1 = -Fkk / q - g (cos x - r1) (where g1 crosses
  zero it is small against them, and its error is measured relative to the scale there).
Reference values: gradkern/reference/vonmises.py (_all2: the series differentiated twice for kappa <= 50 at
raised precision, tail / central integrals above), 40 digits, written with 20 significant digits.
Usage: nice -n 10 python tools/gen_vonmises_d2_ref.py [out.csv]
"""
import csv
import os
import sys

import mpmath as mp
from tqdm import tqdm

HERE = os.path.dirname(os.path.abspath(__file__))


sys.path.insert(0, HERE)
from _standalone_reference import load  # noqa: E402

ref = load("vonmises")


def main():
    src = os.path.join(HERE, "..", "tests", "data", "vonmises_ref.csv")
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "tests", "data", "vonmises_d2_ref.csv")
    rows = []
    with open(src) as fh:
        for i, r in enumerate(csv.DictReader(fh)):
            if r["set"] == "far" or (r["set"] == "paper" and i % 10):
                continue
            rows.append((r["set"], r["x"], r["kappa"]))
    fmt = lambda v: mp.nstr(v, 20, min_fixed=0, max_fixed=0)  # noqa: E731
    with open(path, "w") as fh:
        fh.write("set,x,kappa,Fkk,g1,scale\n")
        for s, x, k in tqdm(rows, desc="von Mises d2 reference"):
            fkk, g1, scale = ref._all2(float(x), float(k))
            fh.write(f"{s},{x},{k},{fmt(fkk)},{fmt(g1)},{fmt(scale)}\n")


if __name__ == "__main__":
    main()
