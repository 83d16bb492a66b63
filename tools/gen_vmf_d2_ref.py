#!/usr/bin/env python3
"""Generate tests/data/vmf_d2_ref.csv: mpmath ground truth for the second derivative in the concentration of the
vMF implicit gradient (vmf_grad_u_dkappa, csrc/core/vmf.h; issue 15), on the points of tests/data/vmf_ref.csv.

Columns: d, kappa, u (copied), g1 = d/dkappa du/dkappa at fixed u, scale = the sum of the sizes of the three terms
of g1 = (I0 J2 - J0 I2) / D - G (I1 - J1) / D (gradkern/reference/vmf.py grad_u_dkappa; tanh-sinh quadrature at
30 digits): where g1 crosses zero it is small against them, and its error is measured relative to the scale.
Rows with kappa = 0 are kept (the uniform limit).

    nice -n 10 python tools/gen_vmf_d2_ref.py [out.csv]
"""
import os
import sys

from tqdm import tqdm

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _standalone_reference import load  # noqa: E402

ref = load("vmf")


def main():
    src = os.path.join(HERE, "..", "tests", "data", "vmf_ref.csv")
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "tests", "data", "vmf_d2_ref.csv")
    rows = []
    with open(src) as fh:
        for line in fh:
            if line.startswith("#"):
                continue
            d, k, u = line.split(",")[:3]
            rows.append((int(d), float(k), float(u)))
    with open(path, "w") as fh:
        fh.write("d,kappa,u,g1,scale\n")
        for d, k, u in tqdm(rows, desc="vmf d2 reference"):
            g1, scale = ref.grad_u_dkappa(k, d, u)
            fh.write(f"{d},{k!r},{u!r},{float(g1)!r},{float(scale)!r}\n")


if __name__ == "__main__":
    main()
