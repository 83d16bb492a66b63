"""Multi-sample Bernoulli gradient estimators (gradkern.estimators): unbiasedness against exact gradients,
the identities of Dimitriev & Zhou 2021 (ARMS at n = 2 is DisARM, ARMS with rho = 0 is LOORF), the
surrogate-loss form, shapes, devices and bad input. Seeded reproducibility, thread-count independence and
torch.compile of the estimators are in test_contracts.py (COMPOSITES).

Unbiasedness tests replicate the problem R times along a batch dimension (the objective of each copy
reads only its own samples), so one call gives R independent estimates; the mean must lie within a few
standard errors of the exact gradient, and a deliberately wrong estimator must fail the same check.
"""
import itertools
import math

import pytest
import torch

import gradkern  # noqa: F401
from gradkern import estimators as est

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"))]
Z = 5.0  # tolerance in standard errors (many checks run; a correct estimator sits well inside)


def _gen(seed, device="cpu"):
    return torch.Generator(device=device).manual_seed(seed)


def _z_scores(samples, exact):
    mean = samples.mean(0)
    se = samples.std(0) / math.sqrt(samples.shape[0])
    return (mean - exact) / se.clamp_min(1e-300)


# --- problems with exact gradients --------------------------------------------------------------------------
def toy_problem(R, phi, target=0.499, dtype=torch.float64):
    """E[(b - target)^2], b ~ Bern(sigmoid(phi)), replicated R times: logits (R,), values (n, R)."""
    logits = torch.full((R,), phi, dtype=dtype)
    p = torch.sigmoid(torch.tensor(phi, dtype=dtype))
    exact = p * (1 - p) * ((1 - target) ** 2 - target ** 2)
    return logits, (lambda b: (b - target) ** 2), exact


def table_problem(R, m, seed=0, dtype=torch.float64):
    """A random f on {0, 1}^m given by its 2^m values; exact gradient by enumeration."""
    g = _gen(seed)
    table = torch.randn(2 ** m, generator=g, dtype=dtype)
    phi = torch.randn(m, generator=g, dtype=dtype) * 1.5
    weights = 2 ** torch.arange(m)

    def f(b):  # (n, R, m) -> (n, R)
        return table[(b.long() * weights).sum(-1)]

    phi_ = phi.clone().requires_grad_()
    p = torch.sigmoid(phi_)
    configs = torch.tensor(list(itertools.product([0, 1], repeat=m)), dtype=dtype)
    prob = torch.where(configs.bool(), p, 1 - p).prod(-1)
    (prob * f(configs)).sum().backward()
    return phi.expand(R, m).clone(), f, phi_.grad


ESTIMATORS = {
    "arms-d": lambda lg, f, n, g: est.arms(lg, f, n, "dirichlet", generator=g),
    "arms-n": lambda lg, f, n, g: est.arms(lg, f, n, "gaussian", generator=g),
    "loorf": lambda lg, f, n, g: est.loorf(lg, f, n, generator=g),
    "disarm": lambda lg, f, n, g: est.disarm(lg, f, n, generator=g),
    "arm": lambda lg, f, n, g: est.arm(lg, f, n, generator=g),
}
CASES = [(name, n) for name in ESTIMATORS for n in (2, 3, 4, 10)
         if not (name in ("disarm", "arm") and n % 2)]


@pytest.mark.parametrize("name,n", CASES)
def test_unbiased_toy(name, n):
    for phi in (-1.2, 0.4):  # both orientations of the Dirichlet copula
        logits, f, exact = toy_problem(20000, phi)
        grads = ESTIMATORS[name](logits, f, n, _gen(100 + n))
        z = _z_scores(grads, exact)
        assert abs(z) < Z, (name, n, phi, z.item())


@pytest.mark.parametrize("name,n", CASES)
def test_unbiased_random_table(name, n):
    logits, f, exact = table_problem(20000, m=3, seed=n)
    grads = ESTIMATORS[name](logits, f, n, _gen(200 + n))
    z = _z_scores(grads, exact)
    assert z.abs().max() < Z, (name, n, z)


def test_wrong_estimator_is_caught():
    # Power check: ARMS-D samples with the debiasing factor dropped (rho := 0) are biased by a factor
    # 1 - rho, which the same test must detect.
    logits, f, exact = table_problem(20000, m=3, seed=4)
    b, rho = est.sample_bernoulli(logits, 4, "dirichlet", _gen(9))
    values = f(b).unsqueeze(-1)
    assert _z_scores(est.arms_from_samples(values, b, logits, rho), exact).abs().max() < Z
    assert _z_scores(est.arms_from_samples(values, b, logits, torch.zeros_like(rho)), exact).abs().max() > Z


# --- the multi-sample bound -----------------------------------------------------------------------------------
def msb_problem(R, m, n, seed=0, dtype=torch.float64):
    """log r on {0,1}^m as a table; exact gradient of E[log mean_k r(b_k)] by enumerating all n-tuples."""
    g = _gen(seed)
    table = torch.randn(2 ** m, generator=g, dtype=dtype)
    phi = torch.randn(m, generator=g, dtype=dtype)
    weights = 2 ** torch.arange(m)

    def log_r(b):
        return table[(b.long() * weights).sum(-1)]

    phi_ = phi.clone().requires_grad_()
    p = torch.sigmoid(phi_)
    configs = torch.tensor(list(itertools.product([0, 1], repeat=m)), dtype=dtype)
    prob = torch.where(configs.bool(), p, 1 - p).prod(-1)  # (2^m,)
    idx = torch.tensor(list(itertools.product(range(2 ** m), repeat=n)))  # all n-tuples
    bound = torch.logsumexp(log_r(configs)[idx], -1) - math.log(n)
    (prob[idx].prod(-1) * bound).sum().backward()
    return phi.expand(R, m).clone(), log_r, phi_.grad


MSB = {
    "arms-d": lambda lg, f, n, g: est.arms_msb(lg, f, n, "dirichlet", generator=g),
    "arms-n": lambda lg, f, n, g: est.arms_msb(lg, f, n, "gaussian", generator=g),
    "loorf": lambda lg, f, n, g: est.loorf_msb(lg, f, n, generator=g),
}


@pytest.mark.parametrize("name", sorted(MSB))
@pytest.mark.parametrize("n,m", [(2, 2), (3, 2), (4, 2), (10, 1)])
def test_msb_unbiased(name, n, m):
    logits, log_r, exact = msb_problem(20000, m, n, seed=n)
    grads = MSB[name](logits, log_r, n, _gen(300 + n))
    z = _z_scores(grads, exact)
    assert z.abs().max() < Z, (name, n, z)


# --- identities ---------------------------------------------------------------------------------------------
def test_arms_n2_dirichlet_equals_disarm_sample_for_sample():
    logits, f, _ = table_problem(500, m=4, seed=1)
    logits = logits + torch.randn(logits.shape, generator=_gen(0), dtype=logits.dtype)  # mixed signs
    a = est.arms(logits, f, 2, "dirichlet", generator=_gen(5))
    d = est.disarm(logits, f, 2, generator=_gen(5))
    torch.testing.assert_close(a, d, rtol=1e-12, atol=1e-14)
    assert (a != 0).any()


def test_arms_with_independent_samples_is_loorf():
    logits, f, _ = table_problem(300, m=3, seed=2)
    torch.testing.assert_close(est.arms(logits, f, 5, "independent", generator=_gen(3)),
                               est.loorf(logits, f, 5, generator=_gen(3)), rtol=0, atol=0)
    # Both forms of eq. 2: the leave-one-out baseline equals the centred sum scaled by n / (n - 1).
    b, _ = est.sample_bernoulli(logits, 5, "independent", _gen(4))
    values = f(b)
    loo = (values.sum(0, keepdim=True) - values) / 4
    first_form = ((values - loo).unsqueeze(-1) * (b - torch.sigmoid(logits))).mean(0)
    torch.testing.assert_close(est.arms_from_samples(values.unsqueeze(-1), b, logits, 0.0), first_form)


# --- surrogate form, shapes, devices --------------------------------------------------------------------------
SURROGATES = {
    "arms": (est.arms, est.arms_surrogate, {"copula": "gaussian"}),
    "loorf": (est.loorf, est.loorf_surrogate, {}),
    "disarm": (est.disarm, est.disarm_surrogate, {}),
    "arm": (est.arm, est.arm_surrogate, {}),
}


@pytest.mark.parametrize("name", sorted(SURROGATES))
def test_surrogate_deposits_estimate_and_parameter_gradients(name):
    fn, surrogate, kw = SURROGATES[name]
    w = torch.randn(3, dtype=torch.float64, requires_grad=True)
    logits = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    f = lambda b: ((b * w).sum(-1) - 1.0) ** 2  # noqa: E731  (n, 5, 3) -> (n, 5)
    loss = surrogate(logits, f, 4, generator=_gen(6), **kw)
    loss.backward()
    with torch.no_grad():
        want = fn(logits, f, 4, generator=_gen(6), **kw)
    torch.testing.assert_close(logits.grad, want)
    # f's own parameter: autograd through the mean of f over the same samples.
    w2 = w.detach().clone().requires_grad_()
    if name == "arms":
        b, _ = est.sample_bernoulli(logits, 4, "gaussian", _gen(6))
    elif name == "loorf":
        b, _ = est.sample_bernoulli(logits, 4, "independent", _gen(6))
    else:
        b = None
    if b is not None:
        (((b * w2).sum(-1) - 1.0) ** 2).mean(0).sum().backward()
        torch.testing.assert_close(w.grad, w2.grad)
    else:
        assert w.grad is not None and torch.isfinite(w.grad).all()


def test_msb_surrogate_includes_pathwise_term():
    # log r depends on the logits directly (the -log q term of a VAE): the surrogate adds that pathwise
    # gradient to the score-function estimate.
    logits = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)

    def log_r(b):
        logq = (b * torch.nn.functional.logsigmoid(logits) + (1 - b) * torch.nn.functional.logsigmoid(-logits))
        return (b.sum(-1) - logq.sum(-1))

    loss = est.arms_msb_surrogate(logits, log_r, 3, generator=_gen(1))
    loss.backward()
    score = est.arms_msb(logits, log_r, 3, generator=_gen(1))
    assert not torch.allclose(logits.grad, score)  # the pathwise part is there
    assert torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("copula", ["dirichlet", "gaussian", "independent"])
def test_batch_shapes_and_devices(copula, device):
    logits = torch.randn(2, 3, 4, device=device)
    per_batch = est.arms(logits, lambda b: b.sum(-1), 4, copula, generator=_gen(0, device))
    assert per_batch.shape == logits.shape and per_batch.device.type == device
    scalar = est.arms(logits, lambda b: b.flatten(1).sum(-1), 4, copula, generator=_gen(0, device))
    assert scalar.shape == logits.shape
    elementwise = est.arms(logits, lambda b: b, 4, copula, generator=_gen(0, device))
    assert elementwise.shape == logits.shape
    zero_d = est.arms(torch.tensor(0.3, device=device), lambda b: b, 3, copula, generator=_gen(0, device))
    assert zero_d.shape == ()
    with pytest.raises(ValueError, match="f must return values of shape"):
        est.arms(logits, lambda b: b.sum(1), 4, copula)


def test_half_precision_logits():
    logits = torch.randn(4, 6, dtype=torch.bfloat16)
    for copula in ("dirichlet", "gaussian", "independent"):
        g = est.arms(logits, lambda b: b.float().sum(-1), 4, copula, generator=_gen(0))
        assert g.dtype == torch.bfloat16 and g.shape == logits.shape and torch.isfinite(g).all()


def test_bad_input_errors():
    logits = torch.zeros(3)
    f = lambda b: b.sum(-1)  # noqa: E731
    with pytest.raises(ValueError, match="n \\(the number of samples\\) must be >= 2"):
        est.arms(logits, f, 1)
    with pytest.raises(ValueError, match="n must be even"):
        est.disarm(logits, f, 3)
    with pytest.raises(ValueError, match="copula must be one of"):
        est.arms(logits, f, 3, "clayton")
    with pytest.raises(TypeError, match="logits must be a floating point Tensor"):
        est.loorf(torch.zeros(3, dtype=torch.long), f, 3)
    with pytest.raises(ValueError, match="n \\(the number of samples\\) must be >= 2"):
        est.arms_msb(logits, f, 1)
