"""Calling an op without torch's Python-level OpOverload.__call__ frame (issue 21).

``OpOverload.__call__`` is ``return self._op(*args, **kwargs)``: the C++ callable ``_op`` does everything
(argument parsing, ``__torch_function__`` of subclasses and modes, the dispatcher with its autograd,
functorch, fake and dispatch-mode keys), and the Python frame around it costs about 0.4 us per call, a
fifth of the op's whole cost at 10 elements. Wrappers on a hot path without a C++ entry point of their own
(below; gamma_rsample with sample dimensions, the distributions' Gamma sampler) call ``_op`` directly in
eager mode. Dynamo does
not trace ``_op`` (it knows OpOverload objects), so while torch.compile traces, ``is_compiling()`` is true
and the wrappers call the OpOverload itself; dynamo folds the test away.
"""
import torch

is_compiling = torch.compiler.is_compiling


def raw(overload):
    """The C++ callable behind ``overload`` (the OpOverload itself if a torch version has none)."""
    return getattr(overload, "_op", overload)


# The two-tensor special functions also have a C++ entry point of their own (csrc/schemas.cpp, fast_<op>):
# a cached dispatcher handle, as torch's C++ bindings use, which skips the schema-driven argument parsing
# of _op (another 0.3-0.5 us), with the dtype and device checks of promote2 in C++ (NotImplemented where
# promotion would change something). It bypasses __torch_function__, so the wrappers take it only for
# plain tensors (their type checked exactly: no subclass), with no torch function mode active and not while
# dynamo traces (is_compiling first, so that dynamo folds the whole test away). Everything below
# __torch_function__ (autograd, functorch's transforms, dispatch modes, fake tensors) is the dispatcher's
# and behaves as through torch.ops. The wrappers write the test inline (a helper would cost a frame):
#
#     if not is_compiling() and type(a) is Tensor and type(b) is Tensor and not tf_mode():
#         r = FAST(a, b)
#         if r is not NotImplemented:
#             return r
Tensor = torch.Tensor
tf_mode = getattr(torch._C, "_is_torch_function_mode_enabled", lambda: True)


def fast(name):
    """csrc/schemas.cpp's fast_<name>; where this build has none, a stand-in that always declines."""
    from . import _C

    return getattr(_C, "fast_" + name, lambda a, b: NotImplemented)
