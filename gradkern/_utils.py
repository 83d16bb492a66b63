"""Small helpers shared by the Python wrappers."""
import math
from numbers import Number

import torch


def as_tensor_pair(op, name_a, a, name_b, b):
    """Turn Python numbers into tensors matching the other argument (dtype and device), as torch's
    binary special functions do; tensors are passed through unchanged (the op checks them)."""
    a_t, b_t = isinstance(a, torch.Tensor), isinstance(b, torch.Tensor)
    if not a_t and not isinstance(a, Number):
        raise TypeError(f"gradkern.{op}: {name_a} must be a Tensor or a number, got {type(a).__name__}")
    if not b_t and not isinstance(b, Number):
        raise TypeError(f"gradkern.{op}: {name_b} must be a Tensor or a number, got {type(b).__name__}")
    if a_t and not b_t:
        b = torch.tensor(b, dtype=a.dtype if a.is_floating_point() else torch.get_default_dtype(), device=a.device)
    elif b_t and not a_t:
        a = torch.tensor(a, dtype=b.dtype if b.is_floating_point() else torch.get_default_dtype(), device=b.device)
    elif not a_t and not b_t:
        a = torch.tensor(a, dtype=torch.get_default_dtype())
        b = torch.tensor(b, dtype=torch.get_default_dtype())
    return a, b


def as_float_tensor(fn, name, value, like=None):
    """A floating tensor argument, or a Python number turned into one with the dtype and device of `like`
    (or the default dtype). Errors name the function and the argument."""
    if isinstance(value, torch.Tensor):
        if not value.is_floating_point():
            raise TypeError(f"gradkern.{fn}: {name} must be a floating point tensor, got {value.dtype}")
        return value
    if isinstance(value, Number) and not isinstance(value, bool):
        dtype = like.dtype if like is not None else torch.get_default_dtype()
        device = like.device if like is not None else None
        return torch.tensor(float(value), dtype=dtype, device=device)
    raise TypeError(f"gradkern.{fn}: {name} must be a Tensor or a number, got {type(value).__name__}")


def check_same(fn, named):
    """All (name, tensor) pairs share the first one's dtype and device."""
    (n0, t0), *rest = named
    for n, t in rest:
        if t.dtype != t0.dtype:
            raise TypeError(f"gradkern.{fn}: {n} has dtype {t.dtype} but {n0} has dtype {t0.dtype}; "
                            "pass tensors of one floating dtype")
        if t.device != t0.device:
            raise ValueError(f"gradkern.{fn}: {n} is on {t.device} but {n0} is on {t0.device}")


def sum_to_shape(grad, shape):
    """Reduce a broadcast gradient back to an input's shape."""
    if grad is None or grad.shape == shape:
        return grad
    return grad.sum_to_size(shape) if len(shape) > 0 else grad.sum()


def broadcast_fake(a, b):
    """Output of a broadcasting elementwise op, for fake (meta) kernels."""
    shape = torch.broadcast_shapes(a.shape, b.shape)
    device = a.device if a.dim() > 0 or b.dim() == 0 else b.device
    if a.dim() == 0 and a.device.type == "cpu" and b.device.type != "cpu":
        device = b.device
    return a.new_empty(shape, dtype=a.dtype, device=device)


def not_differentiable(op):
    def backward(ctx, *grads):
        raise RuntimeError(
            f"gradkern.{op} is not differentiable (it is itself a derivative or a sampler's noise); "
            "detach its inputs or open an issue if you need higher-order gradients")
    return backward


def log_gamma_density(a, x):
    """log q(x) of the Gamma(a, 1) density, ``a`` a tensor or a number; xlogy keeps x = 0, a = 1 exact."""
    lgamma_a = math.lgamma(a) if isinstance(a, Number) else torch.lgamma(a)
    return torch.special.xlogy(a - 1, x) - x - lgamma_a
