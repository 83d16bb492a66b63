"""Small helpers shared by the Python wrappers."""
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
