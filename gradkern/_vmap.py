"""Batching rules (torch.vmap) for every gradkern op that takes tensors.

Without them vmap runs an op once per batch entry (torch's slow fallback, with a warning) and ignores
vmap's ``randomness`` modes for the samplers. The rules follow torch's own:

* elementwise ops: the batch dimension moves to the front and the others' ranks are aligned, so one call
  covers the batch (broadcasting does the rest);
* samplers: ``randomness="error"`` raises, ``"same"`` draws once for the whole batch (and raises for a
  batched parameter, as torch's samplers do), ``"different"`` draws independently per batch entry. Like
  torch's random ops, they are registered for the vmap mode key, so a sampler whose parameters are not
  batched still follows the mode;
* the copulas, the antithetic constructions and the mixture samplers: the vmap dimension is folded into
  the op's own batch dimension.
"""
import torch
from torch._C import _functorch as _fc

_ops = torch.ops.gradkern
_LIB = torch.library.Library("gradkern", "IMPL")

_RANDOM_ERROR = ("vmap: called random operation while in randomness error mode. Please either use the 'same' or "
                 "'different' randomness flags on vmap or perform the randomness operation out of vmap")
_SAME_BATCHED = ("Vmap does not currently support same randomness with a batched tensor input. Please file an "
                 "issue with functorch")


def _to_front(t, d):
    return t if d is None or d == 0 else t.movedim(d, 0)


def _elementwise_args(in_dims, args):
    """Batched tensors with the batch dimension first and their logical ranks aligned (a size-1 axis for
    each missing leading dimension), so that broadcasting against the unbatched arguments is unchanged."""
    rank = max((a.dim() - (d is not None) for a, d in zip(args, in_dims) if isinstance(a, torch.Tensor)), default=0)
    out = []
    for a, d in zip(args, in_dims):
        if isinstance(a, torch.Tensor) and d is not None:
            a = _to_front(a, d)
            pad = rank - (a.dim() - 1)
            if pad:
                a = a.reshape(a.shape[:1] + (1,) * pad + a.shape[1:])
        out.append(a)
    return out


def _out_dims(result, dim=0):
    return tuple(dim for _ in result) if isinstance(result, tuple) else dim


def _elementwise_rule(op):
    def rule(info, in_dims, *args):
        result = op(*_elementwise_args(in_dims, args))
        return result, _out_dims(result)
    return rule


def _check_table_unbatched(op, in_dims, i, samples):
    # chi2_reflect / antithetic_normal_standardized: `table` is the fixed lookup table of one df.
    if in_dims[i] is not None:
        raise RuntimeError(f"gradkern.{op}: vmap over table is not supported (one table per call); vmap over "
                           f"{samples} only")


def _chi2_reflect_rule(info, in_dims, s, df, table, u_lo, u_hi, reflection="exact"):
    _check_table_unbatched("chi2_reflect", in_dims, 2, "s")
    return _ops.chi2_reflect(_to_front(s, in_dims[0]), df, table, u_lo, u_hi, reflection), 0


def _to_second(t, d):
    return t if d == 1 else t.movedim(d, 1)


def _antithetic_construction_rule(info, in_dims, z, method="marsaglia"):
    # z (k - 1, *batch): the vmap dimension becomes the first batch dimension.
    return _ops.antithetic_construction(_to_second(z, in_dims[0]), method), 1


def _antithetic_standardized_rule(info, in_dims, noise, table, u_lo, u_hi, method="marsaglia", reflection="exact"):
    _check_table_unbatched("antithetic_normal_standardized", in_dims, 1, "noise")
    return _ops.antithetic_normal_standardized(_to_second(noise, in_dims[0]), table, u_lo, u_hi, method,
                                               reflection), 1


# --- mixtures: fold the vmap dimension V into the op's batch dimension B ------------------------------
def _fold(t, d, size, axis):
    """(.., V at `axis`, B, ..) -> (.., V * B, ..); an unbatched tensor is expanded to V first."""
    if d is None:
        t = t.unsqueeze(axis).expand(*t.shape[:axis], size, *t.shape[axis:])
    elif d != axis:
        t = t.movedim(d, axis)
    return t.flatten(axis, axis + 1)


def _mixture_rule(op, n_sample_like, backward):
    def rule(info, in_dims, *args):
        size = info.batch_size
        folded = []
        for i, (a, d) in enumerate(zip(args, in_dims)):
            if not isinstance(a, torch.Tensor):
                folded.append(a)
            else:
                folded.append(_fold(a, d, size, 1 if i < n_sample_like else 0).contiguous())
        result = op(*folded)
        if backward:  # gradients of the params: (V * B, ...) -> (V, B, ...)
            return tuple(g.unflatten(0, (size, -1)) for g in result), tuple(0 for _ in result)
        return result.unflatten(1, (size, -1)), 1
    return rule


# --- samplers ------------------------------------------------------------------------------------------
def _sampler_call(op, name, tensor_args, rest, out_dim):
    """The body of a sampler's vmap-mode kernel: unwrap the arguments batched at the current vmap level,
    apply the randomness mode, call the op below the vmap keys and wrap the result."""
    interpreter = torch._functorch.pyfunctorch.retrieve_current_functorch_interpreter()
    level, mode, size = interpreter.level(), interpreter.randomness(), interpreter.batch_size()
    if mode == "error":
        raise RuntimeError(_RANDOM_ERROR)
    values, dims = [], []
    for t in tensor_args:
        if _fc.is_batchedtensor(t) and _fc.maybe_get_level(t) == level:
            v, d = _fc._unwrap_batched(t, level)
            values.append(v)
            dims.append(d)
        else:
            values.append(t)
            dims.append(None)
    batched = any(d is not None for d in dims)
    if mode == "same" and batched:
        raise RuntimeError(_SAME_BATCHED)
    # Below the vmap mode key (as torch's random batching rules run); arguments batched at an outer vmap
    # level stay batched and are handled by that level.
    with torch._C._ExcludeDispatchKeyGuard(torch._C.DispatchKeySet(torch._C.DispatchKey.FuncTorchVmapMode)):
        if mode == "same":
            return op(*values, *rest)
        # "different": one draw per element of (batch, *shape), from one call.
        if out_dim == 0:  # elementwise samplers (and the Dirichlet's last dimension): batch first
            args = _elementwise_args(dims, values)
            shape = torch.broadcast_shapes(*(a.shape[1:] if d is not None else a.shape for a, d in zip(args, dims)))
            args = [a.expand(size, *shape) for a in args]
        else:  # the copulas: `like` gives only the shape, the batch becomes its first dimension
            args = [_to_front(v, d) if d is not None else v.unsqueeze(0).expand(size, *v.shape)
                    for v, d in zip(values, dims)]
        out = op(*args, *rest)
    return _fc._add_batch_dim(out, out_dim, level)


def _register_sampler(name, n_tensors, out_dim=0):
    op = getattr(_ops, name).default

    def kernel(*args, **kwargs):
        tensors, rest = list(args[:n_tensors]), list(args[n_tensors:])
        return _sampler_call(op, name, tensors, rest, out_dim)

    _LIB.impl(name, kernel, "FuncTorchVmapMode")
    # A batched parameter reaches the batched key first when the sampler is called inside a transform
    # other than vmap at the top; the same body applies.
    _LIB.impl(name, lambda *args, **kwargs: kernel(*args, **kwargs), "FuncTorchBatched")


_ELEMENTWISE = ("gammainc", "gammaincc", "gammainc_grad_a", "standard_gamma_grad", "log_standard_gamma_grad",
                "gammaincinv", "gammainc_grad_aa", "standard_gamma_grad_dalpha", "log_standard_gamma_grad_dalpha",
                "betainc", "betaincc", "betainc_grads", "standard_beta_grad", "betainc_grads2", "standard_beta_grad_d2",
                "betaincinv",
                "sigmoid_difference", "dirichlet_grad", "vonmises_cdf", "vonmises_cdf_grad_concentration",
                "vonmises_grad", "vonmises_shift_wrap", "vonmises_cdf_grad_kk", "vonmises_grad_dconcentration",
                "bivariate_normal_cdf", "dirichlet_copula_rho",
                "gaussian_copula_rho", "truncated_normal_icdf", "truncated_normal_backward")
_SAMPLERS = {"standard_gamma": (1, 0), "log_standard_gamma": (1, 0), "standard_beta": (2, 0),
             "vonmises_sample": (1, 0), "standard_dirichlet": (1, 0), "dirichlet_copula": (1, 1),
             "gaussian_copula": (1, 1), "vmf_sample_u": (1, 0), "vmf_noise": (1, 0)}
# von Mises-Fisher: elementwise in the tensors, with the int d after them.
_VMF_ELEMENTWISE = ("vmf_grad_u", "vmf_grad_u_dkappa", "vmf_cdf_u", "vmf_moments", "vmf_central_moment")
# vmf_direction: row-wise in the leading dimensions, with the event dimension last in every argument


def _vmf_lead_aligned(in_dims, args):
    """vmf_direction's arguments with the vmap dimension first and their leading (batch) ranks aligned: each
    argument has one trailing event dimension, which never broadcasts against the others'."""
    args = [_to_front(a, d) if d is not None else a for a, d in zip(args, in_dims)]
    rank = max(a.dim() - 1 - (d is not None) for a, d in zip(args, in_dims))
    out = []
    for a, d in zip(args, in_dims):
        if d is not None:
            pad = rank - (a.dim() - 2)
            if pad:
                a = a.reshape(a.shape[:1] + (1,) * pad + a.shape[1:])
        out.append(a)
    return out


def _vmf_direction_rule(info, in_dims, loc, u, noise):
    return _ops.vmf_direction(*_vmf_lead_aligned(in_dims, (loc, u, noise))), 0


def _vmf_direction_backward_rule(info, in_dims, grad, loc, u, noise):
    # the fused backward takes grad in the output's shape: expand everything to the batched output's leading shape
    args = _vmf_lead_aligned(in_dims, (grad, loc, u, noise))
    lead = torch.broadcast_shapes(*(a.shape[:-1] if d is not None else (1,) + a.shape[:-1]
                                    for a, d in zip(args, in_dims)))
    lead = (info.batch_size,) + tuple(lead[1:])
    args = [a.expand(*lead, a.shape[-1]) for a in args]
    return _ops.vmf_direction_backward(*args), (0, 0, 0)


_MIXTURES = ("mixture_shared_cov", "mixture_diag_normals", "mixture_gaussian_scale", "mixture_discrete_gaussian_scale")

for _name in _ELEMENTWISE:
    torch.library.register_vmap(f"gradkern::{_name}", _elementwise_rule(getattr(_ops, _name)))
for _name, (_n, _dim) in _SAMPLERS.items():
    _register_sampler(_name, _n, _dim)
torch.library.register_vmap("gradkern::chi2_reflect", _chi2_reflect_rule)
for _name in _VMF_ELEMENTWISE:
    torch.library.register_vmap(f"gradkern::{_name}", _elementwise_rule(getattr(_ops, _name)))
torch.library.register_vmap("gradkern::vmf_direction", _vmf_direction_rule)
torch.library.register_vmap("gradkern::vmf_direction_backward", _vmf_direction_backward_rule)
torch.library.register_vmap("gradkern::antithetic_construction", _antithetic_construction_rule)
torch.library.register_vmap("gradkern::antithetic_normal_standardized", _antithetic_standardized_rule)
for _stem in _MIXTURES:
    torch.library.register_vmap(f"gradkern::{_stem}_rsample", _mixture_rule(getattr(_ops, f"{_stem}_rsample"), 2, False))
    torch.library.register_vmap(f"gradkern::{_stem}_backward", _mixture_rule(getattr(_ops, f"{_stem}_backward"), 2, True))

# Every op with tensor arguments has a rule (tests/test_autodiff.py checks the list against the schemas).
BATCHED_OPS = frozenset(_ELEMENTWISE) | frozenset(_VMF_ELEMENTWISE) | {"vmf_direction", "vmf_direction_backward"} | frozenset(_SAMPLERS) | {"chi2_reflect", "antithetic_construction",
                                                                "antithetic_normal_standardized"} | {
    f"{s}_{k}" for s in _MIXTURES for k in ("rsample", "backward")}
