"""Coefficients of the branch-free erfc of csrc/cpu/vecmath.h (erfc_nonneg).

For t >= 0, erfc(t) = exp(-t^2) h(y) / (1 + 2 t) with y = (t - K) / (t + K) in [-1, 1) and K = 3 (the
mapping of Schonfelder 1978, "Chebyshev expansions for the error and related functions"): h is smooth on
[-1, 1] (h(-1) = 1, h -> 2 / sqrt(pi) as t -> inf), so one polynomial in y covers every t >= 0 with no branch.
mpmath.chebyfit gives the degree-22 fit (power basis, highest degree first); the script prints it as a C++
table and the maximum relative error of the fit on a dense grid (6.5e-16 here, in double Horner: below
double's roundings of the rest of the formula). With a degree argument, the shorter fit of erfc_nonneg_narrow
(degree 13: 2.1e-10, for results rounded to float or narrower).

    python tools/gen_erfcx_fit.py        # erfc_nonneg's kFit
    python tools/gen_erfcx_fit.py 13     # erfc_nonneg_narrow's kFitNarrow
"""
import sys

import mpmath as mp

K = 3
DEGREE = 22


def h(y):
    t = K * (1 + y) / (1 - y)
    return mp.erfc(t) * mp.exp(t * t) * (1 + 2 * t)


def main(degree=DEGREE):
    mp.mp.dps = 50
    coeffs = mp.chebyfit(h, [-1, 1 - mp.mpf(10) ** -30], degree + 1)
    print(f"static constexpr double kErfcxFit[{degree + 1}] = {{")
    for c in coeffs:
        print(f"    {float(c)!r},")
    print("};")
    worst = 0.0
    for i in range(4001):
        y = -1 + mp.mpf(2) * i / 4001
        s = 0.0
        for c in coeffs:
            s = s * float(y) + float(c)
        worst = max(worst, abs(s / float(h(y)) - 1))
    print(f"// max relative error, double Horner: {worst:.3g}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else DEGREE)
