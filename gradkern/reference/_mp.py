"""Shared pieces of the mpmath references: a lazy mpmath import and the Gauss-Legendre rule whose
nodes csrc/core/vonmises_cdf.h and csrc/core/copula.h carry as constants (tools/gen_gauss_legendre.py prints
them). Kept free of torch and of the compiled extension so tools/ can load it by path."""

_mp = None


def mpm():
    """mpmath, imported on first use (a test/bench dependency, not a runtime one)."""
    global _mp
    if _mp is None:
        import mpmath

        _mp = mpmath
    return _mp


def gauss_legendre_table(n, dps=50):
    """Positive half of the n-point Gauss-Legendre rule on [-1, 1] (n even): [(x_i, w_i)].

    Roots of P_n by Newton from cos(pi (i - 1/4) / (n + 1/2)) (capped at 100 steps), weights
    2 / ((1 - x^2) P_n'(x)^2), at `dps` digits."""
    mp = mpm()
    with mp.workdps(dps):
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
            nodes.append((x, 2 / ((1 - x * x) * dp * dp)))
        return nodes
