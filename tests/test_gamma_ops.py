"""Gamma-family ops: gradients (gradcheck), half precision, a sanity check against torch.special, edge
values, bad input and errors. The op contracts (opcheck, torch.compile, empty / non-contiguous / expanded
inputs, thread count, CPU/CUDA agreement) are in test_contracts.py."""
import math

import pytest
import torch

import gradkern
from conftest import DEVICES

OPS = torch.ops.gradkern


def sample_inputs(name, device, dtype=torch.float64, requires_grad=False):
    """(a, second argument) pairs that exercise every branch of the core."""
    g = torch.Generator().manual_seed(0)
    # x = 0 is the edge of the domain, so a finite difference needs x well above its step: small a
    # (whose quantiles sit near 0) are covered by the accuracy tests instead.
    a = torch.tensor([0.3, 1.0, 2.5, 17.0, 150.0, 3000.0], dtype=dtype)
    u = torch.rand(6, generator=g, dtype=dtype) * 0.75 + 0.2
    x = gradkern.gammaincinv(a, u)
    if name == "gammaincinv":
        second = u
    elif name == "log_standard_gamma_grad":
        second = torch.log(x)
    else:
        second = x
    a = a.to(device).requires_grad_(requires_grad)
    second = second.to(device).requires_grad_(requires_grad)
    return a, second


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["gammainc", "gammaincc", "gammaincinv"])
def test_gradcheck(name, device):
    a, x = sample_inputs(name, device, requires_grad=True)
    fn = getattr(gradkern, name)
    # Keep x away from the kinks of the finite difference (x=0) and a away from its domain edge.
    assert torch.autograd.gradcheck(fn, (a, x), eps=1e-7, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_gradcheck_broadcast(device):
    a = torch.tensor([[0.7], [4.0]], dtype=torch.float64, device=device, requires_grad=True)
    x = torch.tensor([0.2, 1.3, 6.0], dtype=torch.float64, device=device, requires_grad=True)
    assert torch.autograd.gradcheck(gradkern.gammainc, (a, x), eps=1e-7, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_computed_in_float(dtype):
    a = torch.tensor([0.5, 2.0, 10.0])
    x = torch.tensor([0.4, 1.7, 9.0])
    out = gradkern.gammainc(a.to(dtype), x.to(dtype))
    assert out.dtype == dtype
    ref = gradkern.gammainc(a.to(dtype).float(), x.to(dtype).float()).to(dtype)
    torch.testing.assert_close(out, ref, rtol=0, atol=0)


def test_against_torch_special_gammainc():
    # A sanity check against torch's implementation, not a ground truth: torch's igamma is off by ~1e-10
    # relative at a = 90 (mpmath: P(90, 100) = 0.85365382530126720508..., gradkern 0.8536538253012672,
    # torch 0.8536538251880801), hence the tolerance; mpmath is the reference in test_gamma_accuracy.py.
    a = torch.tensor([0.01, 0.5, 1.0, 7.0, 90.0], dtype=torch.float64)
    x = torch.tensor([0.001, 0.3, 2.0, 6.5, 100.0], dtype=torch.float64)
    torch.testing.assert_close(gradkern.gammainc(a, x), torch.special.gammainc(a, x), rtol=1e-9, atol=1e-15)
    torch.testing.assert_close(gradkern.gammaincc(a, x), torch.special.gammaincc(a, x), rtol=1e-9, atol=1e-15)
    assert abs(gradkern.gammainc(torch.tensor(90.0, dtype=torch.float64),
                                 torch.tensor(100.0, dtype=torch.float64)).item()
               - 0.85365382530126720508) < 2e-16


@pytest.mark.parametrize("device", DEVICES)
def test_bad_input_gives_nan(device):
    nan, inf = math.nan, math.inf
    a = torch.tensor([-1.0, 0.0, nan, 1.0, 1.0, inf], dtype=torch.float64, device=device)
    x = torch.tensor([1.0, 1.0, 1.0, -0.5, nan, 1.0], dtype=torch.float64, device=device)
    for name in ("gammainc", "gammaincc", "gammainc_grad_a", "standard_gamma_grad"):
        out = getattr(OPS, name)(a, x)
        assert torch.isnan(out).all(), (name, out)
    p = torch.tensor([0.5, 0.5, 0.5, -0.1, 1.5, nan], dtype=torch.float64, device=device)
    assert torch.isnan(OPS.gammaincinv(torch.tensor([-1.0, 0.0, nan, 1.0, 1.0, 1.0], dtype=torch.float64,
                                                    device=device), p)).all()


def test_edge_values():
    a = torch.tensor([0.5, 3.0], dtype=torch.float64)
    zero, inf = torch.zeros(2, dtype=torch.float64), torch.full((2,), math.inf, dtype=torch.float64)
    assert (gradkern.gammainc(a, zero) == 0).all() and (gradkern.gammaincc(a, zero) == 1).all()
    assert (gradkern.gammainc(a, inf) == 1).all() and (gradkern.gammaincc(a, inf) == 0).all()
    assert (gradkern.gammaincinv(a, zero) == 0).all()
    assert torch.isinf(gradkern.gammaincinv(a, torch.ones(2, dtype=torch.float64))).all()
    assert (gradkern.standard_gamma_grad(a, zero) == 0).all()


def test_dtype_promotion_and_type_errors():
    # The functions promote as torch.special does (float32 with float64 gives float64, integers the
    # default dtype); the ops themselves take one dtype.
    a32 = torch.tensor([0.5, 2.0, 7.0])
    x64 = torch.tensor([0.3, 2.5, 4.0], dtype=torch.float64)
    out = gradkern.gammainc(a32, x64)
    ref = torch.special.gammainc(a32, x64)
    assert out.dtype == ref.dtype == torch.float64
    torch.testing.assert_close(out, ref)
    # Integer tensors are promoted to the default dtype (torch.special.gammaincc raises for them).
    ints = gradkern.gammaincc(torch.tensor([1, 2]), torch.tensor([1, 3]))
    assert ints.dtype == torch.get_default_dtype()
    torch.testing.assert_close(ints, torch.special.gammaincc(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 3.0])))
    a = a32.clone().requires_grad_()
    gradkern.gammainc(a, x64).sum().backward()  # the gradient comes back in the argument's dtype
    assert a.grad.dtype == torch.float32 and a.grad.isfinite().all()
    with pytest.raises(RuntimeError, match=r"a and x must have the same dtype"):
        OPS.gammainc(a32, x64)
    with pytest.raises(RuntimeError, match=r"x must be a floating point tensor"):
        OPS.gammainc(a32, torch.ones(3, dtype=torch.long))
    with pytest.raises(TypeError, match=r"gradkern.gammainc: x must be a Tensor or a real number"):
        gradkern.gammainc(a32, "1.0")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_device_mismatch_error():
    # The public function names itself (gradkern/_promote.py); the op, called directly, names the arguments.
    with pytest.raises(RuntimeError, match=r"gradkern.gammainc: expected all tensors on one device"):
        gradkern.gammainc(torch.ones(3, device="cuda"), torch.ones(3))
    with pytest.raises(RuntimeError, match=r"a and x must be on the same device"):
        torch.ops.gradkern.gammainc(torch.ones(3, device="cuda"), torch.ones(3))


def test_python_number_arguments():
    out = gradkern.gammainc(2.0, torch.tensor([1.0, 3.0], dtype=torch.float64))
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, torch.special.gammainc(torch.tensor(2.0, dtype=torch.float64),
                                                           torch.tensor([1.0, 3.0], dtype=torch.float64)))
