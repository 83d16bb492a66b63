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


@pytest.mark.parametrize("name", sorted(FNS))
def test_fast_path_agrees_with_the_op_in_every_case_it_declines_or_takes(name):
    """Same values and gradients as the OpOverload call: same dtype (fast path), mixed dtypes and a Python
    number and integer tensors (declined: promoted as before), and under
    torch.func transforms (the dispatcher's functorch keys)."""
    fn, op = FNS[name]
    a, b = _args(name)
    torch.testing.assert_close(fn(a, b), op(a, b), rtol=0, atol=0)
    torch.testing.assert_close(fn(a.float(), b), op(a.float().double(), b), rtol=0, atol=0)  # promoted
    torch.testing.assert_close(fn(a, float(b[1])), op(a, b[1].expand(3)), rtol=0, atol=0)
    i = torch.tensor([1, 2, 3])  # integers promote to the default dtype, as in torch.special
    j = i / 4 if name == "gammaincinv" else i
    torch.testing.assert_close(fn(i, j), op(i.float(), j.float()), rtol=0, atol=0)
    ag = a.clone().requires_grad_()
    bg = b.clone().requires_grad_()
    g_fast = torch.autograd.grad(fn(ag, bg).sum(), (ag, bg), allow_unused=True)
    g_op = torch.autograd.grad(op(ag, bg).sum(), (ag, bg), allow_unused=True)
    for u, v in zip(g_fast, g_op):
        assert (u is None) == (v is None)
        if u is not None:
            torch.testing.assert_close(u, v, rtol=0, atol=0)
    per_sample = torch.func.vmap(torch.func.grad(lambda s, t: fn(s, t)), in_dims=(0, 0))(a, b)
    torch.testing.assert_close(per_sample, g_op[0], rtol=0, atol=0)


def test_gamma_rsample_fast_path_keeps_seeds_gradients_compile_and_torch_function():
    """gamma_rsample(concentration) without a rate takes csrc/schemas.cpp's fast_standard_gamma: the same
    draws for the same generator state as the op, the same implicit gradient, fullgraph compile, and
    __torch_function__ of subclasses still sees the op."""
    alpha = torch.tensor([0.3, 2.0, 7.5], dtype=torch.float64)
    op = torch.ops.gradkern.standard_gamma.default
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    torch.testing.assert_close(gradkern.gamma_rsample(alpha, generator=g1), op(alpha, g2), rtol=0, atol=0)
    torch.manual_seed(3)
    z1 = gradkern.gamma_rsample(alpha)
    torch.manual_seed(3)
    torch.testing.assert_close(z1, op(alpha, None), rtol=0, atol=0)
    a = alpha.clone().requires_grad_()
    z = gradkern.gamma_rsample(a, generator=torch.Generator().manual_seed(1))
    (g,) = torch.autograd.grad(z.sum(), a)
    torch.testing.assert_close(g, gradkern.standard_gamma_grad(alpha, z.detach()), rtol=0, atol=0)
    torch._dynamo.reset()
    counter = CompileCounterWithBackend("aot_eager")
    compiled = torch.compile(lambda t: gradkern.gamma_rsample(t) * 2, backend=counter, fullgraph=True)
    assert compiled(alpha).shape == (3,) and counter.frame_count == 1
    _Sub.seen = []
    out = gradkern.gamma_rsample(alpha.as_subclass(_Sub))
    assert type(out) is _Sub and op in _Sub.seen


SAMPLERS = {  # wrapper call, the op it must reach
    "dirichlet_rsample": (lambda t, g=None: gradkern.dirichlet_rsample(t.view(2, 2), generator=g),
                          torch.ops.gradkern.standard_dirichlet.default),
    "log_dirichlet_rsample": (lambda t, g=None: gradkern.log_dirichlet_rsample(t.view(2, 2), generator=g),
                              torch.ops.gradkern.log_standard_gamma.default),
    "beta_rsample": (lambda t, g=None: gradkern.beta_rsample(t, t + 1, generator=g),
                     torch.ops.gradkern.standard_beta.default),
    "chi2_rsample": (lambda t, g=None: gradkern.chi2_rsample(t, generator=g),
                     torch.ops.gradkern.standard_gamma.default),
    "student_t_rsample": (lambda t, g=None: gradkern.student_t_rsample(t, generator=g),
                          torch.ops.gradkern.log_standard_gamma.default),
    "vonmises_rsample": (lambda t, g=None: gradkern.vonmises_rsample(torch.zeros((), dtype=t.dtype), t, generator=g),
                         torch.ops.gradkern.vonmises_sample.default),
}


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_samplers_on_raw_callables_keep_compile_seeds_and_modes(name):
    """The samplers call their ops' C++ callables in eager mode (no OpOverloadPacket frame, no same-shape
    expand): compile(fullgraph) still captures the op, seeded draws repeat, a mode still sees the op, and
    gradients flow."""
    fn, op = SAMPLERS[name]
    t = torch.tensor([0.7, 2.0, 3.5, 9.0], dtype=torch.float64)
    torch._dynamo.reset()
    counter = CompileCounterWithBackend("aot_eager")
    compiled = torch.compile(lambda x: fn(x) * 2, backend=counter, fullgraph=True)
    assert torch.isfinite(compiled(t)).all() and counter.frame_count == 1
    a = fn(t, torch.Generator().manual_seed(3))
    b = fn(t, torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b, rtol=0, atol=0)

    seen = []

    class Mode(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            seen.append(func)
            return func(*args, **(kwargs or {}))

    with Mode():
        fn(t)
    assert op in seen
    tr = t.clone().requires_grad_()
    out = fn(tr)
    (out * torch.arange(1.0, out.numel() + 1, dtype=out.dtype).view(out.shape)).sum().backward()  # not sum(): simplex
    assert torch.isfinite(tr.grad).all() and (tr.grad != 0).any()
