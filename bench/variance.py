"""Figure 1 of Figurnov, Mohamed & Mnih (2018): variance of the gradient of the cross-entropy
E_q[-log p(z)] w.r.t. phi, and time per gradient, for implicit reparameterization (gradkern), RSVI
(Naesseth et al. 2017) and the score-function estimator.

    python bench/variance.py                       # table on stdout, PNG in bench/out/variance.png
    python bench/variance.py --samples 1000 --json variance.json
    python bench/variance.py --docs                # also rewrite its section of docs/variance.md

Problems (section 6.1):
* Dirichlet: p = Dirichlet(alpha_1..alpha_100), the posterior after 100 Categorical observations under a
  uniform prior (alpha = 1 + counts); q = Dirichlet(phi, alpha_2..alpha_100).
* von Mises: p = prod_{d=1}^{10} vonMises(z_d | 0, 2); q replaces the first concentration by phi.

Estimators (per sample z; the variance is eq. 17 of appendix D, E_q[(g - c)^2] with the analytic
gradient c, estimated from --samples samples):
* implicit: autograd through gradkern.log_gamma_rsample (the phi component of the Dirichlet, the other
  components drawn without gradient exactly as for RSVI) / gradkern.vonmises_rsample; a second row goes
  through the public gradkern.dirichlet_rsample (all 100 components through gradkern).
* RSVI (gradkern.rsvi): reparameterized rejection-sampler proposal plus the score-function correction
  f(z) d/dphi log pi(eps; phi) of the accepted noise, Naesseth et al. (2017). Gamma: Marsaglia-Tsang
  proposal h(eps, a) = (a - 1/3)(1 + eps / sqrt(9a - 3))^3 for Gamma(phi + B) with shape augmentation
  z = h * prod_{i<B} u_i^(1/(phi + i)), B in {1, 5, 10, 20}. von Mises: Best-Fisher wrapped-Cauchy
  proposal h(u, kappa) = acos((1 + r cos(pi u)) / (r + cos(pi u))), no augmentation exists.
* score function: f(z) d/dphi log q(z; phi).
f(z) = -log p(z) with p's normalising constant, as written. Computation in float64, single thread.
"""
from __future__ import annotations

import argparse
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

BS = (1, 5, 10, 20)
DIR_PHIS = [0.3, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0]
VM_PHIS = [0.3, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0]
VM_DIMS, VM_P_KAPPA = 10, 2.0


# --- problems ---------------------------------------------------------------------------------------------
def dirichlet_alpha(seed):
    import numpy as np
    import torch

    rng = np.random.default_rng(seed)
    counts = rng.multinomial(100, np.full(100, 1 / 100))
    return torch.tensor(1.0 + counts, dtype=torch.float64)


def dir_f(alpha, z_log):
    """-log Dirichlet(z | alpha) from log z (rows)."""
    import torch

    return -(((alpha - 1) * z_log).sum(-1) + torch.lgamma(alpha.sum()) - torch.lgamma(alpha).sum())


def dir_analytic(alpha, phi):
    """c = d/dphi E_q[-log p(z)] with E_q log z_i = psi(q_i) - psi(sum q)."""
    from scipy.special import polygamma

    a = alpha.numpy()
    S = phi + a[1:].sum()
    return float(-(a[0] - 1) * polygamma(1, phi) + (a.sum() - len(a)) * polygamma(1, S))


def vm_f(z):
    """-log prod_d vonMises(z_d | 0, 2)."""
    import torch

    k = VM_P_KAPPA
    return -(k * torch.cos(z)).sum(-1) + z.shape[-1] * (math.log(2 * math.pi) + math.log(float(torch.special.i0(torch.tensor(k, dtype=torch.float64)))))


def vm_analytic(phi):
    """c = d/dphi E[-2 cos z1] = -2 dA/dphi, A = I1/I0, dA/dphi = 1 - A/phi - A^2."""
    from scipy.special import i0e, i1e

    A = i1e(phi) / i0e(phi)
    return float(-VM_P_KAPPA * (1 - A / phi - A * A))


# --- estimators: each returns S per-sample gradients ---------------------------------------------------------
def dir_implicit(gk, alpha, phi, S, gen, rest=None):
    """Dirichlet as normalised Gammas (section 4), built exactly like the RSVI estimator below so the
    timings compare like with like: only the phi component is reparameterized (gradkern's implicit
    gradient of log Gamma(phi)); the other 99 are drawn by the same sampler without gradient."""
    import torch

    phis = torch.full((S,), phi, dtype=torch.float64, requires_grad=True)
    log_g1 = gk.log_gamma_rsample(phis, generator=gen)
    log_g = torch.cat([log_g1[:, None], _log_gammas_rest(alpha, S, gen) if rest is None else rest], 1)
    z_log = log_g - torch.logsumexp(log_g, 1, keepdim=True)
    f = dir_f(alpha, z_log)
    return torch.autograd.grad(f.sum(), phis)[0]


def dir_implicit_full(gk, alpha, phi, S, gen):
    """The same through the public gradkern.dirichlet_rsample (all 100 components sampled by gradkern)."""
    import torch

    phis = torch.full((S,), phi, dtype=torch.float64, requires_grad=True)
    conc = torch.cat([phis[:, None], alpha[1:].expand(S, -1)], 1)
    z = gk.dirichlet_rsample(conc, generator=gen)
    f = dir_f(alpha, torch.log(z))
    return torch.autograd.grad(f.sum(), phis)[0]


def _log_gammas_rest(alpha, S, gen):
    import torch

    g = torch._standard_gamma(alpha[1:].expand(S, -1).contiguous(), generator=gen)
    return torch.log(g)


def dir_rsvi(gk, alpha, phi, S, gen, B, rest=None):
    """RSVI through the public gradkern.rsvi.gamma (Marsaglia-Tsang proposal, shape augmentation B) for the phi
    component, its surrogate's gradient per sample."""
    import torch

    phis = torch.full((S,), phi, dtype=torch.float64, requires_grad=True)
    s = gk.rsvi.gamma(phis, shape_augmentation=B, generator=gen)
    log_g = torch.cat([torch.log(s.sample)[:, None], _log_gammas_rest(alpha, S, gen) if rest is None else rest], 1)
    z_log = log_g - torch.logsumexp(log_g, 1, keepdim=True)
    f = dir_f(alpha, z_log)
    return torch.autograd.grad(gk.rsvi.surrogate(f, s.noise_log_prob).sum(), phis)[0]


def dir_score(alpha, phi, S, gen, rest=None):
    import torch

    phi_t = torch.tensor(phi, dtype=torch.float64)
    log_g1 = torch.log(torch._standard_gamma(phi_t.expand(S).contiguous(), generator=gen))
    log_g = torch.cat([log_g1[:, None], _log_gammas_rest(alpha, S, gen) if rest is None else rest], 1)
    z_log = log_g - torch.logsumexp(log_g, 1, keepdim=True)
    f = dir_f(alpha, z_log)
    Ssum = phi_t + alpha[1:].sum()
    return f * (z_log[:, 0] + torch.digamma(Ssum) - torch.digamma(phi_t))


def vm_rest(gk, S, gen):
    import torch

    k = torch.full((S, VM_DIMS - 1), VM_P_KAPPA, dtype=torch.float64)
    return gk.vonmises_rsample(torch.zeros((), dtype=torch.float64), k, generator=gen).detach()


def vm_implicit(gk, phi, S, gen):
    import torch

    phis = torch.full((S,), phi, dtype=torch.float64, requires_grad=True)
    z1 = gk.vonmises_rsample(torch.zeros((), dtype=torch.float64), phis, generator=gen)
    z = torch.cat([z1[:, None], vm_rest(gk, S, gen)], 1)
    return torch.autograd.grad(vm_f(z).sum(), phis)[0]


def vm_rsvi(gk, phi, S, gen):
    """RSVI through the public gradkern.rsvi.vonmises (Best-Fisher proposal)."""
    import torch

    phis = torch.full((S,), phi, dtype=torch.float64, requires_grad=True)
    s = gk.rsvi.vonmises(torch.zeros((), dtype=torch.float64), phis, generator=gen)
    z = torch.cat([s.sample[:, None], vm_rest(gk, S, gen)], 1)
    f = vm_f(z)
    return torch.autograd.grad(gk.rsvi.surrogate(f, s.noise_log_prob).sum(), phis)[0]


def vm_score(gk, phi, S, gen):
    import torch

    phis = torch.full((S,), phi, dtype=torch.float64)
    z1 = gk.vonmises_rsample(torch.zeros((), dtype=torch.float64), phis, generator=gen).detach()
    z = torch.cat([z1[:, None], vm_rest(gk, S, gen)], 1)
    A = torch.special.i1e(phis) / torch.special.i0e(phis)
    return vm_f(z) * (torch.cos(z1) - A)


# --- driver -------------------------------------------------------------------------------------------------
def run(args):
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    gk, note = C.import_gradkern()
    if gk is None:
        print(note, file=sys.stderr)
        sys.exit(2)
    S = args.samples
    alpha = dirichlet_alpha(args.seed)
    gen = torch.Generator().manual_seed(args.seed)

    # Each Dirichlet method is (name, fn(phi, rest=None)); rest = log Gamma draws of the 99 components that
    # do not depend on phi. They are identical in distribution for every estimator, so for timing they are
    # drawn once beforehand: the time column then measures the estimators, not the shared sampling.
    methods_dir = [("implicit (gradkern)", lambda phi, rest=None: dir_implicit(gk, alpha, phi, S, gen, rest)),
                   ("implicit, dirichlet_rsample", lambda phi, rest=None: dir_implicit_full(gk, alpha, phi, S, gen))]
    methods_dir += [(f"RSVI B={B}", (lambda B: lambda phi, rest=None: dir_rsvi(gk, alpha, phi, S, gen, B, rest))(B))
                    for B in BS]
    methods_dir += [("score function", lambda phi, rest=None: dir_score(alpha, phi, S, gen, rest))]
    methods_vm = [("implicit (gradkern)", lambda phi: vm_implicit(gk, phi, S, gen)),
                  ("RSVI", lambda phi: vm_rsvi(gk, phi, S, gen)),
                  ("score function", lambda phi: vm_score(gk, phi, S, gen))]

    res = {"machine": C.machine_description(), "samples": S, "seed": args.seed, "threads": args.threads,
           "dirichlet": {"alpha_1": float(alpha[0]), "phis": DIR_PHIS, "variance": {}, "mean_error": {},
                         "time_per_gradient": {}},
           "vonmises": {"optimum": VM_P_KAPPA, "phis": VM_PHIS, "variance": {}, "mean_error": {},
                        "time_per_gradient": {}}}
    for prob, methods, phis, analytic in (("dirichlet", methods_dir, DIR_PHIS, lambda p: dir_analytic(alpha, p)),
                                          ("vonmises", methods_vm, VM_PHIS, vm_analytic)):
        for name, fn in methods:
            var, var_se, merr = [], [], []
            for phi in phis:
                g = fn(phi).double().numpy()
                c = analytic(phi)
                sq = (g - c) ** 2
                var.append(float(np.mean(sq)))
                var_se.append(float(np.std(sq) / math.sqrt(S)))
                merr.append(float((np.mean(g) - c) / (np.std(g) / math.sqrt(S))))  # in standard errors
            res[prob]["variance"][name] = var
            res[prob].setdefault("variance_se", {})[name] = var_se
            res[prob]["mean_error"][name] = merr
            phi_t = res[prob].get("alpha_1", VM_P_KAPPA)
            if prob == "dirichlet":
                rest = _log_gammas_rest(alpha, S, gen)
                call = (lambda fn=fn, rest=rest: fn(phi_t, rest=rest))
            else:
                call = (lambda fn=fn: fn(phi_t))
            res[prob]["time_per_gradient"][name] = C.time_per_element(call, S, repeats=5, warmup=1,
                                                                      min_total_elements=0)
    return res


def report(res):
    lines = [f"Machine: {res['machine']}; {res['threads']} thread(s); {res['samples']} samples per phi; "
             "variance = E[(g - c)^2] (eq. 17); time = seconds per single-sample gradient (batch of "
             f"{res['samples']} / {res['samples']}) at the optimal phi; for the Dirichlet the 99 components that "
             "do not depend on phi are drawn beforehand (same for every estimator), except in the "
             "dirichlet_rsample row, which samples all 100 through gradkern."]
    checks = []
    for prob, title in (("dirichlet", f"Dirichlet (alpha_1 = {res['dirichlet'].get('alpha_1', 0):g}, the optimal phi)"),
                        ("vonmises", "von Mises (optimal phi = 2)")):
        r = res[prob]
        names = list(r["variance"])
        rows = []
        for i, phi in enumerate(r["phis"]):
            rows.append([f"{phi:g}"] + [C.sci(r["variance"][n][i], 2) for n in names])
        rows.append(["time/grad (s)"] + [C.sci(r["time_per_gradient"][n], 2) for n in names])
        rows.append(["max abs bias (s.e.)"] + [f"{max(abs(v) for v in r['mean_error'][n]):.1f}" for n in names])
        lines += ["", f"### {title}: gradient variance", "", C.markdown_table(["phi"] + names, rows)]
        imp = r["variance"]["implicit (gradkern)"]
        imp_se = r["variance_se"]["implicit (gradkern)"]
        rsvi = [n for n in names if n.startswith("RSVI")]
        # "below" up to twice the standard error of the difference of the two variance estimates
        below = all(imp[i] < r["variance"][n][i] + 2 * math.hypot(imp_se[i], r["variance_se"][n][i])
                    for n in rsvi for i in range(len(imp)))
        strictly = sum(imp[i] < r["variance"][n][i] for n in rsvi for i in range(len(imp)))
        checks.append((f"{prob}: implicit variance below every RSVI variant at every phi (within 2 s.e.; "
                       f"strictly below in {strictly}/{len(rsvi) * len(imp)})", below))
        if len(rsvi) > 1:
            se = r["variance_se"]
            mono = all(r["variance"][rsvi[j + 1]][i] <= r["variance"][rsvi[j]][i]
                       + 2 * math.hypot(se[rsvi[j + 1]][i], se[rsvi[j]][i])
                       for j in range(len(rsvi) - 1) for i in range(len(imp)))
            closer = all(r["variance"][rsvi[-1]][i] / imp[i] < r["variance"][rsvi[0]][i] / imp[i]
                         for i in range(len(imp)))
            checks.append((f"{prob}: RSVI variance falls as B grows (within 2 s.e.)", mono))
            checks.append((f"{prob}: RSVI B={BS[-1]} closer to implicit than B={BS[0]} at every phi", closer))
    lines += ["", "Qualitative finding of the paper (Figure 1):"]
    lines += [f"- {'PASS' if ok else 'FAIL'}: {c}" for c, ok in checks]
    res["checks"] = [{"check": c, "pass": ok} for c, ok in checks]
    return "\n".join(lines)


def plot(res, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(17, 3.8), gridspec_kw={"width_ratios": [3, 1.3, 3, 1.3]})
    for j, (prob, title, opt) in enumerate((("dirichlet", "Dirichlet", res["dirichlet"].get("alpha_1")),
                                            ("vonmises", "von Mises", VM_P_KAPPA))):
        r = res[prob]
        ax, axt = axes[2 * j], axes[2 * j + 1]
        names = list(r["variance"])
        rsvi = [n for n in names if n.startswith("RSVI")]
        colors = plt.cm.viridis_r([0.2 + 0.65 * i / max(1, len(rsvi) - 1) for i in range(len(rsvi))])
        for n in names:
            if n == "implicit (gradkern)":
                style = dict(color="black", lw=2)
            elif n.startswith("implicit"):
                style = dict(color="black", lw=1, ls="-.")
            elif n.startswith("score"):
                style = dict(color="gray", ls=":")
            else:
                style = dict(color=colors[rsvi.index(n)], ls="--")
            ax.plot(r["phis"], r["variance"][n], marker="o", ms=3, label=n, **style)
        ax.axvline(opt, color="k", lw=0.8, alpha=0.5)
        ax.set_xscale("log"); ax.set_yscale("log")
        ax.set_xlabel(r"$\phi$"); ax.set_ylabel("gradient variance"); ax.set_title(f"{title}: variance")
        ax.legend(fontsize=7)
        ts = [r["time_per_gradient"][n] for n in names]
        axt.barh(range(len(names)), ts, color="tab:blue")
        axt.set_yticks(range(len(names))); axt.set_yticklabels(names, fontsize=7)
        axt.ticklabel_format(axis="x", style="sci", scilimits=(0, 0)); axt.set_xlabel("s per gradient"); axt.set_title(f"{title}: time")
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=1000, help="samples per phi (paper: 1000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--png", default=os.path.join(C.OUT_DIR, "variance.png"))
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--docs", action="store_true", help="write the tables into docs/variance.md (section variance)")
    args = ap.parse_args(argv)
    C.limit_threads_env(args.threads)
    res = run(args)
    text = report(res)
    print(text)
    plot(res, args.png)
    print(f"\nplot: {os.path.relpath(args.png)}")
    if args.json:
        C.write_json(args.json, res)
    if args.docs:
        given = sys.argv[1:] if argv is None else argv
        cmd = " ".join(["python bench/variance.py"] + [a for a in given if a != "--docs"])
        print("wrote", C.write_doc_section("variance.md", "variance", text, command=cmd), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
