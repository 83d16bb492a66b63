"""Cost of the second-order Gamma, von Mises, vMF and Beta kernels (issue 15) as a ratio to the first-order ones they
differentiate.

    python bench/second_order.py [--n 600000] [--repeats 5] [--dtype float32,float64] [--family gamma,vonmises,vmf,beta]
                                 [--docs]

The paper's grid: alpha in {1e-2, 1e-1, 1, 10, 100, 1000}, Gamma(alpha) samples (torch._standard_gamma, fixed
seed), single thread, CPU time of this thread (time.thread_time), best of `repeats`, the two ops of a pair
timed alternately in the same process. Pairs (second order / first order):

* gammainc_grad_aa / gammainc_grad_a: d2P/da2 against dP/da;
* standard_gamma_grad_dalpha / standard_gamma_grad: d/dalpha of the implicit gradient against the gradient
  (both evaluate the bulk path, csrc/core/igamma_bulk.h, on vectors; below alpha = 10 the first-order op runs
  its series and continued fraction lane-parallel, in float for float32, the second-order one lane-parallel in
  double, 4 lanes per AVX2 vector);
* end to end: rsample + backward with create_graph + the second backward (d2z/dalpha2), against rsample +
  backward, on the same samples.

von Mises (kappa in {1e-2, 1e-1, 1, 10, 100, 1000}, gradkern.vonmises_rsample samples): vonmises_cdf_grad_kk /
vonmises_cdf_grad_concentration (d2F/dkappa2 against dF/dkappa), vonmises_grad_dconcentration / vonmises_grad,
and rsample + two backward passes against one. The second-order kernels run in double for float32 too.
von Mises-Fisher at d = 10 (the same kappa grid, vmf_sample_u samples): vmf_grad_u_dkappa / vmf_grad_u (shown
twice: the CDF's second derivative is formed from it), and vmf_rsample's first coordinate with two backward
passes against one.
Beta(a, 3) (a on the same grid, x ~ Beta(a, 3)): betainc_grads2 / betainc_grads (the three second derivatives
of I in (a, b) against the two first ones, one evaluation each), standard_beta_grad_d2 / standard_beta_grad (the
four parameter-derivatives of the implicit gradient against the two gradients), and beta_rsample with two
backward passes in a against one. The Beta kernels run in double for float32 too.

The issue's goal: each ratio <= 3. --docs writes the printout into docs/performance.md (section second_order).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common as C  # noqa: E402

gradkern, _note = C.import_gradkern()
import torch  # noqa: E402

from tqdm import tqdm  # noqa: E402

ALPHAS = [1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0]
OPS = torch.ops.gradkern


def _params(values, n):
    """The parameter grid: each value repeated for n elements in all, float64."""
    return torch.tensor(values, dtype=torch.float64).repeat_interleave(math.ceil(n / len(values)))


def grid(alphas, n, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = _params(alphas, n)
    x = torch._standard_gamma(a, generator=g).clamp_min(torch.finfo(dtype).tiny)
    return a.to(dtype).contiguous(), x.to(dtype).contiguous()


def best(fn, repeats):
    fn()
    t = math.inf
    for _ in range(repeats):
        t0 = time.thread_time()
        fn()
        t = min(t, time.thread_time() - t0)
    return t


def pair(f2, f1, repeats):
    t2 = t1 = math.inf
    for _ in range(2):  # alternate so that a change of machine load hits both
        t2 = min(t2, best(f2, repeats))
        t1 = min(t1, best(f1, repeats))
    return t2, t1


def vm_grid(kappas, n, dtype, seed=0):
    k = _params(kappas, n)
    x = gradkern.vonmises_rsample(0.0, k, generator=torch.Generator().manual_seed(seed))
    return k.to(dtype).contiguous(), x.to(dtype).contiguous()


VMF_D = 10


def vmf_grid(kappas, n, dtype, seed=0):
    k = _params(kappas, n)
    u = OPS.vmf_sample_u(k, VMF_D, torch.Generator().manual_seed(seed))
    return k.to(dtype).contiguous(), u.to(dtype).contiguous()


def _vmf_rsample(k, generator):
    mu = torch.zeros(VMF_D, dtype=k.dtype)
    mu[0] = 1
    return gradkern.vmf_rsample(mu, k, generator=generator)[..., 0]


BETA_B = 3.0


def beta_grid(alphas, n, dtype, seed=0):
    """a on the grid, b = BETA_B, x ~ Beta(a, b) (torch's Gamma ratio, float64, clamped inside (0, 1))."""
    g = torch.Generator().manual_seed(seed)
    a = _params(alphas, n)
    ga = torch._standard_gamma(a, generator=g)
    gb = torch._standard_gamma(torch.full_like(a, BETA_B), generator=g)
    eps = torch.finfo(dtype).eps
    x = (ga / (ga + gb)).clamp(torch.finfo(dtype).tiny, 1 - eps)
    return a.to(dtype).contiguous(), x.to(dtype).contiguous()


def _b(a):
    return torch.tensor(BETA_B, dtype=a.dtype)


def end_to_end(rsample, a, repeats):
    def first():
        ar = a.detach().requires_grad_()
        z = rsample(ar, generator=torch.Generator().manual_seed(1))
        torch.autograd.grad(z.sum(), ar)

    def second():
        ar = a.detach().requires_grad_()
        z = rsample(ar, generator=torch.Generator().manual_seed(1))
        (g,) = torch.autograd.grad(z.sum(), ar, create_graph=True)
        torch.autograd.grad(g.sum(), ar)

    return pair(second, first, repeats)


# family: (parameter name, grid, (label, second, first) x 2 with op(param, x) calls, rsample)
FAMILIES = {
    "gamma": ("alpha", grid,
              [("d2P/da2", "dP/da", lambda a, x: OPS.gammainc_grad_aa(a, x), lambda a, x: OPS.gammainc_grad_a(a, x)),
               ("dg/dalpha", "g", lambda a, x: OPS.standard_gamma_grad_dalpha(a, x),
                lambda a, x: OPS.standard_gamma_grad(a, x))],
              lambda a, generator: gradkern.gamma_rsample(a, generator=generator)),
    "vonmises": ("kappa", vm_grid,
                 [("d2F/dk2", "dF/dk", lambda k, x: OPS.vonmises_cdf_grad_kk(x, k),
                   lambda k, x: OPS.vonmises_cdf_grad_concentration(x, k)),
                  ("dg/dkappa", "g", lambda k, x: OPS.vonmises_grad_dconcentration(k, x),
                   lambda k, x: OPS.vonmises_grad(k, x))],
                 lambda k, generator: gradkern.vonmises_rsample(0.0, k, generator=generator)),
    # von Mises-Fisher at d = VMF_D: the second-order kernel against the first (the CDF's second derivative goes
    # through it, so the second pair repeats the first); end to end through mu^T z.
    "vmf": ("kappa", vmf_grid,
            [("du/dk dk", "du/dk", lambda k, u: OPS.vmf_grad_u_dkappa(k, u, VMF_D), lambda k, u: OPS.vmf_grad_u(k, u, VMF_D)),
             ("du/dk dk", "du/dk", lambda k, u: OPS.vmf_grad_u_dkappa(k, u, VMF_D), lambda k, u: OPS.vmf_grad_u(k, u, VMF_D))],
            _vmf_rsample),
    # Beta(a, 3): the incomplete beta's three second derivatives against its two first ones, the four
    # parameter-derivatives of the implicit gradient against the gradient; end to end in a.
    "beta": ("a", beta_grid,
             [("d2I (3)", "dI (2)", lambda a, x: OPS.betainc_grads2(a, _b(a), x), lambda a, x: OPS.betainc_grads(a, _b(a), x)),
              ("dg (4)", "g (2)", lambda a, x: OPS.standard_beta_grad_d2(a, _b(a), x),
               lambda a, x: OPS.standard_beta_grad(a, _b(a), x))],
             lambda a, generator: gradkern.beta_rsample(a, _b(a), generator=generator)),
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=600_000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--dtype", default="float32,float64")
    p.add_argument("--family", default="gamma,vonmises,vmf,beta")
    p.add_argument("--docs", action="store_true", help="write the printout into docs/performance.md")
    args = p.parse_args()
    torch.set_num_threads(1)
    lines = ["ns/element, single thread, best of %d; ratio = second order / first order" % args.repeats]
    print(C.machine_description())
    print(lines[0])
    jobs = [(fam, name, label, als) for fam in args.family.split(",") for name in args.dtype.split(",")
            for label, als in [(f"{FAMILIES[fam][0]}={al:g}", [al]) for al in ALPHAS] + [("overall", ALPHAS)]]
    current = None
    for fam, name, label, als in tqdm(jobs, desc="second order", file=sys.stderr):
        pname, make_grid, pairs, rsample = FAMILIES[fam]
        dtype = getattr(torch, name)
        if (fam, name) != current:
            current = (fam, name)
            (l2a, l1a, _, _), (l2b, l1b, _, _) = pairs
            lines.append(f"{fam} {name}:  {'':10} {l2a:>9} {l1a:>7} {'ratio':>5}   {l2b:>9} {l1b:>7} "
                         f"{'ratio':>5}   {'rsample+2 bw':>12} {'+1 bw':>7} {'ratio':>5}")
            tqdm.write(lines[-1], file=sys.stdout)
        n = args.n if label == "overall" else max(args.n // len(ALPHAS), 10_000)
        a, x = make_grid(als, n, dtype)
        ne = a.numel() / 1e9
        (_, _, s2, s1), (_, _, t2, t1) = pairs
        p2, p1 = pair(lambda: s2(a, x), lambda: s1(a, x), args.repeats)
        g2, g1 = pair(lambda: t2(a, x), lambda: t1(a, x), args.repeats)
        e2, e1 = end_to_end(rsample, a, args.repeats)
        lines.append(f"  {label:<24} {p2 / ne:9.1f} {p1 / ne:7.1f} {p2 / p1:5.2f}   {g2 / ne:9.1f} {g1 / ne:7.1f} "
                     f"{g2 / g1:5.2f}   {e2 / ne:12.1f} {e1 / ne:7.1f} {e2 / e1:5.2f}")
        tqdm.write(lines[-1], file=sys.stdout)
    if args.docs:
        cmd = " ".join(["python bench/second_order.py"] + [a for a in sys.argv[1:] if a != "--docs"])
        print("wrote", C.write_doc_section("performance.md", "second_order", "\n".join(["```", *lines, "```"]),
                                           command=cmd), file=sys.stderr)


if __name__ == "__main__":
    main()
