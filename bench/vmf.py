"""von Mises-Fisher: accuracy, speed and gradient variance of gradkern's implicit reparameterization
(issue 17), side by side with a straightforward batched torch implementation of Wood's algorithm.

Three sections, each printed as a Markdown table (``--docs`` writes them to docs/vmf.md):

* accuracy: dw/dkappa (and the CDF) against the mpmath table tests/data/vmf_ref.csv
  (tools/gen_vmf_ref.py), max and mean relative error per dimension d, float64 and float32;
* speed: time per sample of gradkern.vmf_rsample (forward; forward + backward to loc and kappa) against a
  batched torch Wood sampler written here (a Beta proposal per round from torch.distributions, rounds until
  every element is accepted; its backward is autograd through the accepted proposal's transformation, the
  reparameterized half of the rejection-sampler estimator) and against a Normal rsample of the same
  (n, d) size; one thread and all threads, in one process;
* variance: per-sample variance of three unbiased estimators of d/dkappa of the cross-entropy
  E_q[-log p(z)], q = vMF(mu, kappa), p = vMF(t, 10), on a grid of kappa and d: gradkern's implicit
  gradient, the rejection-sampler gradient with its correction term (Naesseth et al. 2017, the estimator
  of the hyperspherical VAE of Davidson et al. 2018) and the score function; plotted to
  bench/out/vmf_variance.png (docs/figures/vmf_variance.png with --docs).

    python bench/vmf.py [--docs] [--quick]
"""
import argparse
import math
import os
import sys

import _common as C

C.limit_threads_env(None)
import torch  # noqa: E402

gk, GK_NOTE = C.import_gradkern()
if gk is None:
    sys.exit(GK_NOTE)
OPS = torch.ops.gradkern


# --- the peer: Wood's algorithm in batched torch ops ----------------------------------------------------
def wood_torch(loc, kappa, max_rounds=100, return_eps=False):
    """One vMF sample per row of (loc (n, d), kappa (n,)): Wood's rejection sampler, batched."""
    n, d = loc.shape
    dm1 = d - 1.0
    b = dm1 / (2 * kappa + torch.sqrt(4 * kappa ** 2 + dm1 ** 2))
    x0 = (1 - b) / (1 + b)
    c = kappa * x0 + dm1 * torch.log(1 - x0 ** 2)
    beta = torch.distributions.Beta(torch.tensor(dm1 / 2, dtype=loc.dtype), torch.tensor(dm1 / 2, dtype=loc.dtype))
    eps = torch.zeros(n, dtype=loc.dtype)
    todo = torch.ones(n, dtype=torch.bool)
    for _ in range(max_rounds):
        idx = todo.nonzero().squeeze(-1)
        if idx.numel() == 0:
            break
        e = beta.sample((idx.numel(),))
        bb, xx, cc, kk = b[idx].detach(), x0[idx].detach(), c[idx].detach(), kappa[idx].detach()
        w = (1 - (1 + bb) * e) / (1 - (1 - bb) * e)
        ok = kk * w + dm1 * torch.log(1 - xx * w) - cc >= torch.log(torch.rand(idx.numel(), dtype=loc.dtype))
        eps[idx[ok]] = e[ok]
        todo[idx[ok]] = False
    w = (1 - (1 + b) * eps) / (1 - (1 - b) * eps)  # differentiable in kappa through b (eps fixed)
    v = torch.nn.functional.normalize(torch.randn(n, d - 1, dtype=loc.dtype), dim=-1)
    x = torch.cat([w[:, None], torch.sqrt((1 - w ** 2).clamp_min(0))[:, None] * v], -1)
    z = householder_rotate(loc, x)
    return (z, eps, w, b) if return_eps else z


def householder_rotate(loc, x):
    """The peer's map sending e_1 to loc, in torch ops: -sigma (x - 2 (h^T x / h^T h) h), h = e_1 + sigma loc,
    sigma the sign of loc_1 (the stable choice, as gradkern's fused kernel makes it)."""
    sigma = torch.where(loc[..., :1] >= 0, 1.0, -1.0).to(loc.dtype)
    h = torch.cat([loc[..., :1] * sigma + 1, loc[..., 1:] * sigma], -1)
    hh = (h * h).sum(-1, keepdim=True)
    return -sigma * (x - (2 * (h * x).sum(-1, keepdim=True) / hh) * h)


# --- accuracy ------------------------------------------------------------------------------------------
def accuracy_section():
    path = os.path.join(C.REPO, "tests", "data", "vmf_ref.csv")
    rows = [line.strip().split(",") for line in open(path) if not line.startswith("#")]
    out = []
    for dtype, kmax in ((torch.float64, 1e6), (torch.float32, 1e5)):
        for d in sorted({int(r[0]) for r in rows}):
            sel = [r for r in rows if int(r[0]) == d and float(r[1]) <= kmax]
            k = torch.tensor([float(r[1]) for r in sel], dtype=dtype)
            u = torch.tensor([float(r[2]) for r in sel], dtype=dtype)
            ref_cdf = torch.tensor([float(r[3]) for r in sel], dtype=torch.float64)
            ref = torch.tensor([float(r[4]) for r in sel], dtype=torch.float64)
            got = OPS.vmf_grad_u(k, u, d).double()
            # CDFs representable as normal numbers of the dtype (below, they underflow to 0)
            keep = ref_cdf > (1e-30 if dtype == torch.float32 else 1e-300)
            rel = ((got - ref).abs() / ref.abs())[keep]
            cdf = OPS.vmf_cdf_u(u, k, d).double()
            crel = ((cdf - ref_cdf).abs() / ref_cdf)[keep]
            out.append([str(dtype).replace("torch.", ""), str(d), str(int(keep.sum())),
                        f"{int(k.min())}–{k.max().item():.0e}", C.sci(rel.max().item()), C.sci(rel.mean().item()),
                        C.sci((got - ref).abs()[keep].mean().item()), C.sci(crel.max().item())])
    return C.markdown_table(["dtype", "d", "points", "kappa", "dw/dkappa max rel", "mean rel", "mean abs",
                             "CDF max rel"], out)


# --- speed ---------------------------------------------------------------------------------------------
def speed_section(quick):
    n = 20000 if quick else 100000
    rows = []
    all_threads = torch.get_num_threads()
    for threads in sorted({1, all_threads}):
        torch.set_num_threads(threads)
        for d, kappa in ((3, 10.0), (10, 50.0), (100, 100.0)):
            g = torch.Generator().manual_seed(0)
            loc = torch.nn.functional.normalize(torch.randn(n, d, generator=g), dim=-1)
            k = torch.full((n,), kappa)

            def gk_fwd():
                return gk.vmf_rsample(loc, k)

            def wood_fwd():
                return wood_torch(loc, k)

            gk_fb = C.forward_backward(lambda l, kk: gk.vmf_rsample(l, kk), loc, k)
            wood_fb = C.forward_backward(lambda l, kk: wood_torch(l, kk), loc, k)
            mean, scale = torch.zeros(n, d), torch.ones(n, d)
            normal_fb = C.forward_backward(lambda m, s: torch.distributions.Normal(m, s).rsample(), mean, scale)
            t = {name: C.time_per_element(fn, n, repeats=3, min_total_elements=n * 3)
                 for name, fn in (("gk", gk_fwd), ("wood", wood_fwd), ("gk_fb", gk_fb), ("wood_fb", wood_fb),
                                  ("normal_fb", normal_fb))}
            rows.append([str(threads), str(d), f"{kappa:g}", f"{t['gk'] * 1e9:.0f}", f"{t['wood'] * 1e9:.0f}",
                         f"{t['wood'] / t['gk']:.1f}x", f"{t['gk_fb'] * 1e9:.0f}", f"{t['wood_fb'] * 1e9:.0f}",
                         f"{t['wood_fb'] / t['gk_fb']:.1f}x", f"{t['gk_fb'] / t['normal_fb']:.0f}x"])
    torch.set_num_threads(all_threads)
    return C.markdown_table(
        ["threads", "d", "kappa", "gradkern fwd ns/sample", "torch Wood fwd", "speed-up", "gradkern fwd+bwd",
         "torch Wood fwd+bwd", "speed-up", "gradkern fwd+bwd / Normal(n, d)"], rows)


# --- variance ------------------------------------------------------------------------------------------
def _per_sample_grads(d, kappa, n, seed):
    """(implicit, rejection + correction, score function) per-sample gradients of f(z) = -log p(z) up to a
    constant, f = -10 t^T z, w.r.t. kappa."""
    dtype = torch.float64
    mu = torch.zeros(d, dtype=dtype)
    mu[0] = 1
    t = torch.zeros(d, dtype=dtype)
    t[0], t[1] = math.cos(0.7), math.sin(0.7)

    def f(z):
        return -10.0 * (z @ t)

    torch.manual_seed(seed)
    k = torch.full((n,), kappa, dtype=dtype, requires_grad=True)
    z = gk.vmf_rsample(mu.expand(n, d), k)
    (implicit,) = torch.autograd.grad(f(z).sum(), k)
    # the score function: f(z) d/dkappa log q(z) = f(z) (w - A(kappa))
    with torch.no_grad():
        _, m, _ = OPS.vmf_moments(torch.tensor(kappa, dtype=dtype), d)
        score = f(z) * ((z @ mu) - (1 - m))
    # rejection sampler + correction (Naesseth et al. 2017): eps the accepted Beta proposal, w = h(eps, kappa)
    k2 = torch.full((n,), kappa, dtype=dtype, requires_grad=True)
    z2, eps, w, b = wood_torch(mu.expand(n, d), k2, return_eps=True)
    nu = (d - 3) / 2
    log_z_u, _, _ = OPS.vmf_moments(k2, d)
    log_q = -k2 - log_z_u + k2 * w + nu * torch.log1p(-w * w)   # log density of w (its kappa-dependence)
    log_jac = torch.log(2 * b) - 2 * torch.log(1 - (1 - b) * eps)  # log |dh/deps|; the Beta density is fixed
    fz = f(z2)
    g_rep = torch.autograd.grad(fz.sum(), k2, retain_graph=True)[0]
    g_cor = fz.detach() * torch.autograd.grad((log_q + log_jac).sum(), k2)[0]
    return implicit, g_rep + g_cor, score


def variance_section(quick, png):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from tqdm import tqdm

    n = 5000 if quick else 20000
    kappas = [0.1, 1.0, 10.0, 100.0, 1000.0]
    dims = (3, 10, 100)
    rows, curves = [], {}
    for d in dims:
        for kappa in tqdm(kappas, desc=f"variance d={d}"):
            imp, rsvi, score = _per_sample_grads(d, kappa, n, seed=int(kappa * 10) + d)
            # the three estimate one gradient: their means agree within standard errors
            v = [x.var().item() for x in (imp, rsvi, score)]
            means = [x.mean().item() for x in (imp, rsvi, score)]
            # the exact gradient: d/dkappa E[-10 t^T z] = -10 cos(0.7) A_d'(kappa), A_d' = Var[w]
            _, _, var_w = OPS.vmf_moments(torch.tensor(kappa, dtype=torch.float64), d)
            exact = -10 * math.cos(0.7) * var_w.item()
            worst_z = max(abs(m_ - exact) / math.sqrt(v_ / n) for m_, v_ in zip(means, v))
            rows.append([str(d), f"{kappa:g}", f"{exact:.4g}", f"{means[0]:.4g}", f"{means[1]:.4g}", f"{means[2]:.4g}",
                         f"{worst_z:.1f}",
                         C.sci(v[0]), C.sci(v[1]), C.sci(v[2]), f"{v[1] / v[0]:.1f}x", f"{v[2] / v[0]:.0f}x"])
            curves.setdefault(d, []).append(v)
    fig, axes = plt.subplots(1, len(dims), figsize=(4 * len(dims), 3.4), sharey=False)
    for ax, d in zip(axes, dims):
        vs = list(zip(*curves[d]))
        for vals, label in zip(vs, ("implicit (gradkern)", "rejection + correction", "score function")):
            ax.loglog(kappas, vals, marker="o", label=label)
        ax.set_title(f"d = {d}")
        ax.set_xlabel("concentration kappa")
    axes[0].set_ylabel("per-sample variance of d/dkappa")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    return C.markdown_table(["d", "kappa", "exact", "mean implicit", "mean rej.+corr.", "mean score",
                             "max |mean - exact| / SE", "var implicit",
                             "var rej.+corr.", "var score", "rej.+corr. / implicit", "score / implicit"], rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", action="store_true", help="write the sections to docs/vmf.md and the figure to docs/")
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    args = ap.parse_args(argv)
    print(GK_NOTE)
    os.makedirs(C.OUT_DIR, exist_ok=True)
    png = os.path.join(C.REPO, "docs", "figures", "vmf_variance.png") if args.docs else \
        os.path.join(C.OUT_DIR, "vmf_variance.png")
    sections = {}
    sections["vmf-accuracy"] = accuracy_section()
    print("\n## Accuracy (mpmath)\n\n" + sections["vmf-accuracy"])
    sections["vmf-speed"] = speed_section(args.quick)
    print("\n## Speed\n\n" + sections["vmf-speed"])
    sections["vmf-variance"] = variance_section(args.quick, png)
    print("\n## Gradient variance\n\n" + sections["vmf-variance"] + f"\n\nfigure: {png}")
    if args.docs:
        for name, md in sections.items():
            C.write_doc_section("vmf.md", name, md, command="python bench/vmf.py --docs")


if __name__ == "__main__":
    main()
