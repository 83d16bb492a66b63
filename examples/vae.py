"""VAEs with Normal, von Mises, Beta and Gamma latents on sklearn's digits (section 6.3 and Table 4 of
Figurnov et al. 2018, scaled to the data), trained with gradkern's implicit reparameterization gradients.

    python examples/vae.py                 # dims 2, 5 and 10, 3 seeds, 100 epochs (about 6 minutes on 2 cores)
    python examples/vae.py --long          # 300 epochs
    python examples/vae.py --epochs 1 --dims 2 --seeds 1 --no-plots --out /tmp/vae   # a smoke run (seconds)

Data: the 1797 8x8 digits that ship with scikit-learn, pixel intensities / 16 binarised afresh at every
step (dynamic binarisation), a fixed split of 1500 training and 297 test images. Model: encoder and decoder
MLPs with one hidden layer of 200 tanh units, Bernoulli pixels. Latents and priors as Table 4's rows:
Normal posterior / N(0, 1) prior; von Mises posterior per coordinate / uniform prior on the circle (the
decoder sees cos z and sin z); Beta posterior / uniform prior on [0, 1]; Gamma posterior / Gamma(1, 1)
prior; and the hyperspherical VAE's row (Davidson et al. 2018): a von Mises-Fisher posterior on the
sphere S^(dim-1) in R^dim (one concentration per image) / the uniform prior on the sphere, trained with
the exact implicit gradient w.r.t. the concentration. The Gamma, Beta and von Mises rows are also trained with
RSVI (gradkern.rsvi; Naesseth et al. 2017), B = 5 and 20 for Gamma and Beta, the comparison of Table 7 in
the paper's appendix. The KL terms are analytic (entropies for the uniform priors). Reported on the test set: the ELBO
(mean over 10 posterior samples per image) and the importance-weighted log-likelihood with 100 samples,
nats per image, mean +- std over the seeds; the variance of the encoder's gradient across independent
draws during training (Figure 3c style); 2-D latent spaces of the Normal, Beta, von Mises and vMF posteriors
(Figure 4 style). Writes vae_results.md, vae_results.json, vae_grad_variance.png and vae_latents.png to
--out (default examples/out/).
"""
from __future__ import annotations

import argparse
import glob
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import Bernoulli, Normal, kl_divergence

HERE = os.path.dirname(os.path.abspath(__file__))
# This checkout's package when its extension is built in place (python setup.py build_ext --inplace);
# otherwise the installed one (pip install .), whose source tree has no extension.
if glob.glob(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "gradkern", "_C*")):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import gradkern  # noqa: E402
from gradkern.distributions import Beta, Gamma, HypersphericalUniform, VonMises, VonMisesFisher  # noqa: E402

FAMILIES = ("normal", "vonmises", "beta", "gamma", "vmf")
# The RSVI rows (Table 7 of the paper's appendix): the same models, trained with gradkern.rsvi's estimator
# (shape augmentation B for Gamma and Beta; none exists for von Mises). "<family>-rsvi<B>".
RSVI_FAMILIES = ("gamma-rsvi5", "gamma-rsvi20", "beta-rsvi5", "beta-rsvi20", "vonmises-rsvi")
TITLES = {"normal": "Normal / N(0, 1)", "vonmises": "von Mises / uniform (circle)", "beta": "Beta / uniform",
          "gamma": "Gamma / Gamma(1, 1)", "vmf": "von Mises-Fisher / uniform (sphere S^(dim-1))",
          "gamma-rsvi5": "Gamma / Gamma(1, 1), RSVI B = 5", "gamma-rsvi20": "Gamma / Gamma(1, 1), RSVI B = 20",
          "beta-rsvi5": "Beta / uniform, RSVI B = 5", "beta-rsvi20": "Beta / uniform, RSVI B = 20",
          "vonmises-rsvi": "von Mises / uniform (circle), RSVI"}


def title(family):
    """The table's row title: TITLES' entry, or one built for any other RSVI row (e.g. gamma-rsvi10)."""
    if family in TITLES:
        return TITLES[family]
    base, b = split_family(family)
    return f"{TITLES[base]}, RSVI" + (f" B = {b}" if b else "")


def split_family(name):
    """'gamma-rsvi5' -> ('gamma', 5); 'vonmises-rsvi' -> ('vonmises', 0); 'beta' -> ('beta', None)."""
    base, _, est = name.partition("-")
    if not est:
        return base, None
    if not est.startswith("rsvi") or base not in ("gamma", "beta", "vonmises"):
        raise ValueError(f"unknown family {name!r}: RSVI rows are gamma-rsvi<B>, beta-rsvi<B>, vonmises-rsvi")
    return base, int(est[4:] or 0)


def load_digits(seed=0):
    from sklearn.datasets import load_digits as sk

    d = sk()
    x = torch.tensor(d.data, dtype=torch.float32) / 16.0
    y = torch.tensor(d.target)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    return x[perm[:1500]], y[perm[:1500]], x[perm[1500:]], y[perm[1500:]]


class VAE(nn.Module):
    def __init__(self, family, dim, hidden=200):
        super().__init__()
        # rsvi_b: None for gradkern's implicit gradients, else RSVI's shape augmentation (0 for von Mises)
        (self.family, self.rsvi_b), self.dim = split_family(family), dim
        self.enc = nn.Sequential(nn.Linear(64, hidden), nn.Tanh(), nn.Linear(hidden, 2 * dim))
        dec_in = 2 * dim if self.family == "vonmises" else dim
        self.dec = nn.Sequential(nn.Linear(dec_in, hidden), nn.Tanh(), nn.Linear(hidden, 64))

    def posterior(self, x):
        h1, h2 = self.enc(x).chunk(2, -1)
        if self.family == "vmf":  # a mean direction in R^dim and one concentration per image
            return VonMisesFisher(F.normalize(h1, dim=-1), F.softplus(h2[..., 0]) + 1e-3)
        if self.family == "normal":
            return Normal(h1, F.softplus(h2) + 1e-4)
        if self.family == "vonmises":
            return VonMises(h1, F.softplus(h2) + 1e-4)
        if self.family == "beta":
            return Beta(F.softplus(h1) + 1e-3, F.softplus(h2) + 1e-3)
        return Gamma(F.softplus(h1) + 1e-3, F.softplus(h2) + 1e-3)

    def event_sum(self, t):
        """Sum a per-coordinate log density over the latent's coordinates (the vMF's is per sample already)."""
        return t if self.family == "vmf" else t.sum(-1)

    def prior_log_prob(self, z):
        if self.family == "vmf":
            return HypersphericalUniform(self.dim, dtype=z.dtype).log_prob(z)
        if self.family == "normal":
            return Normal(0.0, 1.0).log_prob(z)
        if self.family == "vonmises":
            return torch.full_like(z, -math.log(2 * math.pi))
        if self.family == "beta":
            return torch.zeros_like(z)
        return Gamma(torch.ones_like(z), torch.ones_like(z)).log_prob(z)

    def kl(self, q):
        if self.family == "vmf":
            return kl_divergence(q, HypersphericalUniform(self.dim, dtype=q.loc.dtype))
        if self.family == "normal":
            return kl_divergence(q, Normal(torch.zeros_like(q.loc), torch.ones_like(q.scale))).sum(-1)
        if self.family == "vonmises":
            return (math.log(2 * math.pi) - q.entropy()).sum(-1)
        if self.family == "beta":
            return (-q.entropy()).sum(-1)
        p = Gamma(torch.ones_like(q.concentration), torch.ones_like(q.rate))
        return kl_divergence(q, p).sum(-1)

    def decode(self, z):
        if self.family == "vonmises":
            z = torch.cat([torch.cos(z), torch.sin(z)], -1)
        return self.dec(z)

    def elbo(self, x):
        q = self.posterior(x)
        z = q.rsample()
        log_lik = Bernoulli(logits=self.decode(z)).log_prob(x).sum(-1)
        return log_lik - self.kl(q)

    def objective(self, x):
        """The per-image training objective: the ELBO (implicit gradients), or for the RSVI rows a surrogate
        whose value is the ELBO and whose gradient is RSVI's (the correction weighted by the sampled term,
        the reconstruction; the KL is analytic)."""
        if self.rsvi_b is None:
            return self.elbo(x)
        q = self.posterior(x)
        if self.family == "gamma":
            s = gradkern.rsvi.gamma(q.concentration, q.rate, shape_augmentation=self.rsvi_b)
        elif self.family == "beta":
            s = gradkern.rsvi.beta(q.concentration1, q.concentration0, shape_augmentation=self.rsvi_b)
        else:
            s = gradkern.rsvi.vonmises(q.loc, q.concentration)
        log_lik = Bernoulli(logits=self.decode(s.sample)).log_prob(x).sum(-1)
        return gradkern.rsvi.surrogate(log_lik, s.noise_log_prob.sum(-1)) - self.kl(q)

    @torch.no_grad()
    def iwae(self, x, k=100):
        q = self.posterior(x)
        z = q.sample((k,))
        log_w = (Bernoulli(logits=self.decode(z)).log_prob(x).sum(-1) + self.event_sum(self.prior_log_prob(z))
                 - self.event_sum(q.log_prob(z)))
        return torch.logsumexp(log_w, 0) - math.log(k)


def grad_variance(model, x, draws=10):
    """Mean over the encoder's last-layer weights of the variance of their gradient across draws (one
    fixed binarised batch)."""
    grads = []
    for _ in range(draws):
        model.zero_grad()
        (-model.objective(x).mean()).backward()
        grads.append(model.enc[-1].weight.grad.detach().clone().flatten())
    g = torch.stack(grads)
    return g.var(0).mean().item()


def train(family, dim, seed, data, epochs, batch=100, lr=1e-3, track_variance=False):
    xtr, _, xte, _ = data
    torch.manual_seed(seed)
    model = VAE(family, dim)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(1000 + seed)
    probe = torch.bernoulli(xtr[:100], generator=torch.Generator().manual_seed(7))
    variance = []
    for epoch in range(epochs):
        perm = torch.randperm(len(xtr), generator=gen)
        for i in range(0, len(xtr), batch):
            x = torch.bernoulli(xtr[perm[i:i + batch]], generator=gen)
            loss = -model.objective(x).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        if track_variance and (epoch % max(1, epochs // 10) == 0 or epoch == epochs - 1):
            variance.append((epoch + 1, grad_variance(model, probe)))
    xb = torch.bernoulli(xte, generator=torch.Generator().manual_seed(99))
    with torch.no_grad():
        elbo = torch.stack([model.elbo(xb) for _ in range(10)]).mean().item()
        iwae = model.iwae(xb).mean().item()
    return model, elbo, iwae, variance


def plot_latents(models, data, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _, _, xte, yte = data
    fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 4.3), squeeze=False)
    axes = axes[0]
    for ax, (family, model) in zip(axes, models.items()):
        with torch.no_grad():
            q = model.posterior(xte)
            z = q.mean if family not in ("vonmises", "vmf") else (
                q.loc.remainder(2 * math.pi) if family == "vonmises" else q.loc)
        sc = ax.scatter(z[:, 0], z[:, 1], c=yte, cmap="tab10", s=8)
        ax.set_title(f"{TITLES[family].split(' /')[0]} posterior, mean"
                     + {"vonmises": " angle", "vmf": " direction (circle)"}.get(family, ""))
        ax.set_xlabel("z1")
        ax.set_ylabel("z2")
    fig.colorbar(sc, ax=axes, label="digit")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_variance(curves, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    colors = dict(zip(FAMILIES, plt.cm.tab10.colors))
    styles = {None: ("-", "o"), 0: ("--", "s"), 5: ("--", "s"), 20: (":", "^")}  # implicit, RSVI B
    for family, curve in curves.items():
        if curve:
            base, b = split_family(family)
            ls, mk = styles.get(b, ("--", "s"))
            ax.plot([e for e, _ in curve], [v for _, v in curve], ls=ls, marker=mk, color=colors[base],
                    label=title(family))
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("gradient variance (encoder output weights)")
    ax.set_title("Gradient variance during training (dim 2, seed 0)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--long", action="store_true", help="300 epochs")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--dims", default="2,5,10", help="comma-separated latent dimensions")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--families", default=",".join(FAMILIES + RSVI_FAMILIES),
                    help="comma-separated; RSVI rows: gamma-rsvi<B>, beta-rsvi<B>, vonmises-rsvi")
    ap.add_argument("--out", default=os.path.join(HERE, "out"))
    ap.add_argument("--no-plots", action="store_true", help="skip the PNGs (no matplotlib needed)")
    args = ap.parse_args(argv)
    from tqdm import tqdm

    epochs = args.epochs or (300 if args.long else 100)
    dims = [int(d) for d in args.dims.split(",")]
    families = [f for f in args.families.split(",") if f]
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    data = load_digits()
    results, latents, curves = {}, {}, {}
    jobs = [(f, d, s) for d in dims for f in families for s in range(args.seeds)]
    t0 = time.perf_counter()
    for family, dim, seed in tqdm(jobs, desc="vae", unit="run"):
        track = dim == dims[0] and seed == 0
        model, elbo, iwae, var = train(family, dim, seed, data, epochs, track_variance=track)
        results.setdefault((family, dim), []).append((elbo, iwae))
        if track:
            curves[family] = var
            if dim == 2 and family in ("normal", "beta", "vonmises", "vmf"):
                latents[family] = model
    rows = []
    for (family, dim), vals in results.items():
        e = torch.tensor([v[0] for v in vals])
        w = torch.tensor([v[1] for v in vals])
        sd = (lambda t: t.std().item() if len(t) > 1 else 0.0)
        rows.append(f"| {title(family)} | {dim} | {e.mean():.2f} +- {sd(e):.2f} | {w.mean():.2f} +- {sd(w):.2f} |")
    md = [f"Test set (297 digits), nats per image, mean +- std over {args.seeds} seed(s), {epochs} epochs, "
          f"gradkern {gradkern.__version__}, torch {torch.__version__}; {time.perf_counter() - t0:.0f} s in all.",
          "", "| posterior / prior | dim | test ELBO | test log-likelihood (IWAE, k = 100) |",
          "|---|---:|---:|---:|", *rows]
    with open(os.path.join(args.out, "vae_results.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    with open(os.path.join(args.out, "vae_results.json"), "w") as f:
        json.dump({f"{k[0]}-{k[1]}": v for k, v in results.items()} | {"variance": curves}, f, indent=1)
    if not args.no_plots:
        plot_variance(curves, os.path.join(args.out, "vae_grad_variance.png"))
        if latents:
            plot_latents(latents, data, os.path.join(args.out, "vae_latents.png"))
    print("\n".join(md))


if __name__ == "__main__":
    main()
