"""The public wrappers call their op's C++ callable directly in eager mode (gradkern/_fast.py, issue 21).
Nothing an OpOverload call does may be lost: torch.compile(fullgraph=True) still captures the op (dynamo
takes the OpOverload branch), and __torch_function__ of subclasses and of modes still sees the call."""
import pytest
import torch
from torch._dynamo.testing import CompileCounterWithBackend
from torch.overrides import TorchFunctionMode

import gradkern

FNS = {
    "gammainc": (gradkern.gammainc, torch.ops.gradkern.gammainc.default),
    "gammaincc": (gradkern.gammaincc, torch.ops.gradkern.gammaincc.default),
    "gammaincinv": (gradkern.gammaincinv, torch.ops.gradkern.gammaincinv.default),
    "standard_gamma_grad": (gradkern.standard_gamma_grad, torch.ops.gradkern.standard_gamma_grad.default),
    "log_standard_gamma_grad": (gradkern.log_standard_gamma_grad,
                                torch.ops.gradkern.log_standard_gamma_grad.default),
}


def _args(name):
    a = torch.tensor([0.3, 2.0, 7.5], dtype=torch.float64)
    if name == "gammaincinv":
        return a, torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    if name == "log_standard_gamma_grad":
        return a, torch.tensor([-2.0, 0.5, 2.0], dtype=torch.float64)
    return a, torch.tensor([0.2, 1.5, 9.0], dtype=torch.float64)


@pytest.mark.parametrize("name", sorted(FNS))
def test_compile_fullgraph_captures_the_op(name):
    fn, _ = FNS[name]
    torch._dynamo.reset()
    counter = CompileCounterWithBackend("aot_eager")
    compiled = torch.compile(lambda a, b: fn(a, b) * 2, backend=counter, fullgraph=True)
    a, b = _args(name)
    torch.testing.assert_close(compiled(a, b), fn(a, b) * 2, rtol=0, atol=0)
    assert counter.frame_count == 1 and counter.op_count >= 2


class _Sub(torch.Tensor):
    seen = []

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        _Sub.seen.append(func)
        return super().__torch_function__(func, types, args, kwargs or {})


class _Mode(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.seen = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.seen.append(func)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("name", sorted(FNS))
def test_torch_function_of_subclasses_and_modes_sees_the_op(name):
    fn, op = FNS[name]
    a, b = _args(name)
    _Sub.seen = []
    out = fn(a.as_subclass(_Sub), b)
    assert type(out) is _Sub and op in _Sub.seen
    with _Mode() as mode:
        fn(a, b)
    assert op in mode.seen
