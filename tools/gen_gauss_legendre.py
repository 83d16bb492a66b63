"""Generate the Gauss-Legendre nodes and weights used by csrc/core/copula.h (bivariate normal CDF and
the Gaussian-copula correlation integrals).

Usage: python tools/gen_gauss_legendre.py [N]   (default N = 20)

Prints the N/2 positive nodes x_i of the N-point rule on [-1, 1] and their weights w_i, to 20
significant digits (the rule is symmetric: -x_i carries the same weight). Computed with mpmath at 50
digits: roots of P_N by Newton from the Chebyshev-like initial guess cos(pi (i - 1/4) / (N + 1/2)),
weights 2 / ((1 - x^2) P_N'(x)^2).
"""
import sys

import mpmath as mp


def gauss_legendre(n, dps=50):
    mp.mp.dps = dps
    nodes = []
    for i in range(1, n // 2 + 1):
        x = mp.cos(mp.pi * (i - mp.mpf(1) / 4) / (n + mp.mpf(1) / 2))
        for _ in range(100):
            p = mp.legendre(n, x)
            dp = n * (x * p - mp.legendre(n - 1, x)) / (x * x - 1)
            dx = p / dp
            x -= dx
            if abs(dx) < mp.mpf(10) ** (-dps + 5):
                break
        dp = n * (x * mp.legendre(n, x) - mp.legendre(n - 1, x)) / (x * x - 1)
        w = 2 / ((1 - x * x) * dp * dp)
        nodes.append((x, w))
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
