"""Reference values for tests/native/test_copula.cpp and tests/test_copulas.py (csrc/core/copula.h).

Usage: python tools/gen_copula_ref.py > /tmp/ref.txt   (paste the printed C++ tables into the test)

All values with mpmath at high precision, each from a definition independent of the code under test:
* bivariate normal CDF: int_{-inf}^h phi(x) Phi((k - r x) / sqrt(1 - r^2)) dx, with the quadrature split at
  the kink x = k / r (where the inner CDF switches on steeply for |r| near 1);
* Dirichlet copula rho: eq. 8 of Dimitriev & Zhou 2021 as printed, at 700 digits (it cancels badly in
  floating point, which is why the core uses another form);
* Gaussian copula rho: (Phi2(h, h; -1/(n-1)) - p^2) / (p (1 - p)) with Phi2 from the same quadrature
  at 60 digits and h = Phi^-1(p) by root finding.
"""
import mpmath as mp


def bvn(h, k, r, dps=40):
    with mp.workdps(dps):
        h, k, r = mp.mpf(h), mp.mpf(k), mp.mpf(r)
        if abs(r) == 1:
            return mp.ncdf(min(h, k)) if r > 0 else max(mp.mpf(0), mp.ncdf(h) - mp.ncdf(-k))
        s = mp.sqrt(1 - r * r)
        # Below min(h, 0) - 12 the integrand is < phi(12) relative to its peak; in the far tail the peak is
        # narrow, so break the range every 0.05 (tanh-sinh then converges to all digits; checked against
        # 0.25 spacing and an independent integral).
        lo = min(h, mp.mpf(0)) - 12
        pts = {lo, h}
        if h < -5:
            pts.update(lo + mp.mpf(i) / 20 for i in range(1, int((h - lo) * 20)))
        if h > 0:
            pts.add(mp.mpf(0))
        if r != 0:
            kink = k / r
            w = 10 * s / abs(r)
            for x in (kink - w, kink, kink + w):
                if lo < x < h:
                    pts.add(x)
        return mp.quad(lambda x: mp.npdf(x) * mp.ncdf((k - r * x) / s), sorted(pts))


def dirichlet_rho(p, n, mode):
    with mp.workdps(700):
        p = mp.mpf(p)
        k = n - 1
        s = {1: 1 - p, 2: p, 0: (1 - p) if p >= 0.5 else p}[mode]
        t = max(mp.mpf(0), 2 * s ** (mp.mpf(1) / k) - 1) ** k
        return (t - s * s) / (s * (1 - s))


def gaussian_rho(p, n):
    with mp.workdps(60):
        p = mp.mpf(p)
        # Newton on log Phi(x) = log p (well scaled in the tail), started from the tail asymptote.
        x0 = -mp.sqrt(-2 * mp.log(p)) if p < 0.5 else mp.mpf(0)
        h = mp.findroot(lambda x: mp.log(mp.ncdf(x)) - mp.log(p), x0)
        return (bvn(h, h, -mp.mpf(1) / (n - 1), dps=60) - p * p) / (p * (1 - p))


BVN_CASES = [(0.3, -0.2, 0.5), (-1.5, 2.0, -0.7), (1.0, 1.0, 0.999), (-3.0, -3.0, 0.95), (2.0, -1.0, -0.95),
             (0.5, 0.5000001, 0.99), (-2.0, 1.0, 0.0), (4.0, 3.5, -0.3), (0.7, -0.5, -0.999999), (0.0, 0.0, -0.5),
             (1.2, -0.4, 1.0), (1.2, -0.4, -1.0)]
DIR_CASES = [(p, n, mode) for p in (1e-300, 1e-8, 0.01, 0.3, 0.5, 0.9, 1 - 1e-8) for n in (2, 3, 10, 10**6)
             for mode in (0, 1, 2)]
# (1e-30, 1e5) is left out: there Phi2 - p^2 cancels 5 digits and the quadrature above stops at ~1e-10.
GAUSS_CASES = [(p, n) for p in (1e-30, 1e-6, 0.05, 0.3, 0.5, 0.8) for n in (3, 4, 10, 100, 10**5)
               if (p, n) != (1e-30, 10**5)]


def main():
    print("// tools/gen_copula_ref.py: {h, k, r, Phi2(h, k; r)}")
    print("const double kBvn[][4] = {")
    for h, k, r in BVN_CASES:
        print(f"    {{{h!r}, {k!r}, {r!r}, {mp.nstr(bvn(h, k, r), 20)}}},")
    print("};")
    print("// {p, n, mode, rho}")
    print("const double kDirichletRho[][4] = {")
    for p, n, mode in DIR_CASES:
        print(f"    {{{p!r}, {n}, {mode}, {mp.nstr(dirichlet_rho(p, n, mode), 20)}}},")
    print("};")
    print("// {p, n, rho}")
    print("const double kGaussianRho[][3] = {")
    for p, n in GAUSS_CASES:
        print(f"    {{{p!r}, {n}, {mp.nstr(gaussian_rho(p, n), 20)}}},")
    print("};")


if __name__ == "__main__":
    main()
