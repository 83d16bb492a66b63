"""Gaussian mixtures: variance of the pathwise logit gradient (paper Fig. 1b, 1c), speed and peak memory
side by side with Pyro, scaling in K and D.

    python bench/mixtures.py [--threads 1] [--quick] [--no-pyro]

Writes bench/out/mixtures_fig1b.png, bench/out/mixtures_fig1c.png, bench/out/mixtures.md (the tables)
and bench/out/mixtures.json. Correctness is checked before timing: on the timed problem the gradients of
both libraries are compared (eq. 12 parts must agree to rounding).

Setups follow the paper's supplementary E.1: f(z) = |z|^2; for Fig. 1b K = 10, means drawn on the sphere
of radius 2, scales from a narrow distribution around 1 (little overlap), zero means for the
GaussianScaleMixture; for Fig. 1c D = 2, K means evenly on the unit circle, all covariances sigma^2 I.
The score-function estimator for the logits is f(z) d log pi_k / d logits at the drawn component k (the
"hybrid" estimator of the paper's Sec. 6.2.2, no baseline). Variances are summed over the K logits.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

import _common as C

FAMILIES = ["shared_cov", "diag_normals", "gsm", "discrete_gsm"]
PYRO_NAMES = {"shared_cov": "MixtureOfDiagNormalsSharedCovariance", "diag_normals": "MixtureOfDiagNormals",
              "gsm": "GaussianScaleMixture"}
LABELS = {"shared_cov": "DiagNormalsSharedCovariance (eq. 15)", "diag_normals": "DiagNormals (eqs. 49-51)",
          "gsm": "ZeroMeanGSM (eq. 40)", "discrete_gsm": "GSM (eq. 54)"}


def make_params(torch, family, K, D, gen, dtype, radius=2.0, jitter=0.1, sigma=None, circle=False):
    # Logits first: families that share them then share them exactly for the same generator seed.
    p = {"component_logits": 0.3 * torch.randn(K, generator=gen, dtype=dtype)}
    if family != "gsm":
        if circle:
            ang = torch.arange(K, dtype=dtype) * (2 * math.pi / K)
            p["locs"] = torch.stack([torch.cos(ang), torch.sin(ang)], -1)
        else:
            v = torch.randn(K, D, generator=gen, dtype=dtype)
            p["locs"] = radius * v / v.norm(dim=-1, keepdim=True)
    shape = (K, D) if family == "diag_normals" else (D,)
    base = 1.0 if sigma is None else sigma
    p["coord_scale"] = base * (1 + jitter * (2 * torch.rand(shape, generator=gen, dtype=dtype) - 1))
    if family in ("gsm", "discrete_gsm"):
        p["component_scale"] = 1 + jitter * (2 * torch.rand(K, generator=gen, dtype=dtype) - 1)
    return p


def per_sample_logit_grads(torch, gk_mix, family, p, n, gen):
    """(pathwise, score-function) per-sample logit gradients for f = |z|^2, n samples each."""
    stem, names = gk_mix.FAMILIES[family]
    ops = torch.ops.gradkern
    K = p["component_logits"].shape[-1]
    D = p["coord_scale"].shape[-1]
    # One mixture per sample (batch of n copies, one sample each) so the op returns per-sample gradients.
    flat = [p[k].expand((n,) + p[k].shape).contiguous() for k in names]
    pi = torch.softmax(p["component_logits"], -1)
    comp = torch.multinomial(pi, n, replacement=True, generator=gen).view(1, n)
    noise = torch.randn(1, n, D, generator=gen, dtype=pi.dtype)
    z = getattr(ops, stem + "_rsample")(noise, comp, *flat)
    grads = getattr(ops, stem + "_backward")(2 * z, z, *flat)
    pathwise = grads[names.index("component_logits")]
    f = (z[0] ** 2).sum(-1, keepdim=True)
    score = f * (torch.nn.functional.one_hot(comp[0], K).to(pi.dtype) - pi)
    return pathwise, score


def variance_ratio(torch, pathwise, score):
    return (score.var(0).sum() / pathwise.var(0).sum()).item()


def fig1b(torch, gk_mix, args, tqdm):
    dims = [2, 4, 8, 16, 32, 64] if args.quick else [2, 4, 8, 16, 32, 64, 128]
    n = 4000 if args.quick else 20000
    res = {f: [] for f in FAMILIES}
    for family in tqdm(FAMILIES, desc="Fig. 1b"):
        for D in dims:
            gen = torch.Generator().manual_seed(100 + D)
            p = make_params(torch, family, 10, D, gen, torch.float64)
            pw, sf = per_sample_logit_grads(torch, gk_mix, family, p, n, gen)
            res[family].append(variance_ratio(torch, pw, sf))
    return dims, n, res


def fig1c(torch, gk_mix, args, tqdm):
    sigmas = [0.05, 0.1, 0.2, 0.4, 0.7, 1.0, 2.0, 4.0]
    n = 4000 if args.quick else 20000
    K = 10
    res = {"shared_cov": [], "diag_normals": [], "diag_vs_shared": []}
    for s in tqdm(sigmas, desc="Fig. 1c"):
        out = {}
        for family in ("shared_cov", "diag_normals"):
            p = make_params(torch, family, K, 2, torch.Generator().manual_seed(7), torch.float64, jitter=0.0,
                            sigma=s, circle=True)
            gen = torch.Generator().manual_seed(8)  # the same samples for both estimators
            out[family] = per_sample_logit_grads(torch, gk_mix, family, p, n, gen)
            res[family].append(variance_ratio(torch, *out[family]))
        res["diag_vs_shared"].append(
            (out["shared_cov"][0].var(0).sum() / out["diag_normals"][0].var(0).sum()).item())
    return sigmas, n, K, res


# --- speed and memory -------------------------------------------------------------------------------
def build(torch, lib, family, K, D, dtype=None):
    dtype = dtype or torch.float32
    gen = torch.Generator().manual_seed(0)
    p = {k: v.requires_grad_() for k, v in make_params(torch, family, K, D, gen, dtype).items()}
    if lib == "pyro":
        import pyro.distributions as pd
        cls = getattr(pd, PYRO_NAMES[family])
    else:
        import gradkern.distributions_mixtures as gm
        cls = getattr(gm, {"shared_cov": "MixtureOfDiagNormalsSharedCovariance",
                           "diag_normals": "MixtureOfDiagNormals", "gsm": "GaussianScaleMixture",
                           "discrete_gsm": "DiscreteGaussianScaleMixture"}[family])
    return p, (lambda: cls(**p))


def step(torch, make_dist, p, n, upstream=None):
    """One rsample + backward. With `upstream` (a preallocated tensor of z's shape), backpropagate it
    directly: the gradient of the linear objective <upstream, z>, so that the objective itself allocates
    nothing and the step's memory is the estimator's own. Without it, the paper's f(z) = ||z||^2."""
    for v in p.values():
        v.grad = None
    z = make_dist().rsample(torch.Size([n]))
    if upstream is None:
        (z ** 2).sum().backward()
    else:
        z.backward(upstream)


def time_step(torch, lib, family, K, D, n, repeats):
    p, mk = build(torch, lib, family, K, D)
    step(torch, mk, p, n)  # warm-up
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step(torch, mk, p, n)
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return ts[len(ts) // 2]


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak_rss():
    # Linux >= 4.0: writing 5 to clear_refs resets VmHWM (the peak RSS) to the current RSS.
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _peak_rss_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def memory_probe(lib, family, K, D, n, threads, linear=True):
    """Run in a fresh subprocess: peak RSS growth (bytes) of one rsample + backward, from the kernel's
    VmHWM counter reset after a small warm-up step (ru_maxrss would inherit the parent's peak)."""
    code = (
        "import sys, os; sys.path.insert(0, %r); sys.path.insert(0, %r)\n"
        "import _common as C; C.limit_threads_env(%d); import torch; torch.set_num_threads(%d)\n"
        "C.import_gradkern(); import gradkern.mixtures\n"
        "import mixtures as B\n"
        "p, mk = B.build(torch, %r, %r, %d, %d)\n"
        "B.step(torch, mk, p, 16)\n"  # warm-up: lazy initialisation is not the op's memory
        # The upstream gradient is allocated (and its pages touched) before the counter is reset.
        "g = torch.randn(mk()._extended_shape(torch.Size([%d]))) if %r else None\n"
        "B._reset_peak_rss(); before = B._rss_bytes()\n"
        "B.step(torch, mk, p, %d, g)\n"
        "print(B._peak_rss_bytes() - before)\n"
    ) % (C.HERE, C.REPO, threads, threads, lib, family, K, D, n, linear, n)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        return float("nan"), out.stderr.strip().splitlines()[-1] if out.stderr else "failed"
    return max(float(out.stdout.strip().splitlines()[-1]), 0.0), None


def peak_memory(lib, family, K, D, n, threads, probes=3):
    """Median over `probes` fresh processes of memory_probe, with the preallocated upstream gradient
    (the estimator's own memory) and with the (z ** 2).sum() loss; returns (linear, squared) bytes."""
    out = []
    for linear in (True, False):
        vals = sorted(memory_probe(lib, family, K, D, n, threads, linear)[0] for _ in range(probes))
        out.append(vals[len(vals) // 2])
    return tuple(out)


def check_agreement(torch, family, K, D, n):
    """Same samples through both libraries' backward: eq. 12 gradients must agree."""
    import types
    import gradkern.mixtures as gm
    from pyro.distributions.diag_normal_mixture import _MixDiagNormalSample
    from pyro.distributions.diag_normal_mixture_shared_cov import _MixDiagNormalSharedCovarianceSample
    from pyro.distributions.gaussian_scale_mixture import _GSMSample
    import pyro.distributions as pd
    p, mk = build(torch, "gradkern", family, K, D, torch.float64)
    p = {k: v.detach() for k, v in p.items()}
    z = mk().sample((n,))
    g = 2 * z
    stem, names = gm.FAMILIES[family]
    ours = getattr(torch.ops.gradkern, stem + "_backward")(g[:, None].contiguous(), z[:, None].contiguous(),
                                                          *[p[k][None] for k in names])
    ours = {k: v[0] for k, v in zip(names, ours)}
    pis = torch.softmax(p["component_logits"], -1)
    if family == "gsm":
        coeffs = pd.GaussianScaleMixture(p["coord_scale"], p["component_logits"], p["component_scale"]).coeffs
        r = _GSMSample.backward(types.SimpleNamespace(saved_tensors=(
            z, p["coord_scale"], p["component_logits"], p["component_scale"], pis, coeffs)), g)
        theirs = {"coord_scale": r[0], "component_scale": r[2]}
    else:
        fn = _MixDiagNormalSample if family == "diag_normals" else _MixDiagNormalSharedCovarianceSample
        r = fn.backward(types.SimpleNamespace(saved_tensors=(z, p["coord_scale"], p["locs"],
                                                             p["component_logits"], pis)), g)
        theirs = {"locs": r[0], "coord_scale": r[1]}
    return max(((ours[k] - v).abs().max() / v.abs().max()).item() for k, v in theirs.items())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="fewer samples and points (about a minute)")
    ap.add_argument("--no-pyro", action="store_true")
    ap.add_argument("--speed-only", action="store_true",
                    help="only the speed/memory table at K = 10, D = 50 (skips Fig. 1b/1c and the scaling runs)")
    args = ap.parse_args()
    C.limit_threads_env(args.threads)
    import torch
    from tqdm import tqdm
    threads = C.set_torch_threads(args.threads)
    gk, note = C.import_gradkern()
    if gk is None:
        sys.exit(note)
    import gradkern.mixtures as gk_mix
    have_pyro = False
    if not args.no_pyro:
        try:
            import pyro  # noqa: F401
            have_pyro = True
        except ImportError:
            pass
    os.makedirs(C.OUT_DIR, exist_ok=True)
    machine = C.machine_description()
    report = {"machine": machine, "threads": threads}
    md = [f"Machine: {machine}; torch threads: {threads}.", ""]

    if not args.speed_only:
        # Fig. 1b
        dims, n1b, r1b = fig1b(torch, gk_mix, args, tqdm)
        report["fig1b"] = {"dims": dims, "n": n1b, "ratio": r1b}
        md += [f"### Fig. 1b: Var(score function) / Var(pathwise), logit gradient, K = 10, f = |z|^2 ({n1b} samples)",
               ""]
        md += C.markdown_table(["family"] + [f"D={d}" for d in dims],
                               [[LABELS[f]] + [f"{v:.3g}" for v in r1b[f]] for f in FAMILIES]).splitlines()
        # Fig. 1c
        sigmas, n1c, K1c, r1c = fig1c(torch, gk_mix, args, tqdm)
        report["fig1c"] = {"sigma": sigmas, "n": n1c, "K": K1c, "ratio": r1c}
        md += ["", f"### Fig. 1c: D = 2, K = {K1c} means on the unit circle, covariance sigma^2 I ({n1c} samples)", ""]
        md += C.markdown_table(
            ["sigma", "Var(SF)/Var(shared-cov eq. 15)", "Var(SF)/Var(diag eqs. 49-51)", "Var(shared)/Var(diag)"],
            [[f"{s:g}", f"{a:.3g}", f"{b:.3g}", f"{c:.6f}"]
             for s, a, b, c in zip(sigmas, r1c["shared_cov"], r1c["diag_normals"], r1c["diag_vs_shared"])]).splitlines()

        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
            fig, ax = plt.subplots(figsize=(5, 3.6))
            for f in FAMILIES:
                ax.plot(dims, r1b[f], marker="o", label=LABELS[f])
            ax.set(xscale="log", yscale="log", xlabel="dimension D", ylabel="Var(score fn) / Var(pathwise)",
                   title="Logit gradient variance reduction, K = 10")
            ax.legend(fontsize=7)
            fig.tight_layout()
            fig.savefig(os.path.join(C.OUT_DIR, "mixtures_fig1b.png"), dpi=120)
            fig, ax = plt.subplots(figsize=(5, 3.6))
            ax.plot(sigmas, r1c["shared_cov"], marker="o", label="shared covariance (eq. 15)")
            ax.plot(sigmas, r1c["diag_normals"], marker="x", linestyle="--", label="diagonal (eqs. 49-51)")
            ax.set(xscale="log", yscale="log", xlabel="sigma", ylabel="Var(score fn) / Var(pathwise)",
                   title=f"D = 2, K = {K1c} on the unit circle")
            ax.legend(fontsize=7)
            fig.tight_layout()
            fig.savefig(os.path.join(C.OUT_DIR, "mixtures_fig1c.png"), dpi=120)
            plt.close("all")
        except ImportError:
            md += ["", "(matplotlib not installed: no PNGs)"]


    # Speed and memory at K = 10, D = 50, 4096 samples, float32.
    K, D, n = 10, 50, 4096
    repeats = 3 if args.quick else 7
    rows, speed = [], {}
    for family in tqdm(FAMILIES, desc="speed/memory"):
        t_ours = time_step(torch, "gradkern", family, K, D, n, repeats)
        m_ours, m_ours_sq = peak_memory("gradkern", family, K, D, n, threads)
        entry = {"gradkern_s": t_ours, "gradkern_peak_bytes": m_ours, "gradkern_peak_bytes_sq_loss": m_ours_sq}
        row = [LABELS[family], f"{t_ours * 1e3:.1f}", f"{m_ours / 2**20:.2f} ({m_ours_sq / 2**20:.1f})"]
        if have_pyro and family in PYRO_NAMES:
            agree = check_agreement(torch, family, K, D, 256)
            t_pyro = time_step(torch, "pyro", family, K, D, n, repeats)
            m_pyro, m_pyro_sq = peak_memory("pyro", family, K, D, n, threads)
            entry.update(pyro_s=t_pyro, pyro_peak_bytes=m_pyro, pyro_peak_bytes_sq_loss=m_pyro_sq,
                         eq12_max_rel_diff=agree)
            row += [f"{t_pyro * 1e3:.1f}", f"{m_pyro / 2**20:.1f} ({m_pyro_sq / 2**20:.1f})",
                    f"{t_pyro / t_ours:.1f}x", f"{m_pyro / m_ours:.0f}x ({m_pyro_sq / m_ours_sq:.1f}x)",
                    f"{agree:.1e}"]
        else:
            row += ["-"] * 5
        speed[family] = entry
        rows.append(row)
    report["speed"] = {"K": K, "D": D, "n": n, "dtype": "float32", "results": speed}
    md += ["", f"### rsample + backward, K = {K}, D = {D}, {n} samples, float32, CPU ({threads} thread(s)); "
           "time: median of {0} runs with f = |z|^2; peak = RSS growth of one step in a fresh process, median "
           "of 3, backpropagating a preallocated upstream gradient (in parentheses: through the loss "
           "(z ** 2).sum(), whose own backward temporaries are the same in both libraries)".format(repeats), ""]
    md += C.markdown_table(["family", "gradkern ms", "gradkern peak MiB", "Pyro ms", "Pyro peak MiB", "speed-up",
                            "memory ratio", "eq. 12 grads max rel diff"], rows).splitlines()

    if args.speed_only:
        Ks, Ds = [], []
    else:
        Ks, Ds = [2, 5, 10, 20, 40], [10, 50, 200, 1000]
    # Scaling in K and D (ours; Pyro where it exists and fits).
    scale_rows = []
    jobs = [("K", k, 50) for k in Ks] + [("D", 10, d) for d in Ds if d != 50]
    for family in tqdm(FAMILIES if jobs else [], desc="scaling"):
        for axis, k, d in jobs:
            t = time_step(torch, "gradkern", family, k, d, n, 1 if args.quick else 3)
            tp = float("nan")
            if have_pyro and family in PYRO_NAMES and k * k * d <= 20 * 20 * 50 and d <= 200:
                tp = time_step(torch, "pyro", family, k, d, n, 1 if args.quick else 3)
            scale_rows.append([LABELS[family], k, d, f"{t * 1e3:.1f}", "-" if tp != tp else f"{tp * 1e3:.1f}"])
    if scale_rows:
        report["scaling"] = scale_rows
        md += ["", f"### Scaling: rsample + backward of {n} samples, float32, ms", ""]
        md += C.markdown_table(["family", "K", "D", "gradkern ms", "Pyro ms"], scale_rows).splitlines()

    text = "\n".join(md) + "\n"
    stem = "mixtures_speed" if args.speed_only else "mixtures"
    with open(os.path.join(C.OUT_DIR, stem + ".md"), "w") as f:
        f.write(text)
    C.write_json(os.path.join(C.OUT_DIR, stem + ".json"), report)
    print(text)


if __name__ == "__main__":
    main()
