"""Variance of a Monte Carlo ELBO gradient with and without differentiable antithetic samples.

    python examples/antithetic_elbo.py [--reps 4000] [--seed 0]

Model: Bayesian regression on a fixed synthetic data set (N = 40 points, D = 6 features), prior
w ~ N(0, I); (1) linear-Gaussian likelihood y ~ N(X w, 0.5^2) and (2) logistic likelihood y ~ Bernoulli(
sigmoid(X w)). Mean-field Gaussian posterior approximation q(w) = N(m, diag(s^2)), s = exp(log_s), at a
fixed point partway through training (m = 0.8 * the least-squares fit, s = 0.25). ELBO estimate from 2k
reparameterized samples of w:

    ELBO ~ mean_j [log p(y | w_j) + log p(w_j)] + H[q],

with w_j either 2k i.i.d. (m + s * randn) or k i.i.d. + k antithetic (gradkern.antithetic.normal_rsample,
each coordinate of w its own antithetic row). The gradient w.r.t. (m, log_s) is computed by autograd
for `reps` independent replicates at once; the script prints the total variance (trace of the
covariance, summed over the 2D parameters) of the gradient estimate for each sampler, and the ratio to
i.i.d. at the same 2k. Also checks that the mean gradients agree (antithetic samples are exactly
N(m, s^2) marginally, so the estimator stays unbiased).
"""
import argparse
import glob
import os
import sys

import torch

# This checkout's package when its extension is built in place (python setup.py build_ext --inplace);
# otherwise the installed one (pip install .), whose source tree has no extension.
if glob.glob(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "gradkern", "_C*")):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import gradkern.antithetic as A  # noqa: E402


def make_data(seed):
    g = torch.Generator().manual_seed(seed)
    n, d = 40, 6
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    w_true = torch.randn(d, generator=g, dtype=torch.float64)
    y_lin = x @ w_true + 0.5 * torch.randn(n, generator=g, dtype=torch.float64)
    y_log = (torch.rand(n, generator=g, dtype=torch.float64) < torch.sigmoid(x @ w_true)).double()
    return x, y_lin, y_log


def log_joint(kind, x, y, w):
    # w: (S, R, D) -> (S, R)
    f = w @ x.T  # (S, R, N)
    if kind == "linear":
        ll = -0.5 * ((y - f) / 0.5) ** 2 - torch.log(torch.tensor(0.5 * (2 * torch.pi) ** 0.5, dtype=f.dtype))
    else:
        ll = y * f - torch.nn.functional.softplus(f)
    return ll.sum(-1) - 0.5 * (w ** 2).sum(-1)


def grad_estimates(kind, x, y, m0, log_s0, sampler, reps):
    d = m0.numel()
    m = m0.expand(reps, d).clone().requires_grad_()
    log_s = log_s0.expand(reps, d).clone().requires_grad_()
    w = sampler(m, torch.exp(log_s))  # (2k, reps, D)
    entropy = log_s.sum(-1)  # + const
    elbo = log_joint(kind, x, y, w).mean(0) + entropy  # (reps,)
    gm, gs = torch.autograd.grad(elbo.sum(), (m, log_s))
    return torch.cat([gm, gs], -1)  # (reps, 2D), one independent estimate per row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    x, y_lin, y_log = make_data(args.seed)
    m_ls = torch.linalg.lstsq(x, y_lin.unsqueeze(-1)).solution.squeeze(-1)
    m0, log_s0 = 0.8 * m_ls, torch.full_like(m_ls, 0.25).log()
    print(f"Bayesian regression, N={x.shape[0]}, D={x.shape[1]}; ELBO gradient w.r.t. (m, log s) at a fixed q; "
          f"{args.reps} replicates per sampler; total variance = trace of the gradient covariance")
    print()
    print("| likelihood | k | 2k i.i.d. | k + k antithetic (exact) | ratio | k + k antithetic (Hawkins-Wixley) | ratio | max mean-gradient gap / s.e. |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|")
    for kind, y in (("linear", y_lin), ("logistic", y_log)):
        for k in (2, 4, 8):
            g = torch.Generator().manual_seed(args.seed + 100 * k)
            iid = grad_estimates(kind, x, y, m0, log_s0,
                                 lambda m, s: m + s * torch.randn((2 * k,) + m.shape, dtype=m.dtype, generator=g),
                                 args.reps)
            res = {}
            for refl in ("exact", "hawkins-wixley"):
                g = torch.Generator().manual_seed(args.seed + 100 * k + 1)
                res[refl] = grad_estimates(kind, x, y, m0, log_s0,
                                           lambda m, s: A.normal_rsample(m, s, k, "marsaglia", refl, generator=g),
                                           args.reps)
            v_iid = iid.var(0).sum().item()
            v_ex, v_hw = res["exact"].var(0).sum().item(), res["hawkins-wixley"].var(0).sum().item()
            se = (iid.var(0) / args.reps + res["exact"].var(0) / args.reps).sqrt()
            gap = ((iid.mean(0) - res["exact"].mean(0)).abs() / se).max().item()
            print(f"| {kind} | {k} | {v_iid:.4g} | {v_ex:.4g} | {v_ex / v_iid:.3f} | {v_hw:.4g} | {v_hw / v_iid:.3f} | {gap:.2f} |")


if __name__ == "__main__":
    main()
