"""Gaussian mixtures with pathwise gradients for every parameter, as differentiable ops.

Kernels: csrc/core/mixture.h (per-sample math), csrc/cpu/mixture.cpp and csrc/cuda/mixture.cu (loops).
This module registers the fake (meta) kernels and the autograd formulas of the ``gradkern::mixture_*``
ops and provides :func:`mixture_rsample`, which draws the component then the Normal noise with an
optional ``torch.Generator`` and calls the op. The user-facing classes are in
:mod:`gradkern.distributions`.

The ``*_rsample`` ops compute ``z = locs[k] + component_scale[k] * coord_scale[k] * noise``; their
gradient is not the derivative of that expression (which would only reach component ``k``) but the
transport-equation velocity field of Jankowiak & Karaletsos (2019): every sample contributes to every
component's parameters (eq. 12) and to the mixture logits (eqs. 14-15, 40-55). The ``noise`` and
``component`` inputs are treated as constants (no gradient).

The ``mixture_diag_normals_*`` ops take a trailing ``velocity`` string (see :data:`VELOCITIES`) that
selects the logit velocity field: ``"reference"`` (the default; eqs. 49-51 with one reference
``N(mu', s')`` common to all components, ``mu' = sum_k pi_k mu_k``, ``s'_i = min_j s_ji`` as eq. 52;
O(K D) per sample) or ``"pairwise"`` (per-component references ``N(mu_j, s')`` joined by the eq. 15
transports; O(K^2 D), and identical to the shared-covariance field when all scales are equal).
"""
import math

import torch


__all__ = ["FAMILIES", "VELOCITIES", "mixture_rsample"]

_ops = torch.ops.gradkern

# family -> (op stem, parameter names in op order)
FAMILIES = {
    "shared_cov": ("mixture_shared_cov", ("locs", "coord_scale", "component_logits")),
    "diag_normals": ("mixture_diag_normals", ("locs", "coord_scale", "component_logits")),
    "gaussian_scale": ("mixture_gaussian_scale", ("coord_scale", "component_logits", "component_scale")),
    "discrete_gaussian_scale": ("mixture_discrete_gaussian_scale", ("locs", "coord_scale", "component_logits", "component_scale")),
}

# The logit velocity fields a family's ops accept through their `velocity` argument (default first);
# families not listed have one field and no such argument.
VELOCITIES = {"diag_normals": ("reference", "pairwise")}


# --- fake kernels ---------------------------------------------------------------------------------
# They make the real kernels' dtype and device checks (csrc/ops/mixture.h: every parameter, the samples
# and the components on the device of component_logits, with its dtype), so that fake and meta tensors
# fail as real ones do instead of returning a tensor on the wrong device.
def _check_fake(op, names, params, samples):
    """names: the op's parameter names; params: the tensors; samples: [(name, tensor)] (noise or grad, z)."""
    logits = params[names.index("component_logits")]
    if not logits.is_floating_point():
        raise RuntimeError(f"gradkern.{op}: component_logits must be a floating point tensor, got {logits.dtype}")
    for name, t in list(zip(names, params)) + samples:
        if name == "component_logits":
            continue
        if not t.is_floating_point():
            raise RuntimeError(f"gradkern.{op}: {name} must be a floating point tensor, got {t.dtype}")
        if t.dtype != logits.dtype:
            raise RuntimeError(f"gradkern.{op}: {name} must have the same dtype as component_logits "
                               f"({logits.dtype}), got {t.dtype}")
        if t.device != logits.device:
            raise RuntimeError(f"gradkern.{op}: {name} must be on the same device as component_logits "
                               f"({logits.device}), got {t.device}")


def _make_rsample_fake(op, names):
    def fake(noise, component, *params):
        tensors = [p for p in params if isinstance(p, torch.Tensor)]  # not `velocity`
        _check_fake(op, names, tensors, [("noise", noise)])
        if component.dtype != torch.long:
            raise RuntimeError(f"gradkern.{op}: component must be an int64 tensor, got {component.dtype}")
        if component.device != noise.device:
            raise RuntimeError(f"gradkern.{op}: component must be on the same device as noise, got "
                               f"{component.device}")
        return noise.new_empty(noise.shape)
    return fake


def _make_backward_fake(op, names):
    def fake(grad, z, *params):
        tensors = [p for p in params if isinstance(p, torch.Tensor)]  # not `velocity`
        _check_fake(op, names, tensors, [("grad", grad), ("z", z)])
        return tuple(p.new_empty(p.shape) for p in tensors)
    return fake


# Autograd (reverse and forward mode, the torch.func transforms, second order where the derivative ops
# have derivatives): csrc/autograd.cpp, one kernel for every op.


for _family, (_stem, _names) in FAMILIES.items():
    torch.library.register_fake(f"gradkern::{_stem}_rsample")(_make_rsample_fake(f"{_stem}_rsample", _names))
    torch.library.register_fake(f"gradkern::{_stem}_backward")(_make_backward_fake(f"{_stem}_backward", _names))


# --- sampling ---------------------------------------------------------------------------------------
def mixture_rsample(family, params, batch_shape, event_dim, sample_shape=torch.Size(), generator=None,
                    velocity=None):
    r"""Reparameterised samples of a Gaussian mixture with transport-equation gradients.

    Args:
        family (str): one of ``"shared_cov"``, ``"diag_normals"``, ``"gaussian_scale"``, ``"discrete_gaussian_scale"``.
        params (dict): the family's parameters (see :data:`FAMILIES`), each broadcastable to the batch
            shape: ``locs (*batch, K, D)``, ``coord_scale (*batch, D)`` (``(*batch, K, D)`` for
            ``diag_normals``), ``component_logits (*batch, K)``, ``component_scale (*batch, K)``.
        batch_shape (torch.Size): the mixture's batch shape.
        event_dim (int): D.
        sample_shape (torch.Size): leading sample dimensions.
        generator (torch.Generator, optional): source of randomness for both the component draw and
            the Normal noise.
        velocity (str, optional): the logit velocity field, for the families in :data:`VELOCITIES`
            (``None``: the op's default, the first listed).

    Returns:
        Tensor of shape ``sample_shape + batch_shape + (D,)``.
    """
    stem, names = FAMILIES[family]
    sample_shape, batch_shape = torch.Size(sample_shape), torch.Size(batch_shape)
    logits = params["component_logits"]
    K, D = logits.shape[-1], event_dim
    B, S = math.prod(batch_shape), math.prod(sample_shape)
    shapes = {"locs": (K, D), "coord_scale": (K, D) if family == "diag_normals" else (D,),
              "component_logits": (K,), "component_scale": (K,)}
    # expand + reshape are differentiable: autograd sums the op's (B, ...) gradients back to the
    # parameters' own (possibly broadcast) shapes.
    flat = [params[n].expand(batch_shape + shapes[n]).reshape((B,) + shapes[n]) for n in names]
    with torch.no_grad():
        if S * B == 0:
            component = torch.zeros((S, B), dtype=torch.long, device=logits.device)
        else:
            probs = torch.softmax(flat[names.index("component_logits")].detach(), -1)
            component = torch.multinomial(probs, S, replacement=True, generator=generator).t().contiguous()
        noise = torch.randn((S, B, D), dtype=logits.dtype, device=logits.device, generator=generator)
    extra = ()
    if velocity is not None:
        if velocity not in VELOCITIES.get(family, ()):
            raise ValueError(f"mixture_rsample: velocity must be one of {VELOCITIES.get(family, ())} for "
                             f"family {family!r}, got {velocity!r}")
        extra = (velocity,)
    z = getattr(_ops, f"{stem}_rsample")(noise, component, *flat, *extra)
    return z.reshape(sample_shape + batch_shape + (D,))
