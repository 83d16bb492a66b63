"""Gaussian mixtures: variance of the pathwise logit gradient (paper Fig. 1b, 1c), speed and peak memory
side by side with Pyro, scaling in K and D.

    python bench/mixtures.py [--threads 1] [--quick] [--no-pyro] [--speed-only | --k-scaling-only] [--docs]

Writes bench/out/mixtures_fig1b.png, bench/out/mixtures_fig1c.png, bench/out/mixtures.md (the tables)
and bench/out/mixtures.json; --docs also rewrites the sections of docs/mixtures.md that the run
measured (mixtures_fig1b, mixtures_fig1c, mixtures_speed, mixtures_scaling, mixtures_k_scaling).
Correctness is checked before timing: on the timed problem the gradients of both libraries are compared
(eq. 12 parts must agree to rounding).

Setups follow the paper's supplementary E.1: f(z) = |z|^2; for Fig. 1b K = 10, means drawn on the sphere
of radius 2, scales from a narrow distribution around 1 (little overlap), zero means for the
GaussianScaleMixture; for Fig. 1c D = 2, K means evenly on the unit circle, all covariances sigma^2 I.
The score-function estimator for the logits is f(z) d log pi_k / d logits at the drawn component k (the
"hybrid" estimator of the paper's Sec. 6.2.2, no baseline). Variances are summed over the K logits.
MixtureOfDiagNormals appears twice, once per logit velocity field: "reference" (the default, one common
reference N(mu', s'), O(K D) per sample) and "pairwise" (per-component references + eq. 15, O(K^2 D)).

Run it from the repository root with PYTHONPATH=. when another gradkern is installed in site-packages
(the timed process imports the installed package first, see _common.import_gradkern).
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

import _common as C

FAMILIES = ["shared_cov", "diag_normals", "gaussian_scale", "discrete_gaussian_scale"]
# (family, velocity field): every estimator the tables compare; velocity None where a family has one.
VARIANTS = [("shared_cov", None), ("diag_normals", "reference"), ("diag_normals", "pairwise"), ("gaussian_scale", None),
            ("discrete_gaussian_scale", None)]
PYRO_NAMES = {"shared_cov": "MixtureOfDiagNormalsSharedCovariance", "diag_normals": "MixtureOfDiagNormals",
              "gaussian_scale": "GaussianScaleMixture"}
LABELS = {("shared_cov", None): "DiagNormalsSharedCovariance (eq. 15)",
          ("diag_normals", "reference"): "DiagNormals, reference (eqs. 49-51, O(KD))",
          ("diag_normals", "pairwise"): "DiagNormals, pairwise (eqs. 49-50 + 15, O(K^2 D))",
          ("gaussian_scale", None): "ZeroMeanGSM (eq. 40)", ("discrete_gaussian_scale", None): "GSM (eq. 54)"}


def key(family, vel):
    return family if vel is None else f"{family}_{vel}"


def make_params(torch, family, K, D, gen, dtype, radius=2.0, jitter=0.1, sigma=None, circle=False):
    # Logits first: families that share them then share them exactly for the same generator seed.
    p = {"component_logits": 0.3 * torch.randn(K, generator=gen, dtype=dtype)}
    if family != "gaussian_scale":
        if circle:
            ang = torch.arange(K, dtype=dtype) * (2 * math.pi / K)
            p["locs"] = torch.stack([torch.cos(ang), torch.sin(ang)], -1)
        else:
            v = torch.randn(K, D, generator=gen, dtype=dtype)
            p["locs"] = radius * v / v.norm(dim=-1, keepdim=True)
    shape = (K, D) if family == "diag_normals" else (D,)
    base = 1.0 if sigma is None else sigma
    p["coord_scale"] = base * (1 + jitter * (2 * torch.rand(shape, generator=gen, dtype=dtype) - 1))
    if family in ("gaussian_scale", "discrete_gaussian_scale"):
        p["component_scale"] = 1 + jitter * (2 * torch.rand(K, generator=gen, dtype=dtype) - 1)
    return p


def per_sample_logit_grads(torch, gk_mix, family, p, n, gen, vel=None):
    """(pathwise, score-function) per-sample logit gradients for f = |z|^2, n samples each."""
    stem, names = gk_mix.FAMILIES[family]
    extra = () if vel is None else (vel,)
    ops = torch.ops.gradkern
    K = p["component_logits"].shape[-1]
    D = p["coord_scale"].shape[-1]
    # One mixture per sample (batch of n copies, one sample each) so the op returns per-sample gradients.
    flat = [p[k].expand((n,) + p[k].shape).contiguous() for k in names]
    pi = torch.softmax(p["component_logits"], -1)
    comp = torch.multinomial(pi, n, replacement=True, generator=gen).view(1, n)
    noise = torch.randn(1, n, D, generator=gen, dtype=pi.dtype)
    z = getattr(ops, stem + "_rsample")(noise, comp, *flat)
    grads = getattr(ops, stem + "_backward")(2 * z, z, *flat, *extra)
    pathwise = grads[names.index("component_logits")]
    f = (z[0] ** 2).sum(-1, keepdim=True)
    score = f * (torch.nn.functional.one_hot(comp[0], K).to(pi.dtype) - pi)
    return pathwise, score


def variance_ratio(torch, pathwise, score):
    return (score.var(0).sum() / pathwise.var(0).sum()).item()


def fig1b(torch, gk_mix, args, tqdm):
    dims = [2, 4, 8, 16, 32, 64] if args.quick else [2, 4, 8, 16, 32, 64, 128]
    n = 4000 if args.quick else 20000
    res = {key(*v): [] for v in VARIANTS}
    for family, vel in tqdm(VARIANTS, desc="Fig. 1b"):
        for D in dims:
            gen = torch.Generator().manual_seed(100 + D)  # both diagonal fields: same parameters, samples
            p = make_params(torch, family, 10, D, gen, torch.float64)
            pw, sf = per_sample_logit_grads(torch, gk_mix, family, p, n, gen, vel)
            res[key(family, vel)].append(variance_ratio(torch, pw, sf))
    return dims, n, res


def fig1c(torch, gk_mix, args, tqdm):
    sigmas = [0.05, 0.1, 0.2, 0.4, 0.7, 1.0, 2.0, 4.0]
    n = 4000 if args.quick else 20000
    K = 10
    cases = [("shared_cov", None), ("diag_normals", "pairwise"), ("diag_normals", "reference")]
    res = {key(*c): [] for c in cases}
    res["pairwise_vs_shared"], res["pairwise_vs_reference"] = [], []
    for s in tqdm(sigmas, desc="Fig. 1c"):
        out = {}
        for family, vel in cases:
            p = make_params(torch, family, K, 2, torch.Generator().manual_seed(7), torch.float64, jitter=0.0,
                            sigma=s, circle=True)
            gen = torch.Generator().manual_seed(8)  # the same samples for all estimators
            out[key(family, vel)] = per_sample_logit_grads(torch, gk_mix, family, p, n, gen, vel)
            res[key(family, vel)].append(variance_ratio(torch, *out[key(family, vel)]))
        var = {k: v[0].var(0).sum() for k, v in out.items()}
        # Var(shared)/Var(pairwise) is 1 (the pairwise field reduces to eq. 15 for equal scales);
        # Var(reference)/Var(pairwise) > 1 where the O(K D) field is the noisier one.
        res["pairwise_vs_shared"].append((var["shared_cov"] / var["diag_normals_pairwise"]).item())
        res["pairwise_vs_reference"].append((var["diag_normals_reference"] / var["diag_normals_pairwise"]).item())
    return sigmas, n, K, res


# --- speed and memory -------------------------------------------------------------------------------
def build(torch, lib, family, K, D, dtype=None, vel=None):
    dtype = dtype or torch.float32
    gen = torch.Generator().manual_seed(0)
    p = {k: v.requires_grad_() for k, v in make_params(torch, family, K, D, gen, dtype).items()}
    if lib == "pyro":
        import pyro.distributions as pd
        cls = getattr(pd, PYRO_NAMES[family])
    else:
        import gradkern.distributions as gm
        cls = getattr(gm, {"shared_cov": "MixtureOfDiagNormalsSharedCovariance",
                           "diag_normals": "MixtureOfDiagNormals", "gaussian_scale": "GaussianScaleMixture",
                           "discrete_gaussian_scale": "DiscreteGaussianScaleMixture"}[family])
        if vel is not None:
            return p, (lambda: cls(**p, velocity=vel))
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


def time_step(torch, lib, family, K, D, n, repeats, vel=None):
    p, mk = build(torch, lib, family, K, D, vel=vel)
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


def memory_probe(lib, family, K, D, n, threads, linear=True, vel=None):
    """Run in a fresh subprocess: peak RSS growth (bytes) of one rsample + backward, from the kernel's
    VmHWM counter reset after a small warm-up step (ru_maxrss would inherit the parent's peak)."""
    code = (
        "import sys, os; sys.path.insert(0, %r); sys.path.insert(0, %r)\n"
        "import _common as C; C.limit_threads_env(%d); import torch; torch.set_num_threads(%d)\n"
        "C.import_gradkern(); import gradkern._mixtures\n"
        "import mixtures as B\n"
        "p, mk = B.build(torch, %r, %r, %d, %d, vel=%r)\n"
        "B.step(torch, mk, p, 16)\n"  # warm-up: lazy initialisation is not the op's memory
        # The upstream gradient is allocated (and its pages touched) before the counter is reset.
        "g = torch.randn(mk()._extended_shape(torch.Size([%d]))) if %r else None\n"
        "B._reset_peak_rss(); before = B._rss_bytes()\n"
        "B.step(torch, mk, p, %d, g)\n"
        "print(B._peak_rss_bytes() - before)\n"
    ) % (C.HERE, C.REPO, threads, threads, lib, family, K, D, vel, n, linear, n)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        return float("nan"), out.stderr.strip().splitlines()[-1] if out.stderr else "failed"
    return max(float(out.stdout.strip().splitlines()[-1]), 0.0), None


def peak_memory(lib, family, K, D, n, threads, probes=3, vel=None):
    """Median over `probes` fresh processes of memory_probe, with the preallocated upstream gradient
    (the estimator's own memory) and with the (z ** 2).sum() loss; returns (linear, squared) bytes."""
    out = []
    for linear in (True, False):
        vals = sorted(memory_probe(lib, family, K, D, n, threads, linear, vel)[0] for _ in range(probes))
        out.append(vals[len(vals) // 2])
    return tuple(out)


def check_agreement(torch, family, K, D, n):
    """Same samples through both libraries' backward: eq. 12 gradients must agree."""
    import types
    import gradkern._mixtures as gm
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
    if family == "gaussian_scale":
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


def k_scaling_diag(torch, args, md, report, tqdm):
    """Time of rsample + backward (4096 samples, D = 50, float32) over K for both MixtureOfDiagNormals
    fields, interleaved (each round times every (field, K) once) so that load from other jobs falls on
    all of them alike; median and spread over rounds, and the time per component relative to K = 10."""
    Ks, D, n, rounds = [2, 5, 10, 20, 40], 50, 4096, 3 if args.quick else 5
    times = {(v, k): [] for v in ("reference", "pairwise") for k in Ks}
    built = {}
    for v, k in times:
        built[(v, k)] = build(torch, "gradkern", "diag_normals", k, D, vel=v)
        step(torch, built[(v, k)][1], built[(v, k)][0], n)  # warm-up
    for _ in tqdm(range(rounds), desc="K scaling"):
        for (v, k), (p, mk) in built.items():
            t0 = time.perf_counter()
            step(torch, mk, p, n)
            times[(v, k)].append(time.perf_counter() - t0)
    rows = []
    for v in ("reference", "pairwise"):
        med10 = sorted(times[(v, 10)])[rounds // 2]
        for k in Ks:
            ts = sorted(times[(v, k)])
            med = ts[rounds // 2]
            rows.append([v, k, f"{med * 1e3:.1f}", f"{ts[0] * 1e3:.1f}-{ts[-1] * 1e3:.1f}",
                         f"{(med / k) / (med10 / 10):.2f}"])
    report["k_scaling_diag"] = {"D": D, "n": n, "rounds": rounds,
                                "ms": {f"{v}_K{k}": [t * 1e3 for t in ts] for (v, k), ts in times.items()}}
    md += [f"### MixtureOfDiagNormals, rsample + backward over K: D = {D}, {n} samples, float32, ms "
           f"(median and range of {rounds} interleaved rounds; last column: (ms / K) relative to K = 10, "
           "constant for O(K) growth, proportional to K for O(K^2))", ""]
    md += C.markdown_table(["velocity", "K", "median ms", "range ms", "per-K time vs K=10"], rows).splitlines()
    text = "\n".join(md) + "\n"
    if args.docs:
        write_docs({"mixtures_k_scaling": md[2:]})
    with open(os.path.join(C.OUT_DIR, "mixtures_k_scaling.md"), "w") as f:
        f.write(text)
    C.write_json(os.path.join(C.OUT_DIR, "mixtures_k_scaling.json"), report)
    print(text)


def write_docs(sections):
    """Each {name: markdown lines} into its section of docs/mixtures.md, with the command that made it."""
    cmd = " ".join(["python bench/mixtures.py"] + [a for a in sys.argv[1:] if a != "--docs"])
    for name, lines in sections.items():
        print("wrote", C.write_doc_section("mixtures.md", name, "\n".join(lines), command=cmd), file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="fewer samples and points (about a minute)")
    ap.add_argument("--no-pyro", action="store_true")
    ap.add_argument("--speed-only", action="store_true",
                    help="only the speed/memory table at K = 10, D = 50 (skips Fig. 1b/1c and the scaling runs)")
    ap.add_argument("--k-scaling-only", action="store_true",
                    help="only the K sweep of the two MixtureOfDiagNormals fields (D = 50), repeated 3 times")
    ap.add_argument("--docs", action="store_true", help="write the tables into docs/mixtures.md")
    args = ap.parse_args()
    C.limit_threads_env(args.threads)
    import torch
    from tqdm import tqdm
    threads = C.set_torch_threads(args.threads)
    gk, note = C.import_gradkern()
    if gk is None:
        sys.exit(note)
    import gradkern._mixtures as gk_mix
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
    sections = {}  # docs/mixtures.md section -> (first, last) line of md

    if args.k_scaling_only:
        k_scaling_diag(torch, args, md, report, tqdm)
        return

    if not args.speed_only:
        # Fig. 1b
        dims, n1b, r1b = fig1b(torch, gk_mix, args, tqdm)
        report["fig1b"] = {"dims": dims, "n": n1b, "ratio": r1b}
        first = len(md)
        md += [f"### Fig. 1b: Var(score function) / Var(pathwise), logit gradient, K = 10, f = |z|^2 ({n1b} samples)",
               ""]
        md += C.markdown_table(["family"] + [f"D={d}" for d in dims],
                               [[LABELS[v]] + [f"{x:.3g}" for x in r1b[key(*v)]] for v in VARIANTS]).splitlines()
        sections["mixtures_fig1b"] = (first, len(md))
        # Fig. 1c
        sigmas, n1c, K1c, r1c = fig1c(torch, gk_mix, args, tqdm)
        report["fig1c"] = {"sigma": sigmas, "n": n1c, "K": K1c, "ratio": r1c}
        first = len(md) + 1
        md += ["", f"### Fig. 1c: D = 2, K = {K1c} means on the unit circle, covariance sigma^2 I ({n1c} samples)", ""]
        md += C.markdown_table(
            ["sigma", "Var(SF)/Var(shared-cov eq. 15)", "Var(SF)/Var(diag pairwise)", "Var(SF)/Var(diag reference)",
             "Var(shared)/Var(pairwise)", "Var(reference)/Var(pairwise)"],
            [[f"{s:g}", f"{a:.3g}", f"{b:.3g}", f"{c:.3g}", f"{d:.6f}", f"{e:.3g}"]
             for s, a, b, c, d, e in zip(sigmas, r1c["shared_cov"], r1c["diag_normals_pairwise"],
                                         r1c["diag_normals_reference"], r1c["pairwise_vs_shared"],
                                         r1c["pairwise_vs_reference"])]).splitlines()
        sections["mixtures_fig1c"] = (first, len(md))

        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
            fig, ax = plt.subplots(figsize=(5, 3.6))
            for v in VARIANTS:
                ax.plot(dims, r1b[key(*v)], marker="o", label=LABELS[v])
            ax.set(xscale="log", yscale="log", xlabel="dimension D", ylabel="Var(score fn) / Var(pathwise)",
                   title="Logit gradient variance reduction, K = 10")
            ax.legend(fontsize=7)
            fig.tight_layout()
            fig.savefig(os.path.join(C.OUT_DIR, "mixtures_fig1b.png"), dpi=120)
            fig, ax = plt.subplots(figsize=(5, 3.6))
            ax.plot(sigmas, r1c["shared_cov"], marker="o", label="shared covariance (eq. 15)")
            ax.plot(sigmas, r1c["diag_normals_pairwise"], marker="x", linestyle="--",
                    label="diagonal, pairwise (eqs. 49-50 + 15)")
            ax.plot(sigmas, r1c["diag_normals_reference"], marker="s", linestyle=":",
                    label="diagonal, reference (eqs. 49-51, O(KD))")
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
    for family, vel in tqdm(VARIANTS, desc="speed/memory"):
        t_ours = time_step(torch, "gradkern", family, K, D, n, repeats, vel)
        m_ours, m_ours_sq = peak_memory("gradkern", family, K, D, n, threads, vel=vel)
        entry = {"gradkern_s": t_ours, "gradkern_peak_bytes": m_ours, "gradkern_peak_bytes_sq_loss": m_ours_sq}
        row = [LABELS[(family, vel)], f"{t_ours * 1e3:.1f}", f"{m_ours / 2**20:.2f} ({m_ours_sq / 2**20:.1f})"]
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
        speed[key(family, vel)] = entry
        rows.append(row)
    report["speed"] = {"K": K, "D": D, "n": n, "dtype": "float32", "results": speed}
    first = len(md) + 1
    md += ["", f"### rsample + backward, K = {K}, D = {D}, {n} samples, float32, CPU ({threads} thread(s)); "
           "time: median of {0} runs with f = |z|^2; peak = RSS growth of one step in a fresh process, median "
           "of 3, backpropagating a preallocated upstream gradient (in parentheses: through the loss "
           "(z ** 2).sum(), whose own backward temporaries are the same in both libraries)".format(repeats), ""]
    md += C.markdown_table(["family", "gradkern ms", "gradkern peak MiB", "Pyro ms", "Pyro peak MiB", "speed-up",
                            "memory ratio", "eq. 12 grads max rel diff"], rows).splitlines()
    sections["mixtures_speed"] = (first, len(md))

    if args.speed_only:
        Ks, Ds = [], []
    else:
        Ks, Ds = [2, 5, 10, 20, 40], [10, 50, 200, 1000]
    # Scaling in K and D (ours; Pyro where it exists and fits).
    scale_rows = []
    jobs = [("K", k, 50) for k in Ks] + [("D", 10, d) for d in Ds if d != 50]
    pyro_done = set()  # Pyro has one diagonal field: time it once per (family, K, D)
    for family, vel in tqdm(VARIANTS if jobs else [], desc="scaling"):
        for axis, k, d in jobs:
            t = time_step(torch, "gradkern", family, k, d, n, 1 if args.quick else 3, vel)
            tp = float("nan")
            if (have_pyro and family in PYRO_NAMES and k * k * d <= 20 * 20 * 50 and d <= 200
                    and (family, k, d) not in pyro_done):
                tp = time_step(torch, "pyro", family, k, d, n, 1 if args.quick else 3)
                pyro_done.add((family, k, d))
            scale_rows.append([LABELS[(family, vel)], k, d, f"{t * 1e3:.1f}", "-" if tp != tp else f"{tp * 1e3:.1f}"])
    if scale_rows:
        report["scaling"] = scale_rows
        first = len(md) + 1
        md += ["", f"### Scaling: rsample + backward of {n} samples, float32, ms", ""]
        md += C.markdown_table(["family", "K", "D", "gradkern ms", "Pyro ms"], scale_rows).splitlines()
        sections["mixtures_scaling"] = (first, len(md))

    text = "\n".join(md) + "\n"
    stem = "mixtures_speed" if args.speed_only else "mixtures"
    with open(os.path.join(C.OUT_DIR, stem + ".md"), "w") as f:
        f.write(text)
    C.write_json(os.path.join(C.OUT_DIR, stem + ".json"), report)
    print(text)
    if args.docs:
        write_docs({name: md[a:b] for name, (a, b) in sections.items()})


if __name__ == "__main__":
    main()
