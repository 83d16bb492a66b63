"""Latent Dirichlet allocation with Dirichlet variational posteriors trained by implicit reparameterization
(section 6.2 and Table 3 of Figurnov et al. 2018), on a corpus generated from the LDA model itself, so that
topic recovery can be measured against the truth.

    python examples/lda.py                  # K = 50, V = 2000, 2000 documents, 3 seeds, 100 epochs (about 2.5 min)
    python examples/lda.py --epochs 2 --seeds 1 --docs 200 --no-plots --out /tmp/lda   # a smoke run

Corpus (fixed seed): topics beta_k ~ Dirichlet(0.05), proportions theta_d ~ Dirichlet(0.1) (sparse),
document lengths ~ Poisson(120), words ~ Multinomial(theta_d^T beta); 1800 training and 200 held-out
documents. Model: the topic-word matrix beta is a point estimate (softmax of free parameters), the prior
Dirichlet(alpha) over topic proportions is learned (alpha = softplus of free parameters, started at 1), the
word-topic assignments are summed out; topics start at the smoothed word frequencies of K random training
documents (from small random logits every topic collapsed to the corpus's word frequencies). Adam, lr 1e-2,
batches of 100 documents. Variational posterior over theta_d (amortized: an MLP from the
document's normalised word counts to the posterior's parameters), two families:

* Dirichlet(gamma_d), reparameterized by gradkern's exact implicit gradient (gradkern.distributions.Dirichlet),
  its KL to the prior analytic;
* the same Dirichlet posterior trained with RSVI (gradkern.rsvi.dirichlet; Naesseth et al. 2017), shape
  augmentation B in {1, 10, 20} (methods rsvi1, rsvi10, rsvi20; Table 3's RSVI rows), the score-function
  correction weighted by the document's log-likelihood;
* logistic normal (LN-LDA): theta_d = softmax(mu_d + sigma_d eps), its KL to the Dirichlet prior by Monte
  Carlo (log density of the softmax-Gaussian with the Jacobian of the softmax).

Reported: held-out perplexity exp(-sum_d ELBO_d / sum_d N_d) (the ELBO bound, one posterior sample per
document averaged over 10 draws), mean +- std over the seeds; topic recovery, the mean cosine similarity of
learned and true topics matched one to one (Hungarian assignment); the variance of the encoder's gradient
during training (Figure 3b style) and the learned prior weights alpha sorted (Figure 2 right: they become
sparse). Writes lda_results.md / .json and lda_grad_variance.png / lda_alpha.png to --out.
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

HERE = os.path.dirname(os.path.abspath(__file__))
# This checkout's package when its extension is built in place; otherwise the installed one.
if glob.glob(os.path.join(os.path.dirname(HERE), "gradkern", "_C*")):
    sys.path.insert(0, os.path.dirname(HERE))
import gradkern  # noqa: E402
from gradkern.distributions import Dirichlet  # noqa: E402

# "rsvi<B>": the Dirichlet posterior trained with RSVI (gradkern.rsvi.dirichlet, shape augmentation B), Table 3.
METHODS = ("dirichlet", "rsvi1", "rsvi10", "rsvi20", "logistic-normal")
TITLES = {"dirichlet": "Dirichlet posterior, implicit gradients (gradkern)",
          "logistic-normal": "logistic-normal posterior (LN-LDA)"}


def title(method):
    """The table's row title; any rsvi<B> method gets one."""
    return TITLES[method] if method in TITLES else f"Dirichlet posterior, RSVI B = {rsvi_b(method)}"


def rsvi_b(method):
    """RSVI's shape augmentation for an 'rsvi<B>' method, None for the others."""
    if not method.startswith("rsvi"):
        return None
    if not method[4:].isdigit():
        raise ValueError(f"unknown method {method!r}: RSVI rows are rsvi<B>, e.g. rsvi10")
    return int(method[4:])


def make_corpus(K, V, D, seed=0, length=120, topic_conc=0.05, doc_conc=0.1):
    g = torch.Generator().manual_seed(seed)
    beta = torch._sample_dirichlet(torch.full((K, V), topic_conc, dtype=torch.float64), g)
    theta = torch._sample_dirichlet(torch.full((D, K), doc_conc, dtype=torch.float64), g)
    lengths = torch.poisson(torch.full((D,), float(length), dtype=torch.float64), g).clamp(min=10)
    probs = theta @ beta
    counts = torch.zeros(D, V, dtype=torch.float64)
    for d in range(D):
        words = torch.multinomial(probs[d], int(lengths[d]), replacement=True, generator=g)
        counts[d].index_add_(0, words, torch.ones(len(words), dtype=torch.float64))
    return counts.float(), beta.float()


class LDA(nn.Module):
    def __init__(self, method, K, V, hidden=100):
        super().__init__()
        self.method, self.K = method, K
        self.topic_logits = nn.Parameter(0.01 * torch.randn(K, V))
        self.alpha_raw = nn.Parameter(torch.full((K,), math.log(math.e - 1)))  # softplus^-1(1)
        dirichlet = method == "dirichlet" or rsvi_b(method) is not None
        self.enc = nn.Sequential(nn.Linear(V, hidden), nn.Softplus(), nn.Linear(hidden, K if dirichlet else 2 * (K - 1)))

    @property
    def alpha(self):
        return F.softplus(self.alpha_raw) + 1e-3

    def elbo(self, counts, training=False):
        """The per-document ELBO. For the RSVI methods with training=True, a surrogate whose value is the ELBO
        and whose gradient is RSVI's estimate (the correction weighted by the sampled term, the likelihood;
        the KL is analytic); evaluation samples the same posterior with gradkern's Dirichlet."""
        x = counts / counts.sum(-1, keepdim=True)
        h = self.enc(x)
        log_beta = torch.log_softmax(self.topic_logits, -1)
        prior = torch.distributions.Dirichlet(self.alpha)
        noise_lp = None
        if self.method != "logistic-normal":
            q = Dirichlet(F.softplus(h) + 1e-2)
            if training and rsvi_b(self.method) is not None:
                s = gradkern.rsvi.dirichlet(q.concentration, shape_augmentation=rsvi_b(self.method))
                theta, noise_lp = s.sample, s.noise_log_prob
            else:
                theta = q.rsample()
            kl = torch.distributions.kl_divergence(q, prior)  # analytic
        else:
            # Additive logistic normal: z ~ N(mu, diag sigma^2) in K - 1 dimensions, theta = softmax([z, 0]);
            # its density on the simplex is N(z; mu, sigma) / prod_k theta_k (the Jacobian of z = alr(theta)).
            mu, log_sigma = h.chunk(2, -1)
            sigma = torch.exp(log_sigma.clamp(-6, 3))
            z = mu + sigma * torch.randn_like(mu)
            log_theta = torch.log_softmax(F.pad(z, (0, 1)), -1)
            theta = log_theta.exp()
            log_q = torch.distributions.Normal(mu, sigma).log_prob(z).sum(-1) - log_theta.sum(-1)
            kl = log_q - prior.log_prob(theta.clamp(min=1e-30))
        # log p(w | theta, beta) with the assignments summed out: sum_w n_w log sum_k theta_k beta_kw (a
        # matrix product of probabilities: every word has probability >= min_k beta_kw > 0 under each theta).
        log_word = torch.log(theta @ log_beta.exp())
        log_lik = (counts * log_word).sum(-1)
        if noise_lp is not None:
            log_lik = gradkern.rsvi.surrogate(log_lik, noise_lp)
        return log_lik - kl


def grad_variance(model, counts, draws=8):
    grads = []
    for _ in range(draws):
        model.zero_grad()
        (-model.elbo(counts, training=True).mean()).backward()
        grads.append(model.enc[-1].weight.grad.detach().clone().flatten())
    return torch.stack(grads).var(0).mean().item()


def topic_recovery(learned, truth):
    from scipy.optimize import linear_sum_assignment

    a = F.normalize(learned, dim=-1)
    b = F.normalize(truth, dim=-1)
    sim = (a @ b.T).numpy()
    rows, cols = linear_sum_assignment(-sim)
    return float(sim[rows, cols].mean())


def train(method, seed, data, epochs, batch=100, lr=1e-2):
    train_counts, test_counts, beta_true = data
    K, V = beta_true.shape
    torch.manual_seed(seed)
    model = LDA(method, K, V)
    with torch.no_grad():  # topics started at random training documents' smoothed word frequencies
        pick = torch.randperm(len(train_counts), generator=torch.Generator().manual_seed(seed))[:K]
        model.topic_logits.copy_(torch.log(train_counts[pick] + 0.1) - torch.log(train_counts[pick] + 0.1).mean(-1, keepdim=True))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(100 + seed)
    probe = train_counts[:200]
    variance = []
    for epoch in range(epochs):
        perm = torch.randperm(len(train_counts), generator=gen)
        for i in range(0, len(train_counts), batch):
            c = train_counts[perm[i:i + batch]]
            # The corpus-level ELBO per document: the topics and alpha are global.
            loss = -model.elbo(c, training=True).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        if epoch % max(1, epochs // 10) == 0 or epoch == epochs - 1:
            variance.append((epoch + 1, grad_variance(model, probe)))
    with torch.no_grad():
        elbo = torch.stack([model.elbo(test_counts) for _ in range(10)]).mean(0)
        perplexity = math.exp(-elbo.sum().item() / test_counts.sum().item())
        beta = torch.softmax(model.topic_logits, -1)
    return perplexity, topic_recovery(beta, beta_true), variance, model.alpha.detach()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--topics", type=int, default=50)
    ap.add_argument("--vocab", type=int, default=2000)
    ap.add_argument("--docs", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--out", default=os.path.join(HERE, "out"))
    ap.add_argument("--no-plots", action="store_true")
    args = ap.parse_args(argv)
    from tqdm import tqdm

    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    counts, beta_true = make_corpus(args.topics, args.vocab, args.docs)
    n_test = max(1, args.docs // 10)
    data = (counts[n_test:], counts[:n_test], beta_true)
    methods = [m for m in args.methods.split(",") if m]
    results, curves, alphas = {}, {}, {}
    t0 = time.perf_counter()
    for method, seed in tqdm([(m, s) for m in methods for s in range(args.seeds)], desc="lda", unit="run"):
        ppl, rec, var, alpha = train(method, seed, data, args.epochs)
        results.setdefault(method, []).append((ppl, rec))
        if seed == 0:
            curves[method], alphas[method] = var, alpha
    rows = []
    for method, vals in results.items():
        p = torch.tensor([v[0] for v in vals])
        r = torch.tensor([v[1] for v in vals])
        sd = (lambda t: t.std().item() if len(t) > 1 else 0.0)
        a = alphas[method]
        rows.append(f"| {title(method)} | {p.mean():.1f} +- {sd(p):.1f} | {r.mean():.3f} +- {sd(r):.3f} | "
                    f"{(a < 0.1).sum().item()} of {len(a)} below 0.1 (median {a.median():.3f}) |")
    md = [f"Synthetic LDA corpus: K = {args.topics}, V = {args.vocab}, {args.docs} documents ({n_test} held out); "
          f"{args.epochs} epochs, mean +- std over {args.seeds} seed(s); gradkern {gradkern.__version__}, "
          f"torch {torch.__version__}; {time.perf_counter() - t0:.0f} s in all.", "",
          "| posterior | held-out perplexity (ELBO bound) | topic recovery (matched cosine) | learned prior weights alpha (seed 0) |",
          "|---|---:|---:|---|", *rows]
    with open(os.path.join(args.out, "lda_results.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    with open(os.path.join(args.out, "lda_results.json"), "w") as f:
        json.dump({"results": results, "variance": curves, "alpha": {k: v.tolist() for k, v in alphas.items()}}, f,
                  indent=1)
    if not args.no_plots:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        for m, c in curves.items():
            ax.plot([e for e, _ in c], [v for _, v in c], marker="o", label=title(m))
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("gradient variance (encoder output weights)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(args.out, "lda_grad_variance.png"), dpi=110)
        plt.close(fig)
        fig, ax = plt.subplots(figsize=(6, 4))
        for m, a in alphas.items():
            ax.plot(torch.sort(a, descending=True).values, marker=".", label=title(m))
        ax.axhline(0.1, color="grey", ls=":", label="true alpha (0.1)")
        ax.set_yscale("log")
        ax.set_xlabel("topic (sorted)")
        ax.set_ylabel("learned prior weight alpha_k")
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(args.out, "lda_alpha.png"), dpi=110)
        plt.close(fig)
    print("\n".join(md))


if __name__ == "__main__":
    main()
