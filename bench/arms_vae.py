"""Discrete VAE with 200 binary latents trained with ARMS and its baselines (Dimitriev & Zhou 2021,
section 4.1 / Table 1), on scikit-learn's digits (8x8, 1797 images; ships with scikit-learn, no download),
dynamically binarised (pixel ~ Bern(intensity / 16) at every use).

Networks as in section 4.1: "linear" (x -> 200 logits -> 64 logits) and "nonlinear" (two hidden layers of
200 LeakyReLU(0.3) units in encoder and decoder). The encoder input is x minus the global training mean.
Adam for the networks, SGD (lr 1e-2) for the prior logits, minibatches of 50. Every estimator uses n
evaluations of the ELBO per step (DisARM: n/2 antithetic pairs).

Reported per estimator and n: final training ELBO (whole training set, 10 samples per image, after the
last step), test ELBO, and the gradient variance of the encoder parameters (variance over --var-draws
estimates on a fixed minibatch, averaged over all encoder parameters), as in the paper's Figure 3 bottom
row. Because runs sit at different points of training (the nonlinear model leaves its initial plateau at
a random time), every estimator's variance is measured at the same parameters: at --checkpoints points
of every run, all estimators are evaluated on that run's current model; the table gives the mean
variance over those shared points and the mean ratio to LOORF at the same parameters.

    python bench/arms_vae.py                      # ~10-20 min on 2 shared cores: 2000 steps, 1 seed
    python bench/arms_vae.py --steps 100000 --lr 1e-4 --seeds 5     # closer to the paper (10^6 steps)

Writes bench/out/arms_vae_<net><tag>.png and bench/out/arms_vae<tag>.json; --docs also writes the tables
into docs/estimators.md (section arms_vae).
"""
import argparse
import math
import os
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

_gk, _note = C.import_gradkern()
if _gk is None:
    sys.exit(f"arms_vae: {_note}; build with `python setup.py build_ext --inplace` first")
from gradkern import estimators as est  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")
LATENTS = 200

SURROGATES = {
    "ARMS-D": lambda lg, f, n, g: est.arms_surrogate(lg, f, n, "dirichlet", generator=g),
    "ARMS-N": lambda lg, f, n, g: est.arms_surrogate(lg, f, n, "gaussian", generator=g),
    "LOORF": lambda lg, f, n, g: est.loorf_surrogate(lg, f, n, generator=g),
    "DisARM": lambda lg, f, n, g: est.disarm_surrogate(lg, f, n, generator=g),
}


def load_digits(seed):
    from sklearn.datasets import load_digits as sk_load

    x = torch.tensor(sk_load().data, dtype=torch.float32) / 16.0  # intensities in [0, 1]
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))
    x = x[perm]
    return x[:1497], x[1497:]


def mlp(sizes, nonlinear):
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if nonlinear and i < len(sizes) - 2:
            layers.append(nn.LeakyReLU(0.3))
    return nn.Sequential(*layers)


class VAE(nn.Module):
    def __init__(self, dim, nonlinear, mean):
        super().__init__()
        hidden = [200, 200] if nonlinear else []
        self.encoder = mlp([dim, *hidden, LATENTS], nonlinear)
        self.decoder = mlp([LATENTS, *hidden, dim], nonlinear)
        self.prior = nn.Parameter(torch.zeros(LATENTS))
        self.register_buffer("mean", mean)

    def logits(self, x):
        return self.encoder(x - self.mean)

    def elbo_fn(self, x, logits):
        """f(b) = log p(x | b) + log p(b) - log q(b | x): (n, B, 200) samples -> (n, B) values."""
        def f(b):
            log_px = -F.binary_cross_entropy_with_logits(self.decoder(b), x.expand(b.shape[0], *x.shape),
                                                         reduction="none").sum(-1)
            log_pb = (b * F.logsigmoid(self.prior) + (1 - b) * F.logsigmoid(-self.prior)).sum(-1)
            log_qb = (b * F.logsigmoid(logits) + (1 - b) * F.logsigmoid(-logits)).sum(-1)
            return log_px + log_pb - log_qb
        return f


def binarise(x, gen):
    return torch.bernoulli(x, generator=gen)


@torch.no_grad()
def dataset_elbo(model, data, gen, samples=10):
    x = binarise(data, gen)
    logits = model.logits(x)
    b, _ = est.sample_bernoulli(logits, samples, "independent", gen)
    return model.elbo_fn(x, logits)(b).mean().item()


def encoder_grad_variance(model, surrogate, x, n, draws, gen):
    grads = []
    for _ in range(draws):
        model.zero_grad()
        logits = model.logits(x)
        loss = -surrogate(logits, model.elbo_fn(x, logits), n, gen) / x.shape[0]
        loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.encoder.parameters()]))
    model.zero_grad()
    return torch.stack(grads).var(0).mean().item()


def train(name, n, nonlinear, args, train_x, test_x, seed):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(1000 + seed)
    model = VAE(train_x.shape[1], nonlinear, train_x.mean(0))
    nets = list(model.encoder.parameters()) + list(model.decoder.parameters())
    opt = torch.optim.Adam(nets, lr=args.lr)
    opt_prior = torch.optim.SGD([model.prior], lr=1e-2)
    surrogate = SURROGATES[name]
    fixed = binarise(train_x[:args.batch], torch.Generator().manual_seed(seed))
    checkpoints = set(int(round(s)) for s in torch.linspace(0, args.steps - 1, args.checkpoints).tolist())
    curve, variances, shared_variances = [], [], []
    perm = torch.randperm(train_x.shape[0], generator=gen)
    pos = 0
    for step in range(args.steps):
        if pos + args.batch > perm.numel():
            perm, pos = torch.randperm(train_x.shape[0], generator=gen), 0
        x = binarise(train_x[perm[pos:pos + args.batch]], gen)
        pos += args.batch
        if step in checkpoints:
            # Every estimator at the same parameters (this run's), so the comparison does not depend on
            # where each run happens to be in training; the run's own estimator is also kept separately.
            shared = {other: encoder_grad_variance(model, s, fixed, n, args.var_draws, gen)
                      for other, s in SURROGATES.items() if other in args.estimators}
            variances.append(shared[name])
            shared_variances.append(shared)
        logits = model.logits(x)
        objective = surrogate(logits, model.elbo_fn(x, logits), n, gen) / x.shape[0]  # mean ELBO per image
        opt.zero_grad()
        opt_prior.zero_grad()
        (-objective).backward()
        opt.step()
        opt_prior.step()
        curve.append(objective.item())
    eval_gen = torch.Generator().manual_seed(7)
    return {"train_elbo": dataset_elbo(model, train_x, eval_gen), "test_elbo": dataset_elbo(model, test_x, eval_gen),
            "grad_var": sum(variances) / len(variances), "grad_var_curve": variances, "curve": curve,
            "shared_grad_var": shared_variances}


def smooth(values, width):
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= width:
            acc -= values[i - width]
        out.append(acc / min(i + 1, width))
    return out


def plot(results, net, ns, names, steps, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(ns), figsize=(5 * len(ns), 7), squeeze=False)
    for col, n in enumerate(ns):
        for name in names:
            runs = results[net][n][name]
            curve = [sum(c) / len(c) for c in zip(*[r["curve"] for r in runs])]
            axes[0, col].plot(smooth(curve, max(1, steps // 50)), label=name, lw=1.2)
            var = [sum(c) / len(c) for c in zip(*[r["grad_var_curve"] for r in runs])]
            axes[1, col].semilogy(torch.linspace(0, steps, len(var)).tolist(), var, "o-", label=name, ms=3)
        axes[0, col].set_title(f"{net} VAE, n = {n}")
        axes[0, col].set_ylabel("training ELBO (minibatch, smoothed)")
        axes[1, col].set_ylabel("encoder gradient variance")
        axes[1, col].set_xlabel("step")
        for ax in axes[:, col]:
            ax.grid(alpha=0.3)
        axes[0, col].legend(fontsize=8)
        lo = min(min(smooth(r["curve"], max(1, steps // 50))[steps // 5:]) for r in
                 [x for nm in names for x in results[net][n][nm]])
        axes[0, col].set_ylim(bottom=lo)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ns", type=int, nargs="+", default=[4, 8])
    ap.add_argument("--nets", nargs="+", default=["linear", "nonlinear"], choices=["linear", "nonlinear"])
    ap.add_argument("--estimators", nargs="+", default=list(SURROGATES), choices=list(SURROGATES))
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (paper: 1e-4 over 10^6 steps)")
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--checkpoints", type=int, default=5, help="points where the gradient variance is measured")
    ap.add_argument("--var-draws", type=int, default=20, help="estimates per variance measurement")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tag", default="", help="suffix for the output files (keeps several runs side by side)")
    ap.add_argument("--docs", action="store_true", help="write the tables into docs/estimators.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(OUT, exist_ok=True)
    train_x, test_x = load_digits(0)

    results = {net: {n: {name: [] for name in args.estimators} for n in args.ns} for net in args.nets}
    jobs = [(net, n, name, seed) for net in args.nets for n in args.ns for name in args.estimators
            for seed in range(args.seeds)]
    t0 = time.time()
    for net, n, name, seed in tqdm(jobs, desc="VAE runs"):
        results[net][n][name].append(train(name, n, net == "nonlinear", args, train_x, test_x, seed))
    elapsed = time.time() - t0

    def stat(runs, key):
        vals = [r[key] for r in runs]
        mean = sum(vals) / len(vals)
        sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
        return mean, sd

    summary = {}
    md = [f"Discrete VAE on sklearn digits, 200 binary latents, {args.steps} steps, batch {args.batch}, "
          f"Adam lr {args.lr}, {args.seeds} seed(s); {elapsed / 60:.1f} min on {C.machine_description()}"]
    for net in args.nets:
        md += ["", f"{net}: final training ELBO (test ELBO) [encoder gradient variance at shared parameters; "
               "mean ratio to LOORF at the same parameters]", ""]
        md.append("| n | " + " | ".join(args.estimators) + " |")
        md.append("|" + "---|" * (len(args.estimators) + 1))
        for n in args.ns:
            cells = []
            for name in args.estimators:
                runs = results[net][n][name]
                tr, tr_sd = stat(runs, "train_elbo")
                te, _ = stat(runs, "test_elbo")
                gv, _ = stat(runs, "grad_var")
                # Variance of this estimator at the checkpoints of every run with the same n (all
                # estimators' trajectories), relative to LOORF at the same parameters.
                shared = [cp for other in args.estimators for r in results[net][n][other]
                          for cp in r["shared_grad_var"]]
                sv = sum(cp[name] for cp in shared) / len(shared)
                ratio = (sum(cp[name] / cp["LOORF"] for cp in shared) / len(shared)
                         if "LOORF" in args.estimators else float("nan"))
                summary.setdefault(net, {}).setdefault(n, {})[name] = {
                    "train_elbo": tr, "train_elbo_sd": tr_sd, "test_elbo": te, "grad_var_own_run": gv,
                    "grad_var_shared": sv, "grad_var_ratio_to_loorf": ratio}
                sd = f" ± {tr_sd:.2f}" if args.seeds > 1 else ""
                cells.append(f"{tr:.2f}{sd} ({te:.2f}) [{sv:.3g}; {ratio:.2f}x]")
            md.append(f"| {n} | " + " | ".join(cells) + " |")
        plot(results, net, args.ns, args.estimators, args.steps, os.path.join(OUT, f"arms_vae_{net}{args.tag}.png"))
    print("\n" + "\n".join(md))
    C.write_json(os.path.join(OUT, f"arms_vae{args.tag}.json"), {
        "meta": {"machine": C.machine_description(), "args": vars(args), "minutes": elapsed / 60},
        "summary": summary,
        "runs": {net: {n: {name: [{k: v for k, v in r.items() if k != "curve"} for r in runs]
                           for name, runs in d.items()} for n, d in nd.items()} for net, nd in results.items()}})
    print(f"\nwrote {OUT}/arms_vae_<net>{args.tag}.png and arms_vae{args.tag}.json")
    if args.docs:
        cmd = " ".join(["python bench/arms_vae.py"] + [a for a in sys.argv[1:] if a != "--docs"])
        print("wrote", C.write_doc_section("estimators.md", "arms_vae", "\n".join(md), command=cmd), file=sys.stderr)


if __name__ == "__main__":
    main()
