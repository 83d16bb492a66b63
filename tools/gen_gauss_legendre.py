"""Generate the Gauss-Legendre nodes and weights used by csrc/core/copula.h (bivariate normal CDF and
the Gaussian-copula correlation integrals).

Usage: python tools/gen_gauss_legendre.py [N]   (default N = 20)

Prints the N/2 positive nodes x_i of the N-point rule on [-1, 1] and their weights w_i, to 20
significant digits (the rule is symmetric: -x_i carries the same weight). Computed with mpmath at 50
digits: roots of P_N by Newton from the Chebyshev-like initial guess cos(pi (i - 1/4) / (N + 1/2)),
weights 2 / ((1 - x^2) P_N'(x)^2).
"""
import importlib.util
import os
import sys

import mpmath as mp

# The rule lives in gradkern/reference/_mp.py (shared with the von Mises reference). Load that file by
# path: importing the gradkern package would need the compiled extension.
_spec = importlib.util.spec_from_file_location(
    "gradkern_reference_mp", os.path.join(os.path.dirname(__file__), "..", "gradkern", "reference", "_mp.py"))
_ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_ref)


def gauss_legendre(n, dps=50):
    nodes = _ref.gauss_legendre_table(n, dps)
    with mp.workdps(dps):
        total = 2 * sum(w for _, w in nodes)
        assert abs(total - 2) < mp.mpf(10) ** -40, total
    return nodes


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    nodes = gauss_legendre(n)
    print(f"// {n}-point Gauss-Legendre rule on [-1, 1], positive half (tools/gen_gauss_legendre.py {n}).")
    print("static constexpr double gl_x[] = {" + ", ".join(mp.nstr(x, 20) for x, _ in nodes) + "};")
    print("static constexpr double gl_w[] = {" + ", ".join(mp.nstr(w, 20) for _, w in nodes) + "};")


if __name__ == "__main__":
    main()
