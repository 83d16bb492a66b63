"""ARMS toy benchmark (Dimitriev & Zhou 2021, Figure 2) and copula timing.

1. Gradient variance on the toy problem max_phi E[(b - 0.499)^2], b ~ Bern(sigmoid(phi)), for every
   estimator and n in {2, 4, 6, 8, 10, 20, 50, 100}, along the optimisation path sigma(phi) = 0.1 -> 0.9.
   The variance of an estimator at a step depends only on the current phi, so the path is sampled on a
   grid of sigma(phi) values (the paper's run visits them in order over ~20,000 steps); at each grid point
   the variance is estimated from --mc independent estimates (the paper uses 1000).
2. A multivariate check: f(b) = (b . w - 1)^2 with 50 Bernoulli dimensions, one f evaluation per sample.
3. Timing: copula sampling plus rho for 1e6 Bernoulli dimensions with n = 10 on one CPU thread.

    python bench/arms_toy.py                 # ~1 minute on 2 cores: 41 grid points, 1000 MC each
    python bench/arms_toy.py --grid 161 --mc 10000 --target 0.49   # denser, as large as the paper's

Writes bench/out/arms_toy_variance.png and bench/out/arms_toy.json; --docs also writes the tables into
docs/estimators.md (sections arms_toy, arms_multivariate, arms_copula_speed).
"""
import argparse
import json
import math
import os
import sys
import time

import torch
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

_gk, _note = C.import_gradkern()
if _gk is None:
    sys.exit(f"arms_toy: {_note}; build with `python setup.py build_ext --inplace` first")
from gradkern import copulas  # noqa: E402
from gradkern import estimators as est  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")

ESTIMATORS = {
    "ARMS-D": lambda lg, f, n, g: est.arms(lg, f, n, "dirichlet", generator=g),
    "ARMS-N": lambda lg, f, n, g: est.arms(lg, f, n, "gaussian", generator=g),
    "LOORF": lambda lg, f, n, g: est.loorf(lg, f, n, generator=g),
    "DisARM": lambda lg, f, n, g: est.disarm(lg, f, n, generator=g),
    "ARM": lambda lg, f, n, g: est.arm(lg, f, n, generator=g),
}


def variance_curves(ns, grid, mc, target, seed):
    probs = torch.linspace(0.1, 0.9, grid, dtype=torch.float64)
    logits = torch.logit(probs).unsqueeze(1).expand(grid, mc).contiguous()  # (grid, mc) replicas
    f = lambda b: (b - target) ** 2  # noqa: E731  (one objective per element)
    exact = probs * (1 - probs) * ((1 - target) ** 2 - target ** 2)
    curves, bias_z = {}, {}
    gen = torch.Generator().manual_seed(seed)
    for n in tqdm(ns, desc="toy variance"):
        for name, fn in ESTIMATORS.items():
            g = fn(logits, f, n, gen)
            curves[(name, n)] = g.var(1).tolist()
            err = g.mean(1) - exact
            se = g.std(1) / math.sqrt(mc)
            # Zero spread happens (DisARM / ARMS at n = 2, p = 1/2: the pair is always (0, 1)); then the
            # estimate must be exact.
            z = torch.where(se > 0, err / se, torch.where(err.abs() < 1e-15, 0.0, math.inf))
            bias_z[(name, n)] = z.abs().max().item()
    return probs.tolist(), curves, bias_z


def multivariate_variance(ns, m, reps, seed):
    """Mean per-dimension gradient variance on f(b) = (b . w - 1)^2 with m Bernoulli dimensions, for
    logits ~ N(0, scale^2) (moderate and near-deterministic probabilities)."""
    gen = torch.Generator().manual_seed(seed)
    rows = {}
    for scale in (0.5, 3.0):
        phi = torch.randn(m, generator=gen, dtype=torch.float64) * scale
        w = torch.randn(m, generator=gen, dtype=torch.float64)
        logits = phi.expand(reps, m).contiguous()
        f = lambda b: ((b * w).sum(-1) - 1) ** 2  # noqa: E731
        for n in ns:
            rows[(scale, n)] = {name: fn(logits, f, n, gen).var(0).mean().item()
                                for name, fn in ESTIMATORS.items() if name != "ARM"}
    return rows


def time_copulas(dims=10**6, n=10, repeats=3):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        logits = torch.randn(dims)
        p = torch.sigmoid(logits)
        out = {}
        for name, sample, rho in (("dirichlet", torch.ops.gradkern.dirichlet_copula, copulas.dirichlet_rho),
                                  ("gaussian", torch.ops.gradkern.gaussian_copula, copulas.gaussian_rho)):
            for dtype in (torch.float32, torch.float64):
                lg, pp = logits.to(dtype), p.to(dtype)
                best = best_cpu = math.inf
                for _ in range(repeats):
                    t0, c0 = time.perf_counter(), time.thread_time()
                    u = sample(lg, n)
                    r = rho(pp, n)
                    best_cpu = min(best_cpu, time.thread_time() - c0)
                    best = min(best, time.perf_counter() - t0)
                assert u.shape == (n, dims) and torch.isfinite(r).all()
                # The Bernoulli thresholding the estimators add on top (separately, for reference).
                c0 = time.thread_time()
                est.sample_bernoulli(lg, n, name)
                full = time.thread_time() - c0
                out[f"{name}/{str(dtype).split('.')[-1]}"] = {"copula_plus_rho_cpu_s": best_cpu,
                                                            "copula_plus_rho_wall_s": best,
                                                            "sample_bernoulli_cpu_s": full}
        return out
    finally:
        torch.set_num_threads(threads)


def plot(probs, curves, ns, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = 2
    cols = math.ceil(len(ns) / rows)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.3 * rows), squeeze=False)
    styles = {"ARMS-D": "C0-", "ARMS-N": "C1-", "LOORF": "C2--", "DisARM": "C3--", "ARM": "C7:"}
    for ax, n in zip(axes.flat, ns):
        for name, style in styles.items():
            ax.semilogy(probs, curves[(name, n)], style, label=name, lw=1.4)
        ax.set_title(f"n = {n}")
        ax.set_xlabel(r"$\sigma(\phi)$")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("gradient variance")
    axes[1, 0].set_ylabel("gradient variance")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(r"Toy problem $E[(b - t)^2]$: gradient variance along $\sigma(\phi) = 0.1 \to 0.9$")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ns", type=int, nargs="+", default=[2, 4, 6, 8, 10, 20, 50, 100])
    ap.add_argument("--grid", type=int, default=41, help="points on sigma(phi) in [0.1, 0.9]")
    ap.add_argument("--mc", type=int, default=1000, help="estimates per point for the variance (paper: 1000)")
    ap.add_argument("--target", type=float, default=0.499, help="paper: 0.499; reference code: 0.49")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mv-dims", type=int, default=50, help="dimensions of the multivariate check")
    ap.add_argument("--mv-reps", type=int, default=4000, help="estimates per multivariate variance")
    ap.add_argument("--skip-timing", action="store_true")
    ap.add_argument("--docs", action="store_true", help="write the tables into docs/estimators.md")
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)

    probs, curves, bias_z = variance_curves(args.ns, args.grid, args.mc, args.target, args.seed)
    plot(probs, curves, args.ns, os.path.join(OUT, "arms_toy_variance.png"))

    summary, sections, rows = {}, {}, []
    for n in args.ns:
        means = {k: sum(curves[(k, n)]) / len(probs) for k in ESTIMATORS}
        base = [min(a, b) for a, b in zip(curves[("LOORF", n)], curves[("DisARM", n)])]
        below_d = sum(a < b for a, b in zip(curves[("ARMS-D", n)], base)) / len(probs)
        below_n = sum(a < b for a, b in zip(curves[("ARMS-N", n)], base)) / len(probs)
        zmax = max(bias_z[(k, n)] for k in ESTIMATORS)
        summary[n] = {"mean_variance": means, "armsd_below_baselines": below_d, "armsn_below_baselines": below_n,
                      "max_abs_z_of_mean": zmax}
        rows.append([n] + [f"{means[k]:.3g}" for k in ESTIMATORS] + [f"{below_d:.2f}", f"{below_n:.2f}", f"{zmax:.2f}"])
    sections["arms_toy"] = (
        f"Mean gradient variance over sigma(phi) in [0.1, 0.9] (target {args.target}, {args.grid} points, "
        f"{args.mc} estimates each); 'below' = share of points where ARMS-D/ARMS-N < min(LOORF, DisARM); "
        "max abs bias = largest |mean - exact| / s.e. over the estimators and points.\n\n"
        + C.markdown_table(["n", *ESTIMATORS, "ARMS-D below", "ARMS-N below", "max abs bias (s.e.)"], rows))
    print("\n" + sections["arms_toy"])

    mv = multivariate_variance([4, 8], args.mv_dims, args.mv_reps, args.seed)
    names = list(next(iter(mv.values())))
    sections["arms_multivariate"] = (
        f"Multivariate: f(b) = (b . w - 1)^2, {args.mv_dims} dimensions, logits ~ N(0, s^2); mean "
        f"per-dimension gradient variance over {args.mv_reps} estimates.\n\n"
        + C.markdown_table(["logits ~ N(0, s^2)", "n", *names],
                           [[f"s = {scale:g}", n] + [f"{row[k]:.3g}" for k in names]
                            for (scale, n), row in mv.items()]))
    print("\n" + sections["arms_multivariate"])

    timing = None
    if not args.skip_timing:
        timing = time_copulas()
        sections["arms_copula_speed"] = (
            "Copula sampling + rho, 1e6 Bernoulli dimensions, n = 10, one CPU thread, best of 3 (CPU time of the "
            "thread, which is what a dedicated core would take; wall time includes waiting on a shared machine); "
            "sample_bernoulli adds the thresholding.\n\n"
            + C.markdown_table(["copula / dtype", "copula + rho, CPU s", "copula + rho, wall s",
                                "sample_bernoulli, CPU s"],
                               [[k, f"{v['copula_plus_rho_cpu_s']:.3f}", f"{v['copula_plus_rho_wall_s']:.3f}",
                                 f"{v['sample_bernoulli_cpu_s']:.3f}"] for k, v in timing.items()]))
        print("\n" + sections["arms_copula_speed"])
    if args.docs:
        cmd = " ".join(["python bench/arms_toy.py"] + [a for a in sys.argv[1:] if a != "--docs"])
        for name, md in sections.items():
            print("wrote", C.write_doc_section("estimators.md", name, md, command=cmd), file=sys.stderr)

    meta = {"machine": C.machine_description(), "args": vars(args)}
    with open(os.path.join(OUT, "arms_toy.json"), "w") as fh:
        json.dump({"meta": meta, "probs": probs, "summary": summary, "timing": timing,
                   "multivariate": {f"scale={k[0]}/n={k[1]}": v for k, v in mv.items()},
                   "curves": {f"{k}/{n}": v for (k, n), v in curves.items()}}, fh, indent=1)
    print(f"\nwrote {OUT}/arms_toy_variance.png and arms_toy.json")


if __name__ == "__main__":
    main()
