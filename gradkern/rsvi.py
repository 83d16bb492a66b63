r"""Rejection sampling variational inference (RSVI; Naesseth, Ruiz, Linderman & Blei 2017): the baseline
that Figurnov et al. (2018) compare implicit reparameterization with (Figure 1, Table 3, Table 7).

A rejection sampler draws noise ``eps`` from a proposal and keeps it with some probability; the accepted
noise has a density :math:`\pi(\epsilon; \theta) = q(h(\epsilon, \theta); \theta)\,
|\partial h / \partial \epsilon|` that depends on the parameters. RSVI's gradient of
:math:`E_q[f(z)]` is the reparameterization term through the proposal's transform ``h`` plus a
score-function correction (Naesseth et al., eq. 7):

.. math::
    \nabla_\theta E[f(z)] = E_\pi[\nabla_z f(h)\, \nabla_\theta h] + E_\pi[f(h)\, \nabla_\theta \log \pi(\epsilon; \theta)].

Each sampler here returns an :class:`RSVISample`: the ``sample`` (differentiable through ``h``, the
first term) and ``noise_log_prob``, :math:`\log \pi(\epsilon; \theta)` of the accepted noise
(differentiable in the parameters, the second term). :func:`surrogate` combines them into a loss whose
value is ``f`` and whose gradient is RSVI's estimate::

    s = gradkern.rsvi.gamma(alpha, shape_augmentation=5)
    f = log_lik(s.sample)                      # one value per independent draw, e.g. per data point
    loss = -gradkern.rsvi.surrogate(f, s.noise_log_prob.sum(-1)).mean()
    loss.backward()

The correction must be weighted by the ``f`` value that each draw's noise affects: sum
``noise_log_prob`` over every dimension that one ``f`` value depends on (the latent's coordinates), so
that it has ``f``'s shape. Only the part of the objective that depends on the sample belongs in ``f``
(an analytic KL term does not; it would add variance, not change the mean).

Samplers (proposals as in the paper's appendix D):

* :func:`gamma`: Marsaglia and Tsang's proposal :math:`h(\epsilon, a) = (a - 1/3)(1 + \epsilon /
  \sqrt{9a - 3})^3`, :math:`\epsilon \sim N(0, 1)`, for Gamma(:math:`a = \alpha + B`), and the shape
  augmentation :math:`z = h \prod_{i<B} u_i^{1/(\alpha + i)}` with ``B = shape_augmentation`` uniforms,
  which shrinks the correction term (it vanishes as ``B`` grows, where RSVI approaches the implicit
  gradient at a higher cost);
* :func:`beta` and :func:`dirichlet`: normalised Gammas, each component by :func:`gamma`'s construction
  (the correction is the sum of the components');
* :func:`vonmises`: Best and Fisher's wrapped-Cauchy proposal
  :math:`|x| = \arccos((1 + r \cos \pi u) / (r + \cos \pi u))`, :math:`u \sim U(0, 1)`, with a random sign;
  no shape augmentation exists.

These are reference implementations in torch ops (Python-level rejection loops, capped at 1000 rounds;
acceptance is above 0.95 for Gamma and 0.65 for von Mises per round), for comparisons; gradkern's
implicit gradients (:func:`gradkern.gamma_rsample`, :class:`gradkern.distributions.Beta`, ...) have
lower variance and are faster (docs/variance.md). Invalid parameters (a concentration <= 0 or NaN, a
rate <= 0) give NaN samples.
"""
import math
from typing import NamedTuple

import torch

from ._gamma import _open_unit
from ._promote import promote, promote2

__all__ = ["RSVISample", "gamma", "beta", "dirichlet", "vonmises", "surrogate"]

_MAX_ROUNDS = 1000  # rejection rounds; the probability that one element needs more is below 0.35^1000


class RSVISample(NamedTuple):
    """A sample and the log density of the rejection sampler's accepted noise that produced it."""
    sample: torch.Tensor
    noise_log_prob: torch.Tensor


def surrogate(f, noise_log_prob):
    r"""``f`` with RSVI's score-function correction attached: the value is ``f``; the gradient is
    ``grad f + f * grad noise_log_prob`` (``f`` held fixed in the second term).

    Args:
        f (Tensor): per-draw objective values, computed from the sample (differentiable).
        noise_log_prob (Tensor): ``RSVISample.noise_log_prob`` summed to ``f``'s shape (one value per
            independent draw whose ``f`` it affects).
    """
    if not isinstance(f, torch.Tensor) or not isinstance(noise_log_prob, torch.Tensor):
        raise TypeError("gradkern.rsvi.surrogate: f and noise_log_prob must be Tensors")
    if f.shape != noise_log_prob.shape:
        raise ValueError(f"gradkern.rsvi.surrogate: noise_log_prob must have f's shape {tuple(f.shape)} (sum it "
                         f"over the latent dimensions each f value depends on), got {tuple(noise_log_prob.shape)}")
    return f + f.detach() * (noise_log_prob - noise_log_prob.detach())


def _check_augmentation(fn, b):
    if isinstance(b, bool) or not isinstance(b, int) or b < 0:
        raise ValueError(f"gradkern.rsvi.{fn}: shape_augmentation must be an int >= 0, got {b!r}")


def _accept_loop(fn, todo, draw):
    """Run rejection rounds on the flat indices still in ``todo`` (bool, modified): ``draw(idx)``
    proposes for those indices, stores the accepted values and returns the accepted mask."""
    for _ in range(_MAX_ROUNDS):
        idx = todo.nonzero().squeeze(1)
        if idx.numel() == 0:
            return
        todo[idx[draw(idx)]] = False
    if todo.any():  # never leave an element unset: raise rather than return a wrong sample
        raise RuntimeError(f"gradkern.rsvi.{fn}: the rejection sampler accepted no draw for "
                           f"{int(todo.sum())} element(s) within {_MAX_ROUNDS} rounds")


def _mt_noise(fn, a, generator):
    """Accepted Marsaglia-Tsang noise for Gamma(a), a >= 1 (flat); NaN where a is invalid."""
    a = a.detach().reshape(-1)
    eps = torch.full_like(a, float("nan"))
    d = a - 1.0 / 3
    c = 1.0 / torch.sqrt(9.0 * d)
    todo = a >= 1  # False for NaN (the invalid concentrations), which stay NaN

    def draw(idx):
        e = torch.randn(idx.numel(), generator=generator, dtype=a.dtype, device=a.device)
        u = torch.rand(idx.numel(), generator=generator, dtype=a.dtype, device=a.device)
        dd = d[idx]
        v = 1.0 + c[idx] * e
        ok = v > 0
        v3 = torch.where(ok, v, torch.ones_like(v)) ** 3
        # Marsaglia and Tsang's squeeze-free test: log u < e^2 / 2 + d - d v^3 + d log v^3
        acc = ok & (torch.log(u) < 0.5 * e * e + dd - dd * v3 + dd * torch.log(v3))
        eps[idx[acc]] = e[acc]
        return acc

    _accept_loop(fn, todo, draw)
    return eps


def _mt_transform(eps, a):
    """log h(eps, a) of the Marsaglia-Tsang proposal (differentiable in a at fixed eps) and log pi(eps; a),
    the accepted noise's density: log q(h; a) + log |dh/deps| = (a - 1) log h - h - lgamma(a) + log(3 d c v^2)
    with d = a - 1/3, c = 1 / sqrt(9 a - 3), v = 1 + c eps (h = d v^3)."""
    c = torch.rsqrt(9.0 * a - 3.0)
    d = a - 1.0 / 3
    v = 1.0 + eps * c
    log_h = torch.log(d) + 3.0 * torch.log(v)
    h = torch.exp(log_h)
    return log_h, (a - 1) * log_h - h - torch.lgamma(a) + torch.log(3.0 * d * c) + 2.0 * torch.log(v)


def _log_gamma(fn, alpha, b, generator):
    """log z and log pi(eps) for z ~ Gamma(alpha, 1) by RSVI with shape augmentation b (alpha expanded to
    the sample's shape)."""
    # An infinite concentration is invalid too (its acceptance test is NaN: the loop would never accept).
    valid = (alpha.detach() > 0) & torch.isfinite(alpha.detach())
    if bool(((alpha.detach() + b < 1) & valid).any()):
        raise ValueError(f"gradkern.rsvi.{fn}: the Marsaglia-Tsang proposal needs concentration + shape_augmentation "
                         f">= 1; got a concentration of {float(alpha.detach()[valid].min()):.3g} with "
                         f"shape_augmentation={b} (use shape_augmentation >= 1 for concentrations below 1)")
    alpha = torch.where(valid, alpha, float("nan"))
    a = alpha + b
    eps = _mt_noise(fn, a, generator).reshape(a.shape)
    log_h, noise_lp = _mt_transform(eps, a)
    log_z = log_h
    if b:
        # Gamma(alpha) = Gamma(alpha + B) prod_{i<B} u_i^(1 / (alpha + i)) (Naesseth et al., section 5)
        u = torch.rand(a.shape + (b,), generator=generator, dtype=a.dtype, device=a.device)
        u = u.clamp_min(torch.finfo(a.dtype).tiny)
        shifts = torch.arange(b, dtype=a.dtype, device=a.device)
        log_z = log_z + (torch.log(u) / (alpha.unsqueeze(-1) + shifts)).sum(-1)
    return log_z, noise_lp


def gamma(concentration, rate=None, sample_shape=(), *, shape_augmentation=1, generator=None):
    r"""Gamma(concentration, rate) samples by RSVI (Marsaglia-Tsang proposal with shape augmentation).

    Args:
        concentration (Tensor or float): :math:`\alpha > 0`; :math:`\alpha + B \ge 1` is required.
        rate (Tensor or float, optional): :math:`\beta > 0` (default 1); its gradient is the exact
            reparameterization ``-z / rate`` (no correction).
        sample_shape (torch.Size): leading sample dimensions.
        shape_augmentation (int): ``B``, the number of uniforms of the augmentation (0: none).
        generator (torch.Generator, optional): source of randomness.

    Returns:
        :class:`RSVISample` whose ``sample`` and ``noise_log_prob`` both have shape
        ``sample_shape + broadcast(concentration, rate).shape``.
    """
    _check_augmentation("gamma", shape_augmentation)
    if rate is None:
        (alpha,) = promote("rsvi.gamma", ("concentration", concentration))
        rate_t = None
    else:
        alpha, rate_t = promote2("rsvi.gamma", "concentration", concentration, "rate", rate)
    shape = torch.Size(sample_shape) + (alpha.shape if rate_t is None
                                        else torch.broadcast_shapes(alpha.shape, rate_t.shape))
    log_z, noise_lp = _log_gamma("gamma", alpha.expand(shape), shape_augmentation, generator)
    z = torch.exp(log_z)
    if rate_t is not None:
        z = z / torch.where(rate_t > 0, rate_t, float("nan"))
    return RSVISample(z, noise_lp)


def beta(concentration1, concentration0, sample_shape=(), *, shape_augmentation=1, generator=None):
    r"""Beta(concentration1, concentration0) samples by RSVI: ``x = g1 / (g1 + g0)`` for two Gamma
    samples of :func:`gamma`'s construction (computed as ``sigmoid(log g1 - log g0)``, kept in
    ``[tiny, 1 - eps/2]`` as torch's samples are). ``noise_log_prob`` is the sum of the two components'.
    Shapes as :func:`gamma`'s, over ``broadcast(concentration1, concentration0)``."""
    _check_augmentation("beta", shape_augmentation)
    a, b = promote2("rsvi.beta", "concentration1", concentration1, "concentration0", concentration0)
    shape = torch.Size(sample_shape) + torch.broadcast_shapes(a.shape, b.shape)
    l1, n1 = _log_gamma("beta", a.expand(shape), shape_augmentation, generator)
    l0, n0 = _log_gamma("beta", b.expand(shape), shape_augmentation, generator)
    return RSVISample(_open_unit(torch.sigmoid(l1 - l0)), n1 + n0)


def dirichlet(concentration, sample_shape=(), *, shape_augmentation=1, generator=None):
    r"""Dirichlet(concentration) samples by RSVI: the softmax of the components' log Gamma samples
    (:func:`gamma`'s construction). ``sample`` has shape ``sample_shape + concentration.shape``;
    ``noise_log_prob`` sums over the last (event) dimension: ``sample_shape + concentration.shape[:-1]``."""
    _check_augmentation("dirichlet", shape_augmentation)
    (alpha,) = promote("rsvi.dirichlet", ("concentration", concentration))
    if alpha.dim() < 1:
        raise ValueError("gradkern.rsvi.dirichlet: concentration must have at least one dimension (the event), "
                         "got a 0-dim tensor")
    shape = torch.Size(sample_shape) + alpha.shape
    log_g, noise_lp = _log_gamma("dirichlet", alpha.expand(shape), shape_augmentation, generator)
    return RSVISample(_open_unit(torch.softmax(log_g, -1)), noise_lp.sum(-1))


def _bf_params(kappa):
    """Best and Fisher's (1979) wrapped-Cauchy proposal: rho = (tau - sqrt(2 tau)) / (2 kappa) with
    tau = 1 + s, s = sqrt(1 + 4 kappa^2), and r = (1 + rho^2) / (2 rho); returned as (rho, 1 - rho, r - 1),
    each without cancellation. The textbook difference cancels to rho = 0 (r = inf) for small kappa
    (kappa = 1e-4 in float32), and 1 - rho, r - 1 lose every digit for large kappa, where r -> 1. Here
    tau - sqrt(2 tau) = sqrt(tau) (tau - 2) / (sqrt(tau) + sqrt 2) with tau - 2 = 4 kappa^2 / (s + 1), and
    1 - rho = (sqrt(tau) (1 + 1 / (s + 2 kappa)) + sqrt 2 (s + 1)) / D over the same denominator
    D = (s + 1)(sqrt(tau) + sqrt 2) (using s - 2 kappa = 1 / (s + 2 kappa)): sums of positive terms."""
    s = torch.sqrt(1.0 + 4.0 * kappa * kappa)
    rt = torch.sqrt(1.0 + s)
    den = (s + 1.0) * (rt + math.sqrt(2.0))
    rho = 2.0 * kappa * rt / den
    one_m_rho = (rt * (1.0 + 1.0 / (s + 2.0 * kappa)) + math.sqrt(2.0) * (s + 1.0)) / den
    return rho, one_m_rho, one_m_rho * one_m_rho / (2.0 * rho)


def _bf_one_minus_f(u, r_m1):
    """1 - f and r + c for f = (1 + r c) / (r + c), c = cos(pi u): 1 - c = 2 sin^2(pi u / 2),
    1 + c = 2 cos^2(pi u / 2), r + c = (r - 1) + (1 + c) and 1 - f = (r - 1)(1 - c) / (r + c), all without
    cancellation (f rounds to 1 near u = 0 at large kappa, where kappa (1 - f) is still of order 1)."""
    one_m_c = 2.0 * torch.sin(0.5 * math.pi * u) ** 2
    r_p_c = r_m1 + 2.0 * torch.cos(0.5 * math.pi * u) ** 2
    return r_m1 * one_m_c / r_p_c, r_p_c


def vonmises(loc, concentration, sample_shape=(), *, generator=None):
    r"""vonMises(loc, concentration) samples in ``[-pi, pi)`` by RSVI (Best-Fisher proposal).

    The accepted uniform ``u`` gives :math:`|x - loc| = h(u, \kappa) = \arccos f`,
    :math:`f = (1 + r c) / (r + c)`, :math:`c = \cos \pi u`, and its density is
    :math:`\pi(u; \kappa) = e^{\kappa (f - 1)} \sqrt{r^2 - 1} / (I_0(\kappa) e^{-\kappa} (r + c))` on
    (0, 1). The gradient w.r.t. ``loc`` is 1. Shapes as :func:`gamma`'s, over
    ``broadcast(loc, concentration)``.
    """
    loc, kappa = promote2("rsvi.vonmises", "loc", loc, "concentration", concentration)
    shape = torch.Size(sample_shape) + torch.broadcast_shapes(loc.shape, kappa.shape)
    kappa = kappa.expand(shape)
    valid = (kappa.detach() > 0) & torch.isfinite(kappa.detach())
    kappa = torch.where(valid, kappa, float("nan"))
    kd = kappa.detach().reshape(-1)
    r_m1 = _bf_params(kd)[2]
    u_acc = torch.full_like(kd, float("nan"))
    todo = valid.reshape(-1).clone()

    def draw(idx):
        tiny = torch.finfo(kd.dtype).tiny
        u1 = torch.rand(idx.numel(), generator=generator, dtype=kd.dtype, device=kd.device).clamp_min(tiny)
        u2 = torch.rand(idx.numel(), generator=generator, dtype=kd.dtype, device=kd.device).clamp_min(tiny)
        kk = kd[idx]
        # Best and Fisher's test on w = kappa (r - f) = kappa ((r - 1) + (1 - f))
        w = kk * (r_m1[idx] + _bf_one_minus_f(u1, r_m1[idx])[0])
        acc = (w * (2.0 - w) - u2 > 0) | (torch.log(w / u2) + 1.0 - w >= 0)
        u_acc[idx[acc]] = u1[acc]
        return acc

    _accept_loop("vonmises", todo, draw)
    u = u_acc.reshape(shape)
    sign = torch.where(torch.rand(shape, generator=generator, dtype=kd.dtype, device=kd.device) < 0.5, -1.0, 1.0)
    habs, noise_lp = _bf_transform(u, kappa)
    x = loc + sign.to(kappa.dtype) * habs
    # wrapped into [-pi, pi); d/dloc = 1
    x = x - 2 * math.pi * torch.floor((x.detach() + math.pi) / (2 * math.pi))
    return RSVISample(x, noise_lp)


def _bf_transform(u, kappa):
    """|x| = h(u, kappa) = arccos f of the Best-Fisher proposal (differentiable in kappa at fixed u) and
    log pi(u; kappa), the accepted uniform's density on (0, 1): 2 q(h) |dh/du| with
    |dh/du| = pi sqrt(r^2 - 1) / (r + c), sqrt(r^2 - 1) = (1 - rho^2) / (2 rho); q's 1 / (2 pi I0(kappa)) and
    the factors 2 and pi combine to 1 / I0(kappa). h is atan2(sin h, cos h) with sin h = sqrt(r^2 - 1)
    sin(pi u) / (r + c) and cos h = f: arccos f has an infinite derivative where f rounds to +-1."""
    rho, one_m_rho, r_m1 = _bf_params(kappa)
    one_m_f, r_p_c = _bf_one_minus_f(u, r_m1)
    sq = one_m_rho * (1.0 + rho) / (2.0 * rho)  # sqrt(r^2 - 1)
    habs = torch.atan2(sq * torch.sin(math.pi * u), r_p_c * (1.0 - one_m_f))
    noise_lp = (-kappa * one_m_f + torch.log(sq) - torch.log(r_p_c) - torch.log(torch.special.i0e(kappa)))
    return habs, noise_lp
