"""The incomplete beta family at large parameters (a, b from 1e3 to 1e8): the quadrature of
csrc/core/ibeta_quad.h against the mpmath ground truth tests/data/beta_large_ref.csv
(tools/gen_beta_large_ref.py, 232 points: 14 pairs (a, b) at x = mean + k sd, k from -201 to 201), side by side
with torch's `_dirichlet_grad` (the Beta gradient torch's Beta.rsample uses) and scipy's `betainc`.

* accuracy: max relative error of I and 1 - I, dx/da, dx/db and dirichlet_grad (float64 and float32), and of
  the second derivatives against their scale (the size of the two parts of their identity, as in
  tests/test_beta_second_order.py; only where that scale is within the dtype's range); per pair (a, b) the
  float64 gradients' maximum. Before the tables, a few
  random rows are recomputed with mpmath (gradkern/reference/beta.py) and must agree to 1e-15.
* time per element of standard_beta_grad on the table's in-regime points (tiled to 2e4 elements, 1 thread)
  against torch's two _dirichlet_grad calls on the same inputs (a ratio in one process).

With --tail, the same tables for the tail quadrature's points (tests/data/beta_tail_ref.csv, tools/
gen_beta_large_ref.py --tail: one parameter from 1e4 to 1e8, the other from 0.1 to 700, x on the far side of the
mean; csrc/core/ibeta.h tail_regime), written to their own section.

With --mid, those for tests/data/beta_mid_ref.csv (the smaller parameter from 100 to 1e3, where the second order
takes the two-sided quadrature and the first order the fraction; gen_beta_large_ref.py --mid).

    python bench/beta_large.py [--tail | --mid] [--docs]
"""
import argparse
import os
import sys

import _common as C

C.limit_threads_env(1)
import numpy as np  # noqa: E402
import torch  # noqa: E402

gk, GK_NOTE = C.import_gradkern()
if gk is None:
    sys.exit(GK_NOTE)
OPS = torch.ops.gradkern
DATA = os.path.join(C.REPO, "tests", "data", "beta_large_ref.csv")
TAIL_DATA = os.path.join(C.REPO, "tests", "data", "beta_tail_ref.csv")
MID_DATA = os.path.join(C.REPO, "tests", "data", "beta_mid_ref.csv")
REGIME = 200.0  # csrc/core/ibeta_quad.h kQuadSd


def load(path=DATA):
    t = np.genfromtxt(path, delimiter=",", names=True, dtype=np.float64, encoding="ascii")
    return {n: np.ascontiguousarray(t[n]) for n in t.dtype.names}


def reverify(r, n=6, seed=0, name="beta_large_ref.csv"):
    """Recompute n random rows' I, dx/da, dx/db with mpmath: the shipped file must be what it says."""
    ref, note = C.import_reference("beta")
    if ref is None:
        sys.exit(note)
    rng = np.random.default_rng(seed)
    worst = 0.0
    for i in rng.choice(len(r["a"]), n, replace=False):
        a, b, x = r["a"][i], r["b"][i], r["x"][i]
        I, _ = ref.large_betainc(a, b, x)
        ga, gb = ref.large_standard_beta_grad(a, b, x)
        for got, want in ((float(I), r["I"][i]), (float(ga), r["ga"][i]), (float(gb), r["gb"][i])):
            if want != 0:
                worst = max(worst, abs(got / want - 1))
    if worst > 1e-15:
        sys.exit(f"tests/data/{name} disagrees with mpmath by {worst:.1e}; rerun tools/gen_beta_large_ref.py")
    return n, worst


def rel(got, want, dtype):
    floor = torch.finfo(dtype).tiny / torch.finfo(dtype).eps
    ok = np.abs(want) > floor
    return float(np.max(np.abs(got - want)[ok] / np.abs(want[ok]))) if ok.any() else 0.0


def accuracy(r, every=False):
    from scipy import special as sps

    rows, per_pair, dropped = [], {}, {}
    inreg = np.ones(len(r["k"]), bool) if every else np.abs(r["k"]) <= REGIME
    for dtype in (torch.float64, torch.float32):
        a, b, x = (torch.tensor(r[k], dtype=dtype) for k in ("a", "b", "x"))
        got = {"betainc": gk.betainc(a, b, x), "betaincc": gk.betaincc(a, b, x)}
        got["dx/da"], got["dx/db"] = gk.standard_beta_grad(a, b, x)
        total = a + b
        got["dirichlet_grad"] = OPS.dirichlet_grad(x, a, total)
        # dirichlet_grad takes total = a + b, which float32 cannot hold next to a large a for most small b
        # (beta = total - a is then another number, or 0: NaN): its rows are those where total - a is b exactly
        exact = ((total.double() - a.double()) == b.double()).numpy()
        dropped[str(dtype).split(".")[1]] = int((~exact).sum())
        want = {"betainc": r["I"], "betaincc": r["Ic"], "dx/da": r["ga"], "dx/db": r["gb"],
                "dirichlet_grad": r["ga"] / (1 - r["x"])}
        peer = {}
        if dtype == torch.float64:
            peer["betainc"] = sps.betainc(r["a"], r["b"], r["x"])
            peer["betaincc"] = sps.betaincc(r["a"], r["b"], r["x"])
            A, B, X = (torch.tensor(r[k]) for k in ("a", "b", "x"))
            peer["dx/da"] = (torch._dirichlet_grad(X, A, A + B) * (1 - X)).numpy()
            peer["dx/db"] = (-X * torch._dirichlet_grad(1 - X, B, A + B)).numpy()
            peer["dirichlet_grad"] = torch._dirichlet_grad(X, A, A + B).numpy()
        for name, v in got.items():
            v = v.double().numpy()
            keep = exact if name == "dirichlet_grad" else np.ones(len(v), bool)
            nonfinite = int((~np.isfinite(v[keep])).sum())
            p = peer.get(name)
            rows.append([name, str(dtype).split(".")[1], C.sci(rel(v[inreg & keep], want[name][inreg & keep], dtype)),
                         C.sci(rel(v[keep], want[name][keep], dtype)), str(nonfinite),
                         C.sci(rel(p, want[name], dtype)) if p is not None else "–",
                         ("scipy" if name.startswith("betainc") else "torch") if p is not None else "–"])
            if dtype == torch.float64 and name in ("dx/da", "dx/db"):
                for i, (aa, bb) in enumerate(zip(r["a"], r["b"])):
                    w = want[name][i]
                    e = abs(v[i] / w - 1) if w != 0 else 0.0
                    pe = abs(p[i] / w - 1) if w != 0 else 0.0
                    cur = per_pair.setdefault((aa, bb), [0.0, 0.0])
                    cur[0], cur[1] = max(cur[0], e), max(cur[1], pe)
        a2, b2, x2 = a, b, x
        for names, outs in ((("Iaa", "Iab", "Ibb"), OPS.betainc_grads2(a2, b2, x2)),
                            (("Gaa", "Gab", "Gba", "Gbb"), OPS.standard_beta_grad_d2(a2, b2, x2))):
            for n, v in zip(names, outs):
                v = v.double().numpy()
                s = r["s" + n]
                ok = s > torch.finfo(dtype).tiny / torch.finfo(dtype).eps  # scales the dtype can hold
                es = np.abs(v - r[n])[ok] / s[ok]
                rows.append([{"Iaa": "d2I/da2", "Iab": "d2I/(da db)", "Ibb": "d2I/db2", "Gaa": "d(dx/da)/da",
                              "Gab": "d(dx/da)/db", "Gba": "d(dx/db)/da", "Gbb": "d(dx/db)/db"}[n] + " (of its scale)",
                             str(dtype).split(".")[1], C.sci(float(es[inreg[ok]].max())), C.sci(float(es.max())),
                             str(int((~np.isfinite(v)).sum())), "–", "–"])
    first = "max rel. error" if every else "max rel. error, |k| <= 200"
    table = C.markdown_table(["function", "dtype", first, "all points", "NaN/inf",
                              "peer max rel. error", "peer"], rows, align=["l", "l", "r", "r", "r", "r", "l"])
    pair_rows = [[f"({a:g}, {b:g})", C.sci(e), C.sci(pe)] for (a, b), (e, pe) in sorted(per_pair.items())]
    pairs = C.markdown_table(["(a, b)", "gradkern dx/da, dx/db max rel. (float64)", "torch _dirichlet_grad"],
                             pair_rows)
    if any(dropped.values()):
        table += ("\n\ndirichlet_grad rows left out where a + b rounded in the dtype is not a + b exactly "
                  "(the op's beta = total - alpha is then another number): "
                  + ", ".join(f"{d} {n}" for d, n in dropped.items()) + ".")
    return table, pairs


def tiny_side():
    """--tail: a small parameter from 1e-6 to 1e-3 next to one from 10 to 1e8 (the tail regime's second rule),
    x between the far-side quantiles and x = 1 (and the mirror images), against DLMF 8.17.8's hypergeometric
    form at 50 digits computed this run (it converges in a few terms there: the large parameter times the
    distance to the end is at most ~10); derivatives by mpmath.diff. Returns a markdown table of the float64
    maxima per pair."""
    import mpmath as mp

    rows = []
    t = lambda v: torch.tensor([v], dtype=torch.float64)  # noqa: E731
    with mp.workdps(50):
        for big in (10.0, 1e4, 1e8):
            for small in (1e-6, 1e-3):
                worst = [0.0, 0.0, 0.0, 0.0]
                for y in (1e-2 / big, 1e-4 / big, 1e-8 / big, 1e-13):
                    for mirror in (False, True):
                        # not mirrored: (a, b) = (big, small), x = 1 - y; mirrored: (small, big), x = y
                        a, b, x = (small, big, y) if mirror else (big, small, 1.0 - y)
                        A, B, X = mp.mpf(a), mp.mpf(b), mp.mpf(x)
                        E = X if mirror else 1 - X  # the distance to the small parameter's end (exact)

                        def J(p, q):  # the mass between that end and x: I_E(p, q), p the small parameter
                            return E ** p * (1 - E) ** q / (p * mp.beta(p, q)) * mp.hyp2f1(p + q, 1, p + 1, E)

                        q = X ** (A - 1) * (1 - X) ** (B - 1) / mp.beta(A, B)
                        if mirror:  # I_x(a, b) = J(a, b)
                            want = [J(A, B), 1 - J(A, B), -mp.diff(lambda s: J(s, B), A) / q,
                                    -mp.diff(lambda s: J(A, s), B) / q]
                        else:  # I_x(a, b) = 1 - J(b, a)
                            want = [1 - J(B, A), J(B, A), mp.diff(lambda s: J(B, s), A) / q,
                                    mp.diff(lambda s: J(s, A), B) / q]
                        ga, gb = gk.standard_beta_grad(t(a), t(b), t(x))
                        got = [gk.betainc(t(a), t(b), t(x)), gk.betaincc(t(a), t(b), t(x)), ga, gb]
                        for i, (g, w) in enumerate(zip(got, want)):
                            worst[i] = max(worst[i], abs(g.item() / float(w) - 1))
                rows.append([f"{big:g} next to {small:g}"] + [C.sci(v) for v in worst])
    return C.markdown_table(["large / small parameter", "betainc", "betaincc", "dx/da", "dx/db"], rows)


def speed(r, every=False):
    inreg = np.ones(len(r["k"]), bool) if every else np.abs(r["k"]) <= REGIME
    reps = int(np.ceil(20000 / inreg.sum()))
    A, B, X = (torch.from_numpy(np.tile(r[k][inreg], reps)) for k in ("a", "b", "x"))
    n = A.numel()
    T = A + B
    t_gk = C.time_per_element(lambda: gk.standard_beta_grad(A, B, X), n)
    t_torch = C.time_per_element(lambda: (torch._dirichlet_grad(X, A, T), torch._dirichlet_grad(1 - X, B, T)), n)
    return n, t_gk, t_torch


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", action="store_true", help="write the section of docs/beta.md")
    ap.add_argument("--tail", action="store_true", help="the tail quadrature's points (beta_tail_ref.csv)")
    ap.add_argument("--mid", action="store_true", help="the smaller parameter from 100 to 1e3 (beta_mid_ref.csv)")
    args = ap.parse_args(argv)
    C.set_torch_threads(1)
    which = "tail" if args.tail else "mid" if args.mid else "large"
    name = f"beta_{which}_ref.csv"
    r = load({"tail": TAIL_DATA, "mid": MID_DATA, "large": DATA}[which])
    nver, worst = reverify(r, name=name)
    every = which != "large"  # all points count (no |k| <= 200 regime column)
    table, pairs = accuracy(r, every)
    n, t_gk, t_torch = speed(r, every)
    extra = []
    if which == "tail":
        extra = ["A small parameter next to a large one (both orientations; 1 - x, or x, from 1e-2 / large to 1e-13), "
                 "float64 max rel. error against DLMF 8.17.8 at 50 digits, computed this run:", tiny_side()]
    md = "\n\n".join([
        f"{len(r['a'])} points of tests/data/{name} ({nver} random rows recomputed with mpmath this run: "
        f"agreement {worst:.1e}). Peers: scipy.special.betainc / betaincc for the values, torch's "
        "_dirichlet_grad (as torch's Beta.rsample combines it) for the gradients.",
        table,
        "Per pair (a, b), float64:",
        pairs,
        *extra,
        f"Time per element, 1 thread, {n} {'' if every else 'in-regime '}elements: standard_beta_grad "
        f"{t_gk * 1e9:.0f} ns, torch's two "
        f"_dirichlet_grad calls {t_torch * 1e9:.0f} ns (torch / gradkern = {t_torch / t_gk:.2f}x; torch's is a fixed "
        "approximation, see its errors above).",
    ])
    print(md)
    if args.docs:
        C.write_doc_section("beta.md", f"beta-{which}", md,
                            command="python bench/beta_large.py " + ("--docs" if which == "large" else f"--{which} --docs"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
