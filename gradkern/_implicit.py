"""Implicit reparameterization for any distribution with a differentiable CDF (Figurnov et al. 2018, eq. 8)."""
import torch

from ._promote import check_reverse_mode_only

__all__ = ["implicit_rsample"]


_SECOND_ORDER = ("gradkern.implicit_rsample: second derivatives are not supported (the gradient it returns "
                 "is first order: d2z/dtheta2 needs terms of the CDF's second derivatives and of dz/dtheta that "
                 "it does not form)")
# A leaf that requires grad, so that a gradient formed under create_graph=True is an output of
# _RaiseOnBackward (and differentiating it raises) rather than a constant that silently has derivative 0.
_ANCHOR = torch.zeros((), requires_grad=True)


class _RaiseOnBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, g, anchor):
        return g.clone()

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError(_SECOND_ORDER)


class _ImplicitReparameterization(torch.autograd.Function):
    """z (detached) in, z out; backward: grad_theta = -sum(grad * dF/dtheta / q(z)), recomputed from the
    user's CDF at the sample. First order only: the second derivative of z(theta) needs terms this backward
    does not form, so under create_graph=True the gradients it returns raise when differentiated."""

    @staticmethod
    def forward(ctx, z, cdf, log_prob, n_params, *params):
        ctx.cdf, ctx.log_prob = cdf, log_prob
        ctx.save_for_backward(z, *params)
        return z.clone()

    @staticmethod
    def backward(ctx, grad):
        create_graph = torch.is_grad_enabled()
        grad = grad.detach()
        z, *params = ctx.saved_tensors
        wants = [ctx.needs_input_grad[4 + i] for i in range(len(params))]
        with torch.enable_grad():
            leaves = [p.detach().requires_grad_(w) for p, w in zip(params, wants)]
            zz = z.detach().requires_grad_(ctx.log_prob is None)
            F = ctx.cdf(zz, *leaves)
            if F.shape != z.shape:
                raise RuntimeError(f"gradkern.implicit_rsample: cdf returned shape {tuple(F.shape)}, expected the "
                                   f"sample's shape {tuple(z.shape)}")
            if ctx.log_prob is None:
                # The density is the CDF's derivative in z (elementwise: F_i depends on z_i only).
                (q,) = torch.autograd.grad(F.sum(), zz, retain_graph=True)
            else:
                q = ctx.log_prob(z, *[p.detach() for p in params]).exp()
            # Eq. 8: dz/dtheta = -(dF/dtheta) / q(z); the vector-Jacobian product with the upstream grad.
            weight = -grad / q
            targets = [leaf for leaf, w in zip(leaves, wants) if w]
            grads = torch.autograd.grad(F, targets, grad_outputs=weight, allow_unused=True) if targets else ()
        it = iter(grads)
        out = [next(it) if w else None for w in wants]
        out = [torch.zeros_like(p) if (w and g is None) else g for p, w, g in zip(params, wants, out)]
        if create_graph:
            out = [None if g is None else _RaiseOnBackward.apply(g, _ANCHOR) for g in out]
        return (None, None, None, None, *out)


def implicit_rsample(sample, cdf, params, log_prob=None):
    r"""Attach implicit reparameterization gradients to samples drawn by any method.

    Given samples :math:`z` of a univariate distribution with CDF :math:`F(z; \theta)` (drawn by any
    sampler, no gradient needed), returns :math:`z` with the gradient of Figurnov et al. (2018), eq. 8:

    .. math:: \frac{dz}{d\theta} = -\frac{\partial F(z; \theta) / \partial \theta}{q(z; \theta)},

    the derivative of the sample at a fixed value of its CDF. ``cdf`` is written in differentiable torch
    ops (or gradkern ops, e.g. :func:`gradkern.gammainc`); the backward pass evaluates it once at the
    sample and takes its derivatives by autograd. The density :math:`q` is ``exp(log_prob(z, *params))``
    when ``log_prob`` is given, else the CDF's own derivative in ``z``.

    Args:
        sample (Tensor): samples ``z`` (any shape; detached internally).
        cdf (callable): ``cdf(z, *params)`` returning a tensor of ``z``'s shape, each element depending on
            the matching element of ``z`` only (parameters broadcast against ``z``).
        params (sequence of Tensors): the parameters :math:`\theta`; gradients flow to those that require
            them (summed over broadcast dimensions by autograd).
        log_prob (callable, optional): ``log_prob(z, *params)``, the log density (saves one derivative).

    Returns:
        Tensor equal to ``sample``, differentiable w.r.t. ``params``. First order: differentiating the
        gradient again raises an error (the second derivative of :math:`z(\theta)` is not formed). Under
        ``torch.compile`` the backward runs eagerly (it calls ``torch.autograd.grad`` on ``cdf``: a graph
        break, so ``fullgraph=True`` is refused); forward mode (``torch.func.jvp``) raises.

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
    check_reverse_mode_only("implicit_rsample", [sample, *params])
    return _ImplicitReparameterization.apply(sample.detach(), cdf, log_prob, len(params), *params)
