"""gradkern.implicit_rsample: implicit reparameterization (eq. 8) for a user-supplied CDF."""
import math

import pytest
import torch
from scipy import special as sps

import gradkern

F64 = torch.float64


def _gamma_cdf(z, a):
    return gradkern.gammainc(a, z)


@pytest.mark.parametrize("with_log_prob", [False, True])
def test_gamma_cdf_reproduces_standard_gamma_grad(with_log_prob):
    a = torch.tensor([0.3, 2.0, 40.0], dtype=F64, requires_grad=True)
    z = torch._standard_gamma(a.detach().expand(5, 3).contiguous())
    log_prob = (lambda z, a: torch.distributions.Gamma(a, 1.0).log_prob(z)) if with_log_prob else None
    out = gradkern.implicit_rsample(z, _gamma_cdf, (a,), log_prob=log_prob)
    assert torch.equal(out.detach(), z)
    w = torch.randn(5, 3, dtype=F64, generator=torch.Generator().manual_seed(0))
    (g,) = torch.autograd.grad((out * w).sum(), a)
    want = (w * gradkern.standard_gamma_grad(a.detach().expand(5, 3), z)).sum(0)
    torch.testing.assert_close(g, want, rtol=1e-10, atol=0)


def test_normal_matches_the_pathwise_gradient():
    loc = torch.tensor([0.5, -2.0], dtype=F64, requires_grad=True)
    scale = torch.tensor([1.5, 0.1], dtype=F64, requires_grad=True)
    z = torch.distributions.Normal(loc.detach(), scale.detach()).sample((7,))
    cdf = lambda z, m, s: torch.special.ndtr((z - m) / s)  # noqa: E731
    out = gradkern.implicit_rsample(z, cdf, (loc, scale))
    gl, gs = torch.autograd.grad(out.sum(), (loc, scale))
    # z = loc + scale eps: dz/dloc = 1, dz/dscale = (z - loc) / scale
    torch.testing.assert_close(gl, torch.full_like(gl, 7.0), rtol=1e-12, atol=0)
    torch.testing.assert_close(gs, ((z - loc.detach()) / scale.detach()).sum(0), rtol=1e-10, atol=1e-12)


def _kumaraswamy_mean(a, b):
    return b * math.exp(sps.betaln(1 + 1 / a, b))


@pytest.mark.parametrize("a,b", [(2.0, 3.0), (0.5, 0.8)])
def test_user_distribution_kumaraswamy_is_unbiased(a, b):
    # The docstring's example: a distribution gradkern does not know, made reparameterizable by its CDF
    # 1 - (1 - z^a)^b; samples by the inverse CDF without gradient. d/d(a, b) E[z] against the closed-form
    # mean b B(1 + 1/a, b) differentiated by central differences (error ~1e-10), within 4 standard errors.
    n = 200_000
    with torch.no_grad():
        u = torch.rand(n, dtype=F64, generator=torch.Generator().manual_seed(1))
        z = (1 - (1 - u) ** (1 / b)) ** (1 / a)
    # One parameter per sample, so that the gradient holds the per-sample dz/da, dz/db (for the SE).
    ta = torch.full((n,), a, dtype=F64, requires_grad=True)
    tb = torch.full((n,), b, dtype=F64, requires_grad=True)
    out = gradkern.implicit_rsample(z, lambda z, a, b: 1 - (1 - z ** a) ** b, (ta, tb))
    pa, pb = torch.autograd.grad(out.sum(), (ta, tb))
    h = 1e-6
    want_a = (_kumaraswamy_mean(a + h, b) - _kumaraswamy_mean(a - h, b)) / (2 * h)
    want_b = (_kumaraswamy_mean(a, b + h) - _kumaraswamy_mean(a, b - h)) / (2 * h)
    for per_sample, want in ((pa, want_a), (pb, want_b)):
        se = per_sample.std().item() / math.sqrt(n)
        assert abs(per_sample.mean().item() - want) <= 4 * se, (per_sample.mean().item(), want, se)
    # Scalar parameters: the same gradient summed over the samples (autograd's broadcast reduction).
    sa = torch.tensor(a, dtype=F64, requires_grad=True)
    sb = torch.tensor(b, dtype=F64, requires_grad=True)
    ga, gb = torch.autograd.grad(gradkern.implicit_rsample(z, lambda z, a, b: 1 - (1 - z ** a) ** b,
                                                           (sa, sb)).sum(), (sa, sb))
    torch.testing.assert_close(ga, pa.sum(), rtol=1e-10, atol=0)
    torch.testing.assert_close(gb, pb.sum(), rtol=1e-10, atol=0)


def _kumaraswamy_icdf(u, a, b):
    return (1 - (1 - u) ** (1 / b)) ** (1 / a)


def _kumaraswamy_cdf(z, a, b):
    return 1 - (1 - z ** a) ** b


def test_second_order_is_exact():
    # The inverse-CDF sampler z = F^{-1}(u; a, b) has explicit derivatives; implicit_rsample must give the
    # same first and second derivatives (d2z/da2 includes the dz/da terms through z).
    u = torch.tensor([0.1, 0.5, 0.93], dtype=F64)
    a = torch.tensor(2.0, dtype=F64)
    b = torch.tensor(3.0, dtype=F64)
    explicit = lambda a, b: _kumaraswamy_icdf(u, a, b)  # noqa: E731
    z = explicit(a, b)
    implicit = lambda a, b: gradkern.implicit_rsample(z, _kumaraswamy_cdf, (a, b))  # noqa: E731
    for f in (torch.func.jacrev, torch.func.jacfwd):
        for i, j in ((0, 0), (0, 1), (1, 1)):
            want = f(f(explicit, argnums=i), argnums=j)(a, b)
            got = f(f(implicit, argnums=i), argnums=j)(a, b)
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    # The same with the density from log_prob, through create_graph=True.
    log_prob = lambda z, a, b: torch.log(a * b) + (a - 1) * torch.log(z) + (b - 1) * torch.log1p(-z ** a)  # noqa: E731
    ar = a.clone().requires_grad_()
    (g,) = torch.autograd.grad(gradkern.implicit_rsample(z, _kumaraswamy_cdf, (ar, b), log_prob).sum(), ar,
                               create_graph=True)
    (h,) = torch.autograd.grad(g, ar)
    torch.testing.assert_close(h, torch.func.hessian(lambda a: explicit(a, b).sum())(a), rtol=1e-10, atol=0)


def test_forward_mode_with_a_cdf_that_closes_over_its_parameters():
    # The CDF need not take the parameters as arguments: a closure gives the same tangents (the sample's
    # quantile is formed detached; under no_grad alone it kept the closure's tangent and the result was 0).
    u = torch.tensor([0.2, 0.8], dtype=F64)
    b = torch.tensor(3.0, dtype=F64)

    def f(a):
        z = _kumaraswamy_icdf(u, a, b)
        return gradkern.implicit_rsample(z, lambda z, *p: _kumaraswamy_cdf(z, a, b), (a,))

    a = torch.tensor(2.0, dtype=F64)
    want = torch.func.jacrev(lambda a: _kumaraswamy_icdf(u, a, b))(a)
    torch.testing.assert_close(torch.func.jvp(f, (a,), (torch.ones_like(a),))[1], want, rtol=1e-12, atol=0)
    torch.testing.assert_close(torch.func.jacfwd(f)(a), want, rtol=1e-12, atol=0)
    assert (want != 0).all()


def test_forward_mode_and_torch_func():
    u = torch.tensor([0.2, 0.8], dtype=F64)
    a = torch.tensor(2.0, dtype=F64)
    b = torch.tensor(3.0, dtype=F64)
    z = _kumaraswamy_icdf(u, a, b)
    implicit = lambda a: gradkern.implicit_rsample(z, _kumaraswamy_cdf, (a, b))  # noqa: E731
    want = torch.func.jacrev(lambda a: _kumaraswamy_icdf(u, a, b))(a)
    _, t = torch.func.jvp(implicit, (a,), (torch.ones_like(a),))
    torch.testing.assert_close(t, want, rtol=1e-12, atol=0)
    torch.testing.assert_close(torch.func.grad(lambda a: implicit(a).sum())(a), want.sum(), rtol=1e-12, atol=0)
    # vmap over a batch of parameters (per-sample gradients).
    many = torch.tensor([1.5, 2.0, 4.0], dtype=F64)
    got = torch.func.vmap(torch.func.jacrev(implicit))(many)
    torch.testing.assert_close(got[1], want, rtol=1e-12, atol=0)


def test_parameters_without_influence_or_gradient():
    a = torch.tensor(2.0, dtype=F64, requires_grad=True)
    unused = torch.tensor(1.0, dtype=F64, requires_grad=True)
    frozen = torch.tensor(1.0, dtype=F64)
    z = torch.tensor([0.5, 3.0], dtype=F64)
    out = gradkern.implicit_rsample(z, lambda z, a, u, f: gradkern.gammainc(a, z * f), (a, unused, frozen))
    ga, gu = torch.autograd.grad(out.sum(), (a, unused), allow_unused=True, materialize_grads=True)
    assert gu.item() == 0.0 and ga.item() != 0.0


def test_bad_arguments():
    z = torch.tensor([0.5], dtype=F64)
    a = torch.tensor(2.0, dtype=F64, requires_grad=True)
    with pytest.raises(TypeError, match="cdf must be callable"):
        gradkern.implicit_rsample(z, "gammainc", (a,))
    with pytest.raises(TypeError, match="sample must be a floating point tensor"):
        gradkern.implicit_rsample(torch.tensor([1]), _gamma_cdf, (a,))
    with pytest.raises(TypeError, match=r"params\[0\] must be a Tensor"):
        gradkern.implicit_rsample(z, _gamma_cdf, (2.0,))
    with pytest.raises(RuntimeError, match="cdf returned shape"):
        gradkern.implicit_rsample(z, lambda z, a: gradkern.gammainc(a, z).sum(), (a,))


def test_under_torch_compile():
    a = torch.tensor([0.5, 3.0], dtype=F64, requires_grad=True)
    z = torch._standard_gamma(a.detach().expand(4, 2).contiguous())
    eager = torch.autograd.grad(gradkern.implicit_rsample(z, _gamma_cdf, (a,)).sum(), a)[0]
    torch._dynamo.reset()
    f = torch.compile(lambda z, a: gradkern.implicit_rsample(z, _gamma_cdf, (a,)).sum(), backend="aot_eager")
    compiled = torch.autograd.grad(f(z, a), a)[0]
    torch.testing.assert_close(compiled, eager, rtol=0, atol=0)
