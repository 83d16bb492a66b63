#!/usr/bin/env python3
"""Generate bench/data/accuracy_truth.npz, the mpmath ground truth of bench/accuracy.py.

The inputs are bench/accuracy.py's own (its paper_grid / extended_grid: the paper's Table 2 grid,
Gamma alpha in {1e-2..1e3} and von Mises kappa in {1e-2..10} with 1000 samples each from seed 20180702,
and the stress grid), in float32 and float64. For each of the 10 tables the file holds the parameters
and points exactly as generated (in their dtype), dz/dparam from gradkern/reference/ (gamma.py at 20
digits on the paper grid, 30 on the stress grid; vonmises.py at 30) rounded to float64, and a JSON key
(grid, seed, sample count, dtype, mpmath digits) plus the reference modules' source hashes and the mpmath
version. bench/accuracy.py refuses the file when its inputs or key differ from what it generates, and
re-computes a random subset of points with mpmath on every run.

Run it after changing the grid, the seed, the sample generation, the working precision or
gradkern/reference/: about 3 minutes on 2 cores (20,847 points, a progress bar per table); the values come out
bit for bit the same on a rerun.

    python tools/gen_accuracy_ref.py [--processes N] [--out PATH]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
import accuracy  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--processes", type=int, default=min(2, os.cpu_count() or 1),
                    help="mpmath worker processes (default: min(2, cores))")
    ap.add_argument("--out", default=accuracy.TRUTH_FILE, help="output .npz (default: bench/data/accuracy_truth.npz)")
    args = ap.parse_args(argv)
    accuracy.regenerate_truth(args.processes, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
