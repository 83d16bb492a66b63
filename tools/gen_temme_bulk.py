#!/usr/bin/env python3
"""Generate the bivariate table of the Gamma bulk path in csrc/core/igamma_bulk.h.

In Temme's region (large a, x near a) the implicit gradient of a Gamma(a, 1) sample is, with
lambda = x/a, mu = lambda - 1, eta^2/2 = mu - log(lambda), rho = mu/eta, w = 1/a (csrc/core/igamma.h,
temme_dlogx):
    dx/da = lambda Gamma*(a) [rho - eta/2 + (log lambda - w/2) sum_k C_k(eta) w^k
                              - w sum_k w^k (rho C_k'(eta) + k C_k(eta))].
Every factor is analytic in v = (x - a)/(x + a) = mu/(2 + mu) on |v| < 1 (lambda = (1+v)/(1-v),
log lambda = 2 atanh v), and Gamma*(a) = sum_j g_j w^j, so
    dx/da = G(v, w) = sum_m w^m sum_n c[m][n] v^n,
a polynomial once truncated: no log, sqrt, exp or branch, two divisions for v and w. Here the C_k are
generated directly as power series in v from Temme's recurrence (DLMF 8.12.9)
    C_0 = 1/mu - 1/eta,  C_k = (1/eta) dC_{k-1}/deta + (-1)^k g_k / mu,
whose 1/v poles cancel (checked), with mpmath at high precision. Nothing is copied from elsewhere.

Usage: python tools/gen_temme_bulk.py [M=20] [N=72]   (table rows/terms generated before truncation)   (C++ on stdout, checks on stderr)
The check compares G against gradkern.reference.gamma (mpmath ground truth) at a few points and
prints the truncation tails used to choose the tiers in igamma_bulk.h.
"""
import os
import sys

import mpmath as mp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_temme_coeffs import ser_inv, ser_mul, ser_sqrt, stirling_g  # noqa: E402

mp.mp.dps = 120


def deriv(p):
    return [i * p[i] for i in range(1, len(p))] + [mp.mpf(0)]


def add(p, q):
    return [x + y for x, y in zip(p, q)]


def scale(p, c):
    return [c * x for x in p]


def bulk_table(M, N):
    L = N + 2 * M + 8  # each recurrence step loses one term (derivative) and one (pole shift)
    one_minus_v_inv = [mp.mpf(1)] * L  # 1/(1-v)
    mu_over_v = scale(one_minus_v_inv, 2)  # mu = 2v/(1-v)
    lam = [mp.mpf(1)] + [mp.mpf(0)] * (L - 1)
    lam = add(lam, [mp.mpf(0)] + mu_over_v[:L - 1])
    loglam = [mp.mpf(0)] * L
    for n in range(1, L, 2):
        loglam[n] = mp.mpf(2) / n
    # eta^2 = 2 (mu - log lambda); (eta/v)^2 = 2 (mu - log lambda) / v^2, leading coefficient 4
    e2 = add([mp.mpf(0)] + mu_over_v[:L - 1], scale(loglam, -1))
    assert abs(e2[0]) < mp.mpf(10) ** -100 and abs(e2[1]) < mp.mpf(10) ** -100
    e2_over_v2 = [2 * c for c in e2[2:]] + [mp.mpf(0)] * 2
    eta_over_v = scale(ser_sqrt(scale(e2_over_v2, mp.mpf(1) / 4), L), 2)  # eta/v = 2 sqrt(1 + ...)
    eta = [mp.mpf(0)] + eta_over_v[:L - 1]
    deta_inv = ser_inv(deriv(eta), L)  # 1/(d eta/dv)
    inv_eta_over_v = ser_inv(eta_over_v, L)  # v/eta
    rho = ser_mul(mu_over_v, inv_eta_over_v, L)  # mu/eta
    inv_mu_times_v = [mp.mpf(1) / 2, -mp.mpf(1) / 2] + [mp.mpf(0)] * (L - 2)  # v/mu = (1-v)/2
    g = stirling_g(M + 2)

    # C_0 = (v/mu - v/eta) / v
    num = add(inv_mu_times_v, scale(inv_eta_over_v, -1))
    assert abs(num[0]) < mp.mpf(10) ** -100
    C = [num[1:] + [mp.mpf(0)]]
    for k in range(1, M + 1):
        dC_deta = ser_mul(deriv(C[-1]), deta_inv, L)
        num = add(ser_mul(inv_eta_over_v, dC_deta, L), scale(inv_mu_times_v, (-1) ** k * g[k]))
        assert abs(num[0]) < mp.mpf(10) ** -80, (k, num[0])
        C.append(num[1:] + [mp.mpf(0)])
    Cp = [ser_mul(deriv(c), deta_inv, L) for c in C]  # dC_k/deta
    # br = sum_m w^m B[m]
    B = []
    for m in range(M + 1):
        b = ser_mul(loglam, C[m], L)
        if m == 0:
            b = add(b, add(rho, scale(eta, -mp.mpf(1) / 2)))
        else:
            b = add(b, scale(C[m - 1], -(mp.mpf(1) / 2 + (m - 1))))
            b = add(b, scale(ser_mul(rho, Cp[m - 1], L), -1))
        B.append(ser_mul(lam, b, L))
    # times Gamma*(a) = sum_j g_j w^j
    G = []
    for m in range(M + 1):
        acc = [mp.mpf(0)] * L
        for j in range(m + 1):
            acc = add(acc, scale(B[m - j], g[j]))
        G.append(acc[:N])
    return G


def evaluate(G, a, x, M=None, N=None):
    a = mp.mpf(a); x = mp.mpf(x)
    v = (x - a) / (x + a); w = 1 / a
    M = len(G) if M is None else M
    return sum(w ** m * sum(c * v ** n for n, c in enumerate(G[m][:N])) for m in range(M))


# Tiers (name, dtype eps, a_min, v_max): the bulk path is taken for a >= a_min and |v| <= v_max of the
# element's tier (the tier depends on a alone, so neighbouring elements never change a result). v_max
# covers the bulk: |v| ~ |z| / (2 sqrt(a)) for a sample z standard deviations from the mean, so v_max =
# 0.16 at a = 400 is 6.4 sd, 0.4 at a = 40 is 5 sd, 0.5 at a = 10 is 3.2 sd (x >= a/3: the rest, 0.4% of
# Gamma(10) samples, take the series/CF/Temme branches).
TIERS = [
    ("double", 2.0 ** -53, 400, 0.16),
    ("double", 2.0 ** -53, 40, 0.4),
    ("double", 2.0 ** -53, 10, 0.5),
    ("float", 2.0 ** -24, 100, 0.35),
    ("float", 2.0 ** -24, 10, 0.5),
]


def row_lengths(G, eps, a_min, v_max):
    """Rows m < M and lengths N_m such that the dropped terms sum to at most eps/4 relative to
    min |dx/da| over the tier (>= 0.5 there; checked below)."""
    tol = mp.mpf(eps) / 8
    w = mp.mpf(1) / a_min
    v = mp.mpf(v_max)
    lens = []
    for m, row in enumerate(G):
        tail = [abs(c) * v ** n * w ** m for n, c in enumerate(row)]
        if sum(tail) <= tol:
            # this row and (the table's decay says) every later row are negligible
            rest = sum(sum(abs(c) * v ** n for n, c in enumerate(r)) * w ** mm for mm, r in enumerate(G) if mm > m)
            assert rest <= tol, (a_min, v_max, m, rest)
            return lens
        n = len(row)
        acc = mp.mpf(0)
        while n > 1 and acc + tail[n - 1] <= tol / len(G):
            acc += tail[n - 1]
            n -= 1
        assert n < len(row), ("table too short", a_min, v_max, m)
        lens.append(n)
    raise AssertionError(("too few rows", a_min, v_max))


def main():
    M = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    N = int(sys.argv[2]) if len(sys.argv) > 2 else 72
    G = bulk_table(M, N)
    try:
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        from gradkern.reference.gamma import standard_gamma_grad as ref
        for a, x in [(1000, 1010), (1000, 900), (100, 130), (100, 70), (20, 28), (20, 12), (10, 14), (10, 7)]:
            r = ref(a, x)
            got = evaluate(G, a, x)
            print(f"// check a={a} x={x}: dx/da={mp.nstr(r, 17)} rel err {mp.nstr(abs(got - r) / abs(r), 3)}",
                  file=sys.stderr)
    except ImportError as e:  # pragma: no cover
        print(f"// (no reference check: {e})", file=sys.stderr)
    tiers = []
    for dtype, eps, a_min, v_max in TIERS:
        lens = row_lengths(G, eps, a_min, v_max)
        gmin = min(abs(evaluate(G, a_min, a_min * (1 + s * v_max) / (1 - s * v_max))) for s in (-1, 1))
        assert gmin >= 0.5, gmin
        tiers.append((dtype, a_min, v_max, lens))
        print(f"// tier {dtype} a >= {a_min} |v| <= {v_max}: rows {len(lens)}, lengths {lens}, "
              f"{sum(lens)} coefficients", file=sys.stderr)
    width = max(max(t[3]) for t in tiers)
    rows = max(len(t[3]) for t in tiers)
    M, N = rows - 1, width
    print(f"// Generated by tools/gen_temme_bulk.py (mpmath, dps={mp.mp.dps}). Do not edit.")
    for i, (dtype, a_min, v_max, lens) in enumerate(tiers):
        print(f"// tier {dtype} a >= {a_min}, |v| <= {v_max}: row lengths {lens}")
    # Per-type tier structs: the tier is chosen from a alone (largest a_min first).
    for dtype in ("double", "float"):
        ts = [t for t in tiers if t[0] == dtype]
        suf = "" if dtype == "double" else "f"
        cond = " : ".join(f"a >= {t[1]}.0{suf} ? {i}" for i, t in enumerate(ts)) + " : -1"
        vm = " : ".join(f"tier == {i} ? {t[2]}{suf}" for i, t in enumerate(ts[:-1])) + f" : {ts[-1][2]}{suf}"
        print(f"template <> struct tiers<{dtype}> {{")
        print(f"  static constexpr int count = {len(ts)};")
        print(f"  GK_HD static int of({dtype} a) {{ return {cond}; }}")
        print(f"  GK_HD static {dtype} v_max(int tier) {{ return {vm}; }}")
        am = " : ".join(f"tier == {i} ? {t[1]}.0{suf}" for i, t in enumerate(ts[:-1])) + f" : {ts[-1][1]}.0{suf}"
        print(f"  GK_HD static {dtype} a_min(int tier) {{ return {am}; }}")
        print("};")
        for i, t in enumerate(ts):
            print(f"template <> struct shape<{dtype}, {i}> {{  // a >= {t[1]}, |v| <= {t[2]}")
            print(f"  static constexpr int rows = {len(t[3])};")
            print(f"  GK_HD static constexpr int len(int m) {{")
            print(f"    constexpr int l[{len(t[3])}] = {{{', '.join(map(str, t[3]))}}};")
            print("    return l[m];")
            print("  }")
            print("};")
    print(f"// GK_TEMME_BULK_TABLE[m][n]: dx/da = sum_m a^-m sum_n GK_TEMME_BULK_TABLE[m][n] v^n")
    print(f"#define GK_TEMME_BULK_M {M + 1}")
    print(f"#define GK_TEMME_BULK_N {N}")
    print("#define GK_TEMME_BULK_TABLE \\")
    print("  { \\")
    for m in range(M + 1):
        print("    {" + ", ".join(mp.nstr(c, 20, min_fixed=0, max_fixed=0) for c in G[m][:N]) + "}, \\")
    print("  }")


if __name__ == "__main__":
    main()
