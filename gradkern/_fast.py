"""Calling an op without torch's Python-level OpOverload.__call__ frame (issue 21).

``OpOverload.__call__`` is ``return self._op(*args, **kwargs)``: the C++ callable ``_op`` does everything
(argument parsing, ``__torch_function__`` of subclasses and modes, the dispatcher with its autograd,
functorch, fake and dispatch-mode keys), and the Python frame around it costs about 0.4 us per call, a
third of the op's whole cost at 10 elements. The wrappers call ``_op`` directly in eager mode. Dynamo does
not trace ``_op`` (it knows OpOverload objects), so while torch.compile traces, ``is_compiling()`` is true
and the wrappers call the OpOverload itself; dynamo folds the test away.
"""
import torch

is_compiling = torch.compiler.is_compiling


def raw(overload):
    """The C++ callable behind ``overload`` (the OpOverload itself if a torch version has none)."""
    return getattr(overload, "_op", overload)
