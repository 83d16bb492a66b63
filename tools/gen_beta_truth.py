#!/usr/bin/env python3
"""Generate bench/data/beta_truth.npz, the mpmath ground truth of bench/beta.py.

The inputs are bench/beta.py's own (grid_inputs / stress_inputs): the grid (a, b) in {0.1, 1, 10, 100}^2
with 500 NumPy Beta samples each (seed 14), and the stress set (six extreme (a, b) at nine quantiles, x the
exact quantile from gradkern/reference/beta.py's betaincinv), each rounded to float32 and to float64. For
each of the four tables the file holds a, b, x exactly as generated (in their dtype; q for the stress set),
dx/da and dx/db from gradkern/reference/beta.py at 30 digits rounded to float64, and a JSON key (grid,
seed, sample count, dtype, digits) plus the reference's source hash and the mpmath version. After computing,
up to 400 random points are recomputed at 40 digits, and the reference's self-check (closed forms at
a = 1 or b = 1, quadrature of the integral definition) is run; the largest differences are printed and
stored.
bench/beta.py refuses the file when its inputs or key differ from what it generates, and recomputes a
random subset with mpmath on every run.

Run it after changing the grid, the seed, the sampling, the precision or gradkern/reference/beta.py:
under a minute on one process (16,070 points, a progress bar per table); a rerun gives the same bits.

    python tools/gen_beta_truth.py [--processes N] [--out PATH]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
import beta  # noqa: E402  (bench/beta.py)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--processes", type=int, default=1, help="mpmath worker processes (default 1)")
    ap.add_argument("--out", default=beta.TRUTH_FILE, help="output .npz (default: bench/data/beta_truth.npz)")
    args = ap.parse_args(argv)
    beta.regenerate_truth(args.processes, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
