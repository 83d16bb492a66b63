"""Pieces shared by the distribution classes."""
import copy

import torch
import torch.distributions as td


class GeneratorSampleMixin:
    """``sample(sample_shape=(), generator=None)``: :meth:`rsample` without gradient, passing
    ``generator`` (a :class:`torch.Generator` on the parameters' device) through to gradkern's sampler,
    so a seeded generator reproduces the draw without touching the global RNG state."""

    def sample(self, sample_shape=torch.Size(), generator=None):
        """Samples of shape ``sample_shape + batch_shape + event_shape`` from the same sampler as
        :meth:`rsample`, without gradient."""
        # detach() too: no_grad stops reverse mode only, and a sample has no forward-mode tangent either.
        with torch.no_grad():
            return self.rsample(sample_shape, generator=generator).detach()


class DeepcopyMixin:
    """``copy.deepcopy`` that also copies parameters that are not graph leaves, which torch's
    ``Tensor.__deepcopy__`` refuses: the expanded views that ``expand`` stores and the tensors torch's
    constructors derive from the arguments (``0.5 * df`` in Chi2, the stacked concentrations of Beta).

    A view of a leaf becomes the same view of the leaf's copy (so an expanded copy still shares one
    parameter); any other non-leaf becomes a new leaf holding its value with ``requires_grad=True``,
    which is what deep-copying a leaf gives: an independent parameter. Everything else is deep-copied
    as usual, nested distributions included."""

    def __deepcopy__(self, memo):
        return _copy_distribution(self, memo)


def _copy_distribution(d, memo):
    new = type(d).__new__(type(d))
    memo[id(d)] = new
    for key, value in d.__dict__.items():
        new.__dict__[key] = _copy_value(value, memo)
    return new


def _copy_value(value, memo):
    if id(value) in memo:
        return memo[id(value)]
    if isinstance(value, torch.Tensor) and not value.is_leaf:
        base = value._base
        if base is not None and base.is_leaf:
            out = _copy_value(base, memo).as_strided(value.size(), value.stride(), value.storage_offset())
        else:
            out = value.detach().clone().requires_grad_(True)
    elif isinstance(value, td.Distribution) and not hasattr(type(value), "__deepcopy__"):
        return _copy_distribution(value, memo)
    elif type(value) in (dict, list, tuple):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        copied = {k: _copy_value(v, memo) for k, v in items}
        out = copied if isinstance(value, dict) else type(value)(copied[i] for i in range(len(value)))
    else:
        return copy.deepcopy(value, memo)
    memo[id(value)] = out
    return out
