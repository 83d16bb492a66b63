"""torch's type promotion for the Python wrappers: several arguments (Tensors or Python numbers) to
tensors of one floating dtype on one device.

The rule is torch's: ``torch.result_type`` over the arguments (a Python number takes the tensors'
dtype, a 0-dim tensor does not up-cast a dimensioned one of the same category), integer and bool
results promoted to the default floating dtype as ``torch.special`` does, complex refused. Devices
follow torch's binary ops: CPU 0-dim tensors and numbers join any device, other tensors must share
one. Errors name the public function and the argument.
"""
from numbers import Number

import torch


def _check_kind(fn, name, value):
    if isinstance(value, torch.Tensor):
        if value.is_complex():
            raise TypeError(f"gradkern.{fn}: {name} must be a real tensor, got {value.dtype}")
        return
    if isinstance(value, complex) or not isinstance(value, Number):
        raise TypeError(f"gradkern.{fn}: {name} must be a Tensor or a real number, got {type(value).__name__}")


def _category(dtype):
    return 2 if dtype.is_floating_point else (0 if dtype == torch.bool else 1)


def _join_float(a, b):
    # torch.promote_types on floating dtypes, written out so that torch.compile traces it as constants
    # (torch.result_type returns a non-Tensor, which dynamo cannot put in a graph).
    if a == b:
        return a
    if torch.float64 in (a, b):
        return torch.float64
    return torch.float32  # float32 with a 16-bit type, or float16 with bfloat16


def _join(tier):
    cat, dtype = -1, None
    for dt in tier:
        c = _category(dt)
        if c > cat:
            cat, dtype = c, dt
        elif c == cat == 2:
            dtype = _join_float(dtype, dt)
    return cat, dtype


def _result_dtype(values):
    """torch.result_type over tensors and numbers, then integer / bool results to the default dtype."""
    dims = [v.dtype for v in values if isinstance(v, torch.Tensor) and v.dim() > 0]
    zeros = [v.dtype for v in values if isinstance(v, torch.Tensor) and v.dim() == 0]
    cat, dtype = _join(dims)
    zcat, zdtype = _join(zeros)
    if zcat > cat:  # a 0-dim tensor up-casts only across categories (or when nothing has dimensions)
        cat, dtype = zcat, zdtype
    if any(isinstance(v, float) for v in values if not isinstance(v, torch.Tensor)) and cat < 2:
        cat, dtype = 2, torch.get_default_dtype()
    return dtype if cat == 2 else torch.get_default_dtype()


def _device(fn, named):
    device, owner = None, None
    for name, v in named:
        if not isinstance(v, torch.Tensor) or (v.dim() == 0 and v.device.type == "cpu"):
            continue
        if device is None:
            device, owner = v.device, name
        elif v.device != device:
            raise RuntimeError(f"gradkern.{fn}: expected all tensors on one device, got {owner} on {device} "
                               f"and {name} on {v.device}")
    if device is None:
        cpu0 = [v.device for _, v in named if isinstance(v, torch.Tensor)]
        device = cpu0[0] if cpu0 else torch.device("cpu")
    return device


def _forward_mode_active(values):
    """True under torch.func.jvp / jacfwd, or inside torch.autograd.forward_ad.dual_level with a dual
    input: modes whose tangents gradkern's ops do not propagate yet."""
    get_stack = getattr(torch._C._functorch, "get_interpreter_stack", None)
    stack = get_stack() if get_stack is not None else [torch._C._functorch.peek_interpreter_stack()]
    for interp in stack or ():
        if interp is not None and interp.key() == torch._C._functorch.TransformType.Jvp:
            return True
    from torch.autograd import forward_ad

    if forward_ad._current_level >= 0:
        return any(isinstance(v, torch.Tensor) and forward_ad.unpack_dual(v).tangent is not None for v in values)
    return False


def check_reverse_mode_only(fn, values):
    """Raise instead of returning wrong (zero) tangents, for the Python-level autograd.Functions without a
    forward-mode formula (implicit_rsample); gradkern's ops have theirs (csrc/autograd.cpp)."""
    if torch.compiler.is_compiling():
        return
    if _forward_mode_active(values):
        raise NotImplementedError(
            f"gradkern.{fn}: forward-mode differentiation (torch.func.jvp / jacfwd, "
            "torch.autograd.forward_ad) is not supported yet (its tangents would be wrong); use reverse mode "
            "(loss.backward(), torch.autograd.grad, torch.func.vjp)")


def promote(fn, *named):
    """``named``: (name, value) pairs. Returns the values as tensors of the common floating dtype on the
    common device, in order (tensors already right are returned as they are)."""
    # Fast path, the common call: tensors of one floating dtype on one device need nothing.
    first = named[0][1]
    if isinstance(first, torch.Tensor) and first.dtype.is_floating_point:
        dtype, device = first.dtype, first.device
        for _, v in named[1:]:
            if not (isinstance(v, torch.Tensor) and v.dtype == dtype and v.device == device):
                break
        else:
            return [v for _, v in named]
    for name, v in named:
        _check_kind(fn, name, v)
    values = [v for _, v in named]
    dtype = _result_dtype(values)
    device = _device(fn, named)
    out = []
    for v in values:
        if isinstance(v, torch.Tensor):
            out.append(v if (v.dtype == dtype and v.device == device) else v.to(device=device, dtype=dtype))
        else:
            out.append(torch.tensor(float(v), dtype=dtype, device=device))
    return out


# Fixed-arity forms of promote for the wrappers' common calls. Their fast path (tensors of one floating
# dtype on one device: returned as they are) is a straight-line check without building (name, value)
# pairs or a varargs tuple (issue 21: 0.56 vs 1.16 us for two 10-element tensors in a timeit loop on the
# 2-core dev host, below bench/overhead.py's noise; dtypes are singletons, so `is` compares them).
# Anything else goes to promote.
def promote2(fn, name_a, a, name_b, b):
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        dtype = a.dtype
        if dtype is b.dtype and dtype.is_floating_point and a.device == b.device:
            return a, b
    return promote(fn, (name_a, a), (name_b, b))


def promote3(fn, name_a, a, name_b, b, name_c, c):
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and isinstance(c, torch.Tensor):
        dtype = a.dtype
        if (dtype is b.dtype and dtype is c.dtype and dtype.is_floating_point
                and a.device == b.device and a.device == c.device):
            return a, b, c
    return promote(fn, (name_a, a), (name_b, b), (name_c, c))
