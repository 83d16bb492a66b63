"""Implicit reparameterization for any distribution with a differentiable CDF (Figurnov et al. 2018, eq. 8)."""
import torch


__all__ = ["implicit_rsample"]


def _check_shape(F, z):
    if F.shape != z.shape:
        raise RuntimeError(f"gradkern.implicit_rsample: cdf returned shape {tuple(F.shape)}, expected the "
                           f"sample's shape {tuple(z.shape)}")


def _differentiating(params):
    """Whether any derivative can be asked of the result: reverse mode with a parameter that requires
    grad, a forward-mode dual level, or a torch.func transform (whose wrapped tensors may not say
    requires_grad). Plain sampling skips the Newton steps."""
    if torch._C._are_functorch_transforms_active() or torch.autograd.forward_ad._current_level >= 0:
        return True
    return torch.is_grad_enabled() and any(p.requires_grad for p in params)


def _newton_step(z, u, cdf, density, params):
    """One Newton step towards F(z; theta) = u, in differentiable torch ops.

    At the drawn sample F(z; theta) = u holds exactly (u is that very value, detached), so the step changes
    nothing: F - u is 0 and z comes back bit for bit. Its derivatives in theta are those of the root
    z(theta) of F(z; theta) = u: Newton's map has zero derivative in z at the root, so one step from a
    constant z is the root to first order (eq. 8, dz/dtheta = -(dF/dtheta) / q) and two steps to third
    order. Every autodiff mode (reverse, forward, torch.func, vmap, torch.compile) applies to it as to any
    torch code, to second order exactly."""
    F = cdf(z, *params)
    _check_shape(F, z)
    if density is not None:  # dF/dz in closed form (exp(log_prob), or a signed one for a decreasing "CDF")
        q = density(z, *params)
    else:  # the CDF's derivative in z (elementwise: F_i depends on z_i only)
        q = torch.func.grad(lambda zz: cdf(zz, *params).sum())(z)
    # A sample on the boundary of the support, where the CDF is exactly 0 or 1 (a log-CDF: +-inf), has
    # F - u = inf - inf: its step is 0 with zero gradient (as torch's samplers clamp such samples). The
    # density can be negative (a decreasing "CDF", as TruncatedNormal's mirrored one) but not 0.
    edge = (F.detach() == u) & ~torch.isfinite(u)
    r = torch.where(edge, torch.zeros_like(F), F - u)
    q = torch.where(edge | (q.detach() == 0), torch.ones_like(q), q)
    return z - r / q


def implicit_rsample(sample, cdf, params, log_prob=None):
    r"""Attach implicit reparameterization gradients to samples drawn by any method.

    Given samples :math:`z` of a univariate distribution with CDF :math:`F(z; \theta)` (drawn by any
    sampler, no gradient needed), returns :math:`z` with the gradient of Figurnov et al. (2018), eq. 8:

    .. math:: \frac{dz}{d\theta} = -\frac{\partial F(z; \theta) / \partial \theta}{q(z; \theta)},

    the derivative of the sample at a fixed value of its CDF. ``cdf`` is written in differentiable torch
    ops (or gradkern ops, e.g. :func:`gradkern.gammainc`). The result is two Newton steps towards
    :math:`F(z; \theta) = F(z_0; \theta_0)` from the sample :math:`z_0`, written in torch ops: they do not
    change the value (bit for bit), and their derivatives are those of the implicit function
    :math:`z(\theta)` to third order. The density :math:`q` is ``exp(log_prob(z, *params))`` when
    ``log_prob`` is given, else the CDF's own derivative in ``z`` (by ``torch.func.grad``).

    Args:
        sample (Tensor): samples ``z`` (any shape; detached internally).
        cdf (callable): ``cdf(z, *params)`` returning a tensor of ``z``'s shape, each element depending on
            the matching element of ``z`` only (parameters broadcast against ``z``).
        params (sequence of Tensors): the parameters :math:`\theta`; gradients flow to those that require
            them (summed over broadcast dimensions by autograd).
        log_prob (callable, optional): ``log_prob(z, *params)``, the log density (saves one derivative).

    Returns:
        Tensor equal to ``sample``, differentiable w.r.t. ``params`` in every mode: reverse, forward
        (``torch.func.jvp`` / ``jacfwd``), ``torch.func.grad`` / ``jacrev`` / ``vmap``, ``torch.compile``,
        and to second order, exactly wherever ``cdf`` and ``log_prob`` are (twice) differentiable. Costs
        two evaluations of ``cdf`` and of the density, plus the one that fixes the sample's quantile.

    Example (Kumaraswamy, whose CDF is :math:`1 - (1 - z^a)^b`)::

        a = torch.tensor(2.0, requires_grad=True); b = torch.tensor(3.0, requires_grad=True)
        with torch.no_grad():  # any sampler; here the inverse CDF
            u = torch.rand(10_000)
            z = (1 - (1 - u) ** (1 / b)) ** (1 / a)
        z = gradkern.implicit_rsample(z, lambda z, a, b: 1 - (1 - z ** a) ** b, (a, b))
        z.mean().backward()  # d E[z] / d(a, b), unbiased
    """
    if not isinstance(sample, torch.Tensor) or not sample.is_floating_point():
        raise TypeError("gradkern.implicit_rsample: sample must be a floating point tensor")
    if not callable(cdf):
        raise TypeError(f"gradkern.implicit_rsample: cdf must be callable, got {type(cdf).__name__}")
    if log_prob is not None and not callable(log_prob):
        raise TypeError(f"gradkern.implicit_rsample: log_prob must be callable or None, got {type(log_prob).__name__}")
    params = tuple(params)
    for i, p in enumerate(params):
        if not isinstance(p, torch.Tensor):
            raise TypeError(f"gradkern.implicit_rsample: params[{i}] must be a Tensor, got {type(p).__name__}")
    density = None if log_prob is None else (lambda z, *p: log_prob(z, *p).exp())
    return _implicit_steps(sample.detach(), cdf, params, density)


def _implicit_steps(z, cdf, params, density=None):
    """implicit_rsample after its argument checks: ``z`` detached, ``density(z, *params)`` = dF/dz or None
    (then by torch.func.grad); the distributions that know dF/dz in closed form call this directly."""
    if not _differentiating(params):
        return z
    # The quantile of the sample, a constant: detached (no_grad alone would keep a forward-mode tangent that
    # a cdf closing over its parameters carries, and the steps would then cancel it to a zero tangent).
    with torch.no_grad():
        u = cdf(z, *[p.detach() for p in params]).detach()
    _check_shape(u, z)
    # Two Newton steps from the sample (see _newton_step): the value is the sample, the derivatives those of
    # the implicit function z(theta) up to third order.
    z1 = _newton_step(z, u, cdf, density, params)
    return _newton_step(z1, u, cdf, density, params)
