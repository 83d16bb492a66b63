"""Small helpers shared by the Python wrappers."""
import math
import sys
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


def expand_to(t, shape):
    """``t`` expanded to ``shape``, or ``t`` itself where it already has it (each view is an autograd node on the
    backward path, about a microsecond per small call)."""
    return t if t.shape == shape else t.expand(shape)


def sum_to_shape(grad, shape):
    """Reduce a broadcast gradient back to an input's shape."""
    if grad is None or grad.shape == shape:
        return grad
    return grad.sum_to_size(shape) if len(shape) > 0 else grad.sum()


def fake_op_schema():
    """(op name, argument names) of the gradkern operator whose fake kernel is running, for error
    messages: under FakeTensorMode from torch.library's context, on meta tensors from the frame of
    torch's meta-kernel wrapper; ("<gradkern op>", None) where neither is found."""
    op = None
    try:
        op = getattr(torch._library.fake_impl.global_ctx_getter(), "_op", None)
    except Exception:  # meta tensors: the context getter raises by design
        pass
    if op is None:
        frame = sys._getframe(1)
        for _ in range(16):
            if frame is None:
                break
            qualname = frame.f_locals.get("qualname") if frame.f_code.co_name == "meta_kernel" else None
            if isinstance(qualname, str) and "::" in qualname:
                ns, name = qualname.split("::", 1)
                try:
                    op = getattr(getattr(torch.ops, ns), name.split(".")[0]).default
                except (AttributeError, RuntimeError):
                    op = None
                break
            frame = frame.f_back
    if op is None:
        return "<gradkern op>", None
    schema = op._schema
    return schema.name.split("::")[-1], [a.name for a in schema.arguments]


def _is_cpu_scalar(t):
    return t.dim() == 0 and t.device.type == "cpu"


def check_fake_elementwise(tensors, names=None):
    """The checks of gradkern's elementwise kernels (csrc/ops/tensor_checks.h) for their fake kernels:
    floating tensors of one dtype on one device, where a 0-dim CPU tensor combines with any device (as
    in torch's binary ops). Raises RuntimeError naming the op and the arguments, as the real kernels do;
    returns the output device."""
    def describe():
        op, schema_names = fake_op_schema()
        arg_names = list(names or schema_names or [f"input{i}" for i in range(len(tensors))])[:len(tensors)]
        return op, arg_names

    for i, t in enumerate(tensors):
        if not t.is_floating_point():
            op, n = describe()
            raise RuntimeError(f"gradkern.{op}: {n[i]} must be a floating point tensor, got {t.dtype}")
    if any(t.dtype != tensors[0].dtype for t in tensors):
        op, n = describe()
        got = " and ".join(f"{name}: {t.dtype}" for name, t in zip(n, tensors))
        raise RuntimeError(f"gradkern.{op}: {_join(n)} must have the same dtype, got {got}")
    devices = {t.device for t in tensors if not _is_cpu_scalar(t)}
    if len(devices) > 1:
        op, n = describe()
        got = _join([f"{name} on {t.device}" for name, t in zip(n, tensors)])
        raise RuntimeError(f"gradkern.{op}: {_join(n)} must be on the same device, got {got} "
                           "(only 0-dim CPU tensors combine with tensors on another device)")
    return devices.pop() if devices else tensors[0].device


def _join(words):
    words = list(words)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def broadcast_fake(a, b):
    """Output of a broadcasting elementwise op, for fake (meta) kernels, after the real kernels' checks
    (:func:`check_fake_elementwise`): the broadcast shape, on the common device."""
    device = check_fake_elementwise((a, b))
    shape = torch.broadcast_shapes(a.shape, b.shape)
    return a.new_empty(shape, dtype=a.dtype, device=device)


def log_gamma_density(a, x):
    """log q(x) of the Gamma(a, 1) density, ``a`` a tensor or a number; xlogy keeps x = 0, a = 1 exact."""
    lgamma_a = math.lgamma(a) if isinstance(a, Number) else torch.lgamma(a)
    return torch.special.xlogy(a - 1, x) - x - lgamma_a
