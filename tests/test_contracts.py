"""Op contracts: the checks every ``torch.ops.gradkern`` operator must pass, from one table of sample inputs.

The ops are enumerated from the library itself, so an op added to csrc/schemas.cpp without an entry in
SAMPLES fails test_every_op_has_samples ("op X has no sample inputs in test_contracts.SAMPLES"), and an
entry left behind by a rename fails test_samples_name_existing_ops. Every other test is parametrised over
the same op list and derives its inputs from the samples (a random op is one with a Generator argument):

* outputs: valid-domain samples give finite outputs of the input's dtype, on its device;
* opcheck: ``torch.library.opcheck`` with its default test_utils; random ops without
  test_aot_dispatch_dynamic, which compares two calls (and two draws must differ);
* compile: ``torch.compile(fullgraph=True, backend="aot_eager")`` of a function calling the op captures
  one graph and gives the eager result bit for bit, gradients included; random ops see the global
  generator seeded the same way before both calls (compile cannot take a Generator argument). float64
  only, one ``torch._dynamo.reset()`` per sample;
* empty / 0-dim: a batch dimension cut to length 0 gives outputs of the right shape (zeros where the
  dimension is summed over); every batch dimension indexed away gives the matching element of the full
  output;
* non-contiguous / expanded: strided, transposed and stride-0 inputs, and broadcasting, give the bits of
  their contiguous (materialised) copies;
* threads: inputs grown along a batch dimension to THREAD_ELEMENTS elements give the same bits with 1
  thread as with 2 (and with the default count where it is larger);
* seeded: random ops reproduce from a seeded torch.Generator (and from torch.manual_seed), and another
  seed gives another draw;
* cuda: CPU and CUDA agree, within Sample.tol (random ops: in shape and dtype; skipped without a GPU);
* float32 and float64 throughout (compile: float64).

COMPOSITES does the same for the public functions that combine ops with torch code (the samplers,
estimators and mixture distributions): compile, seeded reproducibility, thread count, empty sizes.
What only a family proves (accuracy against mpmath, unbiasedness, distributions, bad input, edge values)
stays in the family's own test file.
"""
import functools
import math

import pytest
import torch
from torch._dynamo.testing import CompileCounterWithBackend

import gradkern
import gradkern._mixtures as M
from gradkern import antithetic, copulas, estimators
from conftest import CUDA, DEVICES, FLOAT_DTYPES

OPS = torch.ops.gradkern
THREAD_ELEMENTS = 100_000  # batch elements for the thread-count checks: several of at::parallel_for's grains


# --- the table: op name -> function(device, dtype) returning a list of Samples ----------------------------
# Valid-domain values, small sizes; several Samples per op where its arguments change what runs (shapes that
# broadcast, enum strings, k, n, the schema's defaults). Sample, ew and the builders are defined below.
SAMPLES = {
    # Gamma family (gradkern._special, gradkern._gamma)
    "gammainc": lambda device, dtype: _gamma_pair(device, dtype, "x", grad=(0, 1)),
    "gammaincc": lambda device, dtype: _gamma_pair(device, dtype, "x", grad=(0, 1)),
    "gammainc_grad_a": lambda device, dtype: _gamma_pair(device, dtype, "x"),
    "standard_gamma_grad": lambda device, dtype: _gamma_pair(device, dtype, "x"),
    "log_standard_gamma_grad": lambda device, dtype: _gamma_pair(device, dtype, "log_x"),
    "gammaincinv": lambda device, dtype: _gamma_pair(device, dtype, "p", grad=(0, 1)),
    "gammainc_grad_aa": lambda device, dtype: _gamma_pair(device, dtype, "x"),
    "standard_gamma_grad_dalpha": lambda device, dtype: _gamma_pair(device, dtype, "x"),
    "log_standard_gamma_grad_dalpha": lambda device, dtype: _gamma_pair(device, dtype, "log_x"),
    "standard_gamma": lambda device, dtype: _gamma_sampler(device, dtype),
    "log_standard_gamma": lambda device, dtype: _gamma_sampler(device, dtype),
    # Beta family (gradkern._beta)
    "betainc": lambda device, dtype: _beta_triple(device, dtype, "x", grad=(0, 1, 2)),
    "betaincc": lambda device, dtype: _beta_triple(device, dtype, "x", grad=(0, 1, 2)),
    "betainc_grads": lambda device, dtype: _beta_triple(device, dtype, "x", outputs=2),
    "standard_beta_grad": lambda device, dtype: _beta_triple(device, dtype, "x", outputs=2),
    "betainc_grads2": lambda device, dtype: _beta_triple(device, dtype, "x", outputs=3),
    "standard_beta_grad_d2": lambda device, dtype: _beta_triple(device, dtype, "x", outputs=4),
    "betaincinv": lambda device, dtype: _beta_triple(device, dtype, "p", grad=(0, 1, 2)),
    "dirichlet_grad": lambda device, dtype: _dirichlet_grad(device, dtype),
    "standard_beta": lambda device, dtype: _beta_sampler(device, dtype),
    "standard_dirichlet": lambda device, dtype: _dirichlet_sampler(device, dtype),
    "sigmoid_difference": lambda device, dtype: _sigmoid_difference(device, dtype),
    # von Mises (gradkern._vonmises)
    "vonmises_cdf": lambda device, dtype: _vonmises_pair(device, dtype, "xk", grad=(0, 1)),
    "vonmises_cdf_grad_concentration": lambda device, dtype: _vonmises_pair(device, dtype, "xk"),
    "vonmises_grad": lambda device, dtype: _vonmises_pair(device, dtype, "kx"),
    "vonmises_cdf_grad_kk": lambda device, dtype: _vonmises_pair(device, dtype, "xk"),
    "vonmises_grad_dconcentration": lambda device, dtype: _vonmises_pair(device, dtype, "kx"),
    "vonmises_sample": lambda device, dtype: _vonmises_sample(device, dtype),
    "vonmises_shift_wrap": lambda device, dtype: _vonmises_shift_wrap(device, dtype),
    # von Mises-Fisher (gradkern._vmf)
    "vmf_sample_u": lambda device, dtype: _vmf_sample(device, dtype),
    "vmf_noise": lambda device, dtype: _vmf_noise(device, dtype),
    "vmf_grad_u": lambda device, dtype: _vmf_pair(device, dtype, grad=(0, 1)),
    "vmf_grad_u_dkappa": lambda device, dtype: _vmf_pair(device, dtype, grad=(1,)),
    "vmf_cdf_u": lambda device, dtype: _vmf_pair(device, dtype, grad=(0, 1), value_first=True),
    "vmf_moments": lambda device, dtype: _vmf_moments(device, dtype),
    "vmf_central_moment": lambda device, dtype: _vmf_central_moment(device, dtype),
    "vmf_direction": lambda device, dtype: _vmf_direction(device, dtype),
    "vmf_direction_backward": lambda device, dtype: _vmf_direction_backward(device, dtype),
    # Gaussian mixtures (gradkern._mixtures)
    "mixture_shared_cov_rsample": lambda device, dtype: _mixture(device, dtype, "mixture_shared_cov", "rsample"),
    "mixture_shared_cov_backward": lambda device, dtype: _mixture(device, dtype, "mixture_shared_cov", "backward"),
    "mixture_diag_normals_rsample": lambda device, dtype: _mixture(device, dtype, "mixture_diag_normals", "rsample"),
    "mixture_diag_normals_backward": lambda device, dtype: _mixture(device, dtype, "mixture_diag_normals",
                                                                    "backward"),
    "mixture_gaussian_scale_rsample": lambda device, dtype: _mixture(device, dtype, "mixture_gaussian_scale",
                                                                     "rsample"),
    "mixture_gaussian_scale_backward": lambda device, dtype: _mixture(device, dtype, "mixture_gaussian_scale",
                                                                      "backward"),
    "mixture_discrete_gaussian_scale_rsample": lambda device, dtype: _mixture(
        device, dtype, "mixture_discrete_gaussian_scale", "rsample"),
    "mixture_discrete_gaussian_scale_backward": lambda device, dtype: _mixture(
        device, dtype, "mixture_discrete_gaussian_scale", "backward"),
    # ARMS copulas (gradkern.copulas)
    "dirichlet_copula": lambda device, dtype: _copula(device, dtype),
    "gaussian_copula": lambda device, dtype: _copula(device, dtype),
    "dirichlet_copula_rho": lambda device, dtype: _dirichlet_copula_rho(device, dtype),
    "gaussian_copula_rho": lambda device, dtype: _gaussian_copula_rho(device, dtype),
    "bivariate_normal_cdf": lambda device, dtype: _bivariate_normal_cdf(device, dtype),
    # Truncated Normal (gradkern.distributions.TruncatedNormal)
    "truncated_normal_icdf": lambda device, dtype: _truncated_normal(device, dtype, "icdf"),
    "truncated_normal_backward": lambda device, dtype: _truncated_normal(device, dtype, "backward"),
    # Antithetic Gaussian sampling (gradkern.antithetic)
    "antithetic_reflection_table": lambda device, dtype: _antithetic_reflection_table(device, dtype),
    "chi2_reflect": lambda device, dtype: _chi2_reflect(device, dtype),
    "antithetic_construction": lambda device, dtype: _antithetic_construction(device, dtype),
    "antithetic_normal_standardized": lambda device, dtype: _antithetic_normal_standardized(device, dtype),
}

# Every operator the library registers (after `import gradkern`), overload names dropped.
ALL_OPS = sorted({n.split("::", 1)[1].split(".", 1)[0] for n in torch._C._dispatch_get_all_op_names()
                  if n.startswith("gradkern::")})


class Sample:
    """One call ``op(*args, **kwargs)`` and what the checks need to know about it.

    dims: per positional argument, a string naming the dimensions of a tensor (None for a non-tensor, or
        for a tensor the batch checks leave alone, such as a lookup table); out: the same per output.
    batch: the letters of the dimensions along which the op acts element by element, so that slicing
        them commutes with the op; a batch letter missing from an output is summed over. The empty,
        0-dim, expanded and thread checks resize these (size-1 dimensions broadcast and are left alone).
    grad: indices of the arguments the op is differentiable in.
    fixed_rank: the op needs all its dimensions (no 0-dim variant).
    grow: the letter the thread check enlarges (default: the first batch letter).
    expect: (dtype, device) of the outputs when they are not those of the inputs.
    tol: {dtype: (rtol, atol)} for CPU/CUDA agreement (default: torch.testing's for the dtype).
    Random ops get their generator from the checks (``generator=`` keyword), not from the sample.
    """

    def __init__(self, *args, dims, out, batch="", grad=(), fixed_rank=False, grow=None, expect=None, tol=None,
                 **kwargs):
        assert len(dims) == len(args), "one dims entry per positional argument"
        self.args, self.kwargs, self.dims, self.out, self.batch = list(args), kwargs, tuple(dims), tuple(out), batch
        self.grad, self.fixed_rank, self.grow, self.expect, self.tol = tuple(grad), fixed_rank, grow, expect, tol

    def replace(self, args, dims=None):
        """The same call with other positional arguments (and their dims, if these change)."""
        return Sample(*args, dims=self.dims if dims is None else dims, out=self.out, batch=self.batch,
                      grad=self.grad, fixed_rank=self.fixed_rank, grow=self.grow, expect=self.expect, tol=self.tol,
                      **self.kwargs)

    def __repr__(self):
        def fmt(a):
            if isinstance(a, torch.Tensor):
                return f"{a.dtype}{tuple(a.shape)}" + ("" if a.is_contiguous() else f"/strides{a.stride()}")
            return repr(a)
        parts = [fmt(a) for a in self.args] + [f"{k}={fmt(v)}" for k, v in self.kwargs.items()]
        return "(" + ", ".join(parts) + ")"


def ew(*args, grad=(), tol=None, **kwargs):
    """Sample of an elementwise op: the tensor arguments broadcast together (right-aligned dimension
    letters) and every dimension is a batch dimension."""
    nd = len(torch.broadcast_shapes(*(a.shape for a in args if isinstance(a, torch.Tensor))))
    letters = "abcdefgh"[:nd]
    dims = tuple(letters[nd - a.dim():] if isinstance(a, torch.Tensor) else None for a in args)
    return Sample(*args, dims=dims, out=(letters,), batch=letters, grad=grad, tol=tol, **kwargs)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


# --- the sample builders -------------------------------------------------------------------------------
# Values are made on the CPU from fixed seeds and moved to `device`, so CPU and CUDA see the same inputs.
GAMMA_TOL = {torch.float32: (1e-5, 0.0), torch.float64: (1e-12, 0.0)}


def _gamma_pair(device, dtype, second, grad=()):
    """(a, second) for the incomplete-gamma family, second "x" (a quantile of Gamma(a, 1)), "p" (a
    probability) or "log_x"; a across every branch of the core (series, continued fraction, Temme)."""
    a = torch.tensor([0.3, 1.0, 2.5, 17.0, 150.0, 3000.0], dtype=dtype)
    p = torch.rand(6, generator=_gen(0), dtype=dtype) * 0.75 + 0.2
    a2 = torch.linspace(0.5, 5.0, 12, dtype=dtype).reshape(3, 4).t().contiguous()  # (4, 3), broadcasts
    p2 = torch.tensor([0.1, 0.5, 0.9], dtype=dtype)
    a0 = torch.tensor(2.0, dtype=dtype)  # 0-dim with a tensor, as a Python number argument becomes
    cases = []
    for a_, p_ in ((a, p), (a2, p2), (a0, p2)):
        x = OPS.gammaincinv(a_, p_)
        arg = {"x": x, "p": p_, "log_x": torch.log(x)}[second]
        cases.append(ew(a_.to(device), arg.to(device), grad=grad, tol=GAMMA_TOL))
    return cases


def _gamma_sampler(device, dtype):
    alpha = torch.tensor([1e-3, 0.5, 3.0], dtype=dtype)
    grid = torch.linspace(0.05, 6.0, 12, dtype=dtype).reshape(4, 3)
    return [ew(alpha.to(device), grad=(0,)), ew(grid.to(device), grad=(0,))]


def _beta_triple(device, dtype, third, grad=(), outputs=1):
    """(a, b, third) for the incomplete-beta family, third "x" (a quantile of Beta(a, b)) or "p"; (a, b)
    on both sides of the continued fraction's symmetry and across small and large parameters."""
    a = torch.tensor([0.3, 1.0, 2.5, 17.0, 150.0, 0.05], dtype=dtype)
    b = torch.tensor([2.0, 1.0, 0.4, 30.0, 3.0, 0.05], dtype=dtype)
    p = torch.rand(6, generator=_gen(2), dtype=dtype) * 0.9 + 0.05
    a2 = torch.linspace(0.5, 5.0, 12, dtype=dtype).reshape(3, 4).t().contiguous()  # (4, 3), broadcasts
    b2 = torch.tensor([0.7, 2.0, 9.0], dtype=dtype)
    p2 = torch.tensor([0.1, 0.5, 0.9], dtype=dtype)
    b0 = torch.tensor(2.0, dtype=dtype)  # 0-dim with a tensor, as a Python number argument becomes
    cases = []
    for a_, b_, p_ in ((a, b, p), (a2, b2, p2), (a2, b0, p2)):
        arg = OPS.betaincinv(a_, b_, p_) if third == "x" else p_
        s = ew(a_.to(device), b_.to(device), arg.to(device), grad=grad, tol=GAMMA_TOL)
        s.out = s.out * outputs
        cases.append(s)
    return cases


def _dirichlet_grad(device, dtype):
    alpha = torch.tensor([[0.3, 1.0, 2.5], [17.0, 0.05, 4.0]], dtype=dtype)
    total = alpha.sum(-1, keepdim=True).expand_as(alpha).contiguous()
    # alpha = 0.05 at its 0.95 quantile (x ~ 0.013): at the median x ~ 3e-8 lies inside the finite-difference
    # steps of the derivative checks, which then straddle x = 0
    p = torch.tensor([[0.2, 0.5, 0.8], [0.2, 0.95, 0.8]], dtype=dtype)
    x = OPS.betaincinv(alpha, total - alpha, p)
    return [ew(x.to(device), alpha.to(device), total.to(device), tol=GAMMA_TOL)]


def _beta_sampler(device, dtype):
    a = torch.tensor([1e-3, 0.5, 3.0], dtype=dtype)
    b = torch.linspace(0.05, 6.0, 12, dtype=dtype).reshape(4, 3)
    return [ew(a.to(device), a.flip(0).to(device), grad=(0, 1)), ew(a.to(device), b.to(device), grad=(0, 1))]


def _sigmoid_difference(device, dtype):
    x = torch.tensor([-800.0, -3.0, 0.0, 2.5, 40.0], dtype=dtype)
    y = torch.linspace(-2.0, 2.0, 15, dtype=dtype).reshape(3, 5)
    return [ew(x.to(device), x.flip(0).to(device), grad=(0, 1)), ew(x.to(device), y.to(device), grad=(0, 1))]


def _truncated_normal(device, dtype, which):
    """(p, loc, scale, low, high) for the truncated Normal's quantile kernel, or (grad, z, p, loc, scale, low,
    high) for its backward: windows around the mean, in both tails and one-sided (-inf / inf bounds)."""
    inf = math.inf
    p = torch.tensor([0.2, 0.5, 0.9, 0.01, 0.7], dtype=dtype)
    loc = torch.tensor([0.0, 1.0, -2.0, 0.5, 0.0], dtype=dtype)
    scale = torch.tensor([1.0, 2.0, 0.5, 1.0, 3.0], dtype=dtype)
    low = torch.tensor([-1.0, 9.0, -inf, 0.0, -40.0], dtype=dtype)
    high = torch.tensor([2.0, 11.0, -2.5, inf, -35.0], dtype=dtype)
    p2 = torch.linspace(0.05, 0.95, 12, dtype=dtype).reshape(4, 3)  # (4, 3) against (3,) parameters
    cases = []
    for args in ((p, loc, scale, low, high), (p2, loc[:3], scale[:3], low[:3], high[:3]),
                 (p2, torch.tensor(0.5, dtype=dtype), torch.tensor(2.0, dtype=dtype), low[:3], high[:3])):
        if which == "backward":
            z = OPS.truncated_normal_icdf(*args)
            args = (torch.linspace(0.5, 1.5, z.numel(), dtype=dtype).view_as(z), z) + args
        s = ew(*(a.to(device) for a in args), tol=GAMMA_TOL)
        if which == "backward":
            s.out = s.out * 4
        cases.append(s)
    return cases


def _dirichlet_sampler(device, dtype):
    alpha = torch.tensor([[1e-3, 0.5, 3.0], [2.0, 2.0, 0.3]], dtype=dtype)
    # The last dimension is the event (normalised over), not a batch dimension.
    return [Sample(alpha.to(device), dims=("bk",), out=("bk",), batch="b", grad=(0,))]


def _vonmises_pair(device, dtype, order, grad=()):
    """(x, concentration) in `order` ("xk" or "kx"), concentrations across the series and the large-kappa
    expansion."""
    x = torch.tensor([-2.0, 0.3, 1.2], dtype=dtype)
    k = torch.tensor([0.5, 4.0, 90.0], dtype=dtype)
    x2 = torch.linspace(-3.0, 3.0, 12, dtype=dtype).reshape(4, 3)
    k2 = torch.tensor([0.05, 8.0, 1e4], dtype=dtype)
    pairs = [(x.to(device), k.to(device)), (x2.to(device), k2.to(device))]
    return [ew(*(p if order == "xk" else p[::-1]), grad=grad) for p in pairs]


def _vonmises_shift_wrap(device, dtype):
    x = torch.tensor([-2.0, 0.3, 1.2], dtype=dtype)
    loc = torch.tensor(0.4, dtype=dtype)
    x2 = (torch.rand(4, 3, generator=_gen(1), dtype=dtype) * 2 - 1) * math.pi
    loc2 = torch.tensor([-40.0, 0.0, 7.5], dtype=dtype)
    return [ew(x.to(device), loc.to(device), grad=(0, 1)), ew(x2.to(device), loc2.to(device), grad=(0, 1))]


def _vonmises_sample(device, dtype):
    k = torch.tensor([0.5, 4.0, 90.0], dtype=dtype)
    wide = torch.tensor([1e-3, 1.0, 50.0, 1e5], dtype=dtype)
    # A stride-0 input, as vonmises_rsample passes concentration.expand(sample_shape + batch).
    return [ew(k.to(device), grad=(0,)), ew(wide.to(device).expand(1000, 4))]


def _vmf_pair(device, dtype, grad=(), value_first=False):
    """(concentration, u, d): u = 1 - mu^T z across the lower tail, the bulk and the upper tail, for the
    von Mises (d = 2), closed-form (d = 3) and general cases."""
    k = torch.tensor([0.5, 4.0, 90.0], dtype=dtype)
    u = torch.tensor([0.3, 0.2, 0.004], dtype=dtype)
    k2 = torch.tensor([1e-3, 1.0, 30.0, 1e4], dtype=dtype)
    u2 = torch.tensor([[1e-3], [0.05], [0.6], [1.9]], dtype=dtype)
    pairs = [(k, u, d) for d in (2, 3, 10)] + [(k2, u2, 7)]
    return [ew(*((b.to(device), a.to(device)) if value_first else (a.to(device), b.to(device))), d, grad=grad)
            for a, b, d in pairs]


def _vmf_moments(device, dtype):
    k = torch.tensor([1e-3, 0.5, 4.0, 90.0, 1e4], dtype=dtype)  # interior: gradcheck steps both ways
    # one output per moment: (log Z_u, E[u], Var[u]), all elementwise
    return [Sample(k.to(device), d, dims=("a", None), out=("a", "a", "a"), batch="a", grad=(0,)) for d in (2, 5, 64)]


def _vmf_central_moment(device, dtype):
    k = torch.tensor([1e-3, 0.5, 4.0, 90.0, 1e4], dtype=dtype)  # interior: gradcheck steps both ways
    return [ew(k.to(device), d, order, grad=(0,) if order < 8 else ()) for d, order in ((2, 3), (5, 2), (64, 4), (3, 8))]


def _vmf_direction(device, dtype):
    """(loc, u, noise): rows of unit loc (one near e_1, one near -e_1, where the reflection switches), u across
    (0, 2), standard normal noise; and loc unbatched against a batch of (u, noise)."""
    g = _gen(12)
    cases = []
    for d in (2, 3, 7):
        loc = torch.nn.functional.normalize(torch.randn(5, d, generator=g, dtype=dtype), dim=-1)
        loc[0] = torch.nn.functional.normalize(torch.cat([torch.ones(1), 1e-3 * torch.ones(d - 1)]).to(dtype), dim=0)
        loc[1] = -loc[0]
        u = torch.tensor([[1e-4], [0.3], [1.0], [1.7], [1.999]], dtype=dtype)
        noise = torch.randn(5, d - 1, generator=g, dtype=dtype)
        cases.append(Sample(loc.to(device), u.to(device), noise.to(device), dims=("ad", "ao", "an"), out=("ad",),
                            batch="a", grad=(0, 1, 2), fixed_rank=True))
    loc = torch.nn.functional.normalize(torch.randn(4, generator=g, dtype=dtype), dim=0)
    u = torch.rand(6, 1, generator=g, dtype=dtype) * 2
    noise = torch.randn(6, 3, generator=g, dtype=dtype)
    cases.append(Sample(loc.to(device), u.to(device), noise.to(device), dims=("d", "ao", "an"), out=("ad",), batch="a",
                        grad=(0, 1, 2), fixed_rank=True))
    return cases


def _vmf_direction_backward(device, dtype):
    # (grad, loc, u, noise) in the output's shape, from the forward op's samples
    out = []
    for smp in _vmf_direction("cpu", dtype):
        loc, u, noise = smp.args
        z = OPS.vmf_direction(loc, u, noise)
        g = torch.randn(z.shape, generator=_gen(13), dtype=dtype)
        shape = z.shape
        args = [g, loc.expand(shape), u.expand(shape[:-1] + (1,)), noise.expand(shape[:-1] + noise.shape[-1:])]
        out.append(Sample(*(a.contiguous().to(device) for a in args), dims=("ad", "ad", "ao", "an"),
                          out=("ad", "ao", "an"), batch="a", fixed_rank=True))
    return out


def _vmf_sample(device, dtype):
    k = torch.tensor([0.5, 4.0, 90.0], dtype=dtype)
    wide = torch.tensor([0.0, 1e-3, 1.0, 50.0, 1e5], dtype=dtype)
    return [ew(k.to(device), 3, grad=(0,)), ew(k.to(device), 2, grad=(0,)), ew(wide.to(device).expand(1000, 5), 40)]


def _vmf_noise(device, dtype):
    # `like` gives only the shape, dtype and device (vmf_rsample passes u); d - 1 normals per element
    likes = [(torch.zeros(3, 5, dtype=dtype), 4), (torch.zeros(7, dtype=dtype), 2),
             (torch.zeros((), dtype=dtype).expand(4, 3), 10), (torch.zeros(2, 3, 4, dtype=dtype), 3)]
    return [Sample(like.to(device), d, dims=("abc"[:like.dim()], None), out=("abc"[:like.dim()] + "n",),
                   batch="abc"[:like.dim()]) for like, d in likes]


def _copula(device, dtype):
    # `like` gives only the shape, dtype and device; the Python wrappers pass a stride-0 tensor.
    likes = [(torch.zeros(3, 50, dtype=dtype), 4), (torch.zeros(4, 3, dtype=dtype), 2),
             (torch.zeros(4, 3, dtype=dtype), 7), (torch.zeros((), dtype=dtype).expand(4, 3), 5),
             (torch.zeros(6, dtype=dtype), 3), (torch.zeros(2, 3, 4, dtype=dtype), 3)]
    return [Sample(like.to(device), n, dims=("abc"[:like.dim()], None), out=("n" + "abc"[:like.dim()],),
                   batch="abc"[:like.dim()]) for like, n in likes]


def _dirichlet_copula_rho(device, dtype):
    p = (torch.rand(4, 3, generator=_gen(2), dtype=dtype) * 0.96 + 0.02).to(device)
    cases = [ew(p, n) for n in (2, 5, 1000)]
    return cases + [ew(p, 5, mode) for mode in copulas._DIRICHLET_MODES]


def _gaussian_copula_rho(device, dtype):
    p = (torch.rand(4, 3, generator=_gen(3), dtype=dtype) * 0.96 + 0.02).to(device)
    return [ew(p, n) for n in (2, 3, 5, 100)]


def _bivariate_normal_cdf(device, dtype):
    h, k = torch.randn(2, 4, 3, generator=_gen(4), dtype=dtype)
    r = torch.rand(4, 3, generator=_gen(5), dtype=dtype) * 1.98 - 0.99  # both branches (|r| < and > 0.925)
    r[0] = torch.tensor([0.95, -0.99, 0.999], dtype=dtype)
    return [ew(h.to(device), k.to(device), r.to(device), grad=(0, 1, 2)),
            ew(h[:, :1].to(device), k[0].to(device), torch.tensor(0.3, dtype=dtype, device=device), grad=(0, 1, 2))]


def _noise_with_tails(rows, n, dtype, seed):
    """(rows, n) N(0, 1) noise whose first k = (rows + 1) // 2 rows have, in columns 0..3, spreads off the
    reflection table on either side (S = 0, S tiny, S far in the upper tail, S ~ 1e-6)."""
    k = (rows + 1) // 2
    noise = torch.randn(rows, n, dtype=torch.float64, generator=_gen(seed))
    noise[:k, 0] = 0.5
    noise[:k, 1] = 0.5 + 2.0 ** -20 * torch.arange(k)
    noise[:k, 2] = 6.0 * torch.linspace(-1, 1, k, dtype=torch.float64)
    noise[:k, 3] = 1e-3 * torch.linspace(-1, 1, k, dtype=torch.float64)
    return noise.to(dtype)


@functools.lru_cache(maxsize=None)
def _cpu_table(df):
    coef, bounds = OPS.antithetic_reflection_table(0.5 * df)
    return coef, *bounds.tolist()


def _table(df, reflection, device):
    """The (table, u_lo, u_hi) arguments of the reflection ops; Hawkins-Wixley reads no table."""
    if reflection == "hawkins-wixley":
        return torch.empty((0, 4), dtype=torch.float64, device=device), 0.0, 1.0
    coef, u_lo, u_hi = _cpu_table(float(df))
    return coef.to(device), u_lo, u_hi


def _antithetic_normal_standardized(device, dtype):
    cases = []
    for k, method, reflection in ((2, "marsaglia", "exact"), (5, "cheng", "exact"),
                                  (2, "marsaglia", "hawkins-wixley"), (5, "cheng", "hawkins-wixley"), (3, None, None)):
        noise = _noise_with_tails(2 * k - 1, 12, dtype, seed=k).reshape(2 * k - 1, 3, 4).to(device)
        enums = () if method is None else (method, reflection)  # None: the schema's defaults
        cases.append(Sample(noise, *_table(k - 1, reflection or "exact", device), *enums,
                            dims=("rab", None, None, None) + (None,) * len(enums), out=("Rab",), batch="ab"))
    return cases


def _antithetic_construction(device, dtype):
    cases = []
    for k, method in ((2, "marsaglia"), (5, "cheng"), (5, "marsaglia"), (3, None)):
        z = torch.randn(k - 1, 3, 4, generator=_gen(6 + k), dtype=dtype).to(device)
        enums = () if method is None else (method,)
        cases.append(Sample(z, *enums, dims=("rab",) + (None,) * len(enums), out=("Rab",), batch="ab"))
    return cases


def _chi2_reflect(device, dtype):
    cases = []
    for df, reflection in ((1.0, "exact"), (4.0, "exact"), (1.0, "hawkins-wixley"), (4.0, "hawkins-wixley"),
                           (2.0, None)):
        s = torch.tensor([[1e-6, 0.05, 0.7], [df, 3 * df + 5, 60.0]], dtype=dtype).to(device)
        enums = () if reflection is None else (reflection,)
        cases.append(Sample(s, df, *_table(df, reflection or "exact", device), *enums,
                            dims=("ab", None, None, None, None) + (None,) * len(enums), out=("ab",), batch="ab",
                            grad=(0,)))
    return cases


def _antithetic_reflection_table(device, dtype):
    # No tensor input: a float64 table on the CPU whatever the caller's dtype and device.
    cpu64 = (torch.float64, torch.device("cpu"))
    return [Sample(a, *rest, dims=(None,) * (1 + len(rest)), out=(None, None), expect=cpu64)
            for a, *rest in ((0.5,), (2.0, 65, 1e-7), (31.5, 129, 1e-5))]


def _mixture_params(names, per_component, B, K, D, dtype, seed):
    """Parameters by name in the (B, ...) layout of the mixture ops, with their dimension letters."""
    g = _gen(seed)
    make = {"locs": (lambda: torch.randn(B, K, D, generator=g, dtype=dtype), "bkd"),
            "coord_scale": ((lambda: 0.5 + torch.rand(B, K, D, generator=g, dtype=dtype), "bkd") if per_component
                            else (lambda: 0.5 + torch.rand(B, D, generator=g, dtype=dtype), "bd")),
            "component_logits": (lambda: 0.5 * torch.randn(B, K, generator=g, dtype=dtype), "bk"),
            "component_scale": (lambda: 0.5 + torch.rand(B, K, generator=g, dtype=dtype), "bk")}
    return [make[n][0]() for n in names], [make[n][1] for n in names]


def _mixture(device, dtype, stem, op):
    """Samples of a mixture family's op "rsample" or "backward", the parameters built from the schema's
    argument names; every logit velocity field for the ops that take one, and the default."""
    schema = getattr(OPS, f"{stem}_rsample").default._schema
    names = [a.name for a in schema.arguments[2:] if a.name != "velocity"]
    velocities = [()]
    if any(a.name == "velocity" for a in schema.arguments):
        velocities += [(v,) for v in sorted({v for vs in M.VELOCITIES.values() for v in vs})]
    S, B, K, D = 5, 2, 3, 4
    params, pdims = _mixture_params(names, "diag_normals" in stem, B, K, D, dtype, seed=11)
    noise = torch.randn(S, B, D, generator=_gen(12), dtype=dtype)
    component = torch.randint(0, K, (S, B), generator=_gen(13))
    if op == "rsample":
        tensors, dims, out = [noise, component, *params], ("sbd", "sb", *pdims), ("sbd",)
        grad = range(2, 2 + len(params))
    else:  # the backward sums over samples: s is a batch letter its outputs lack
        upstream = torch.randn(S, B, D, generator=_gen(14), dtype=dtype)
        z = getattr(OPS, f"{stem}_rsample")(noise, component, *params)
        tensors, dims, out, grad = [upstream, z, *params], ("sbd", "sbd", *pdims), tuple(pdims), ()
    return [Sample(*[t.to(device) for t in tensors], *vel, dims=dims + (None,) * len(vel), out=out, batch="sb",
                   grad=grad, fixed_rank=True) for vel in velocities]




# --- helpers ------------------------------------------------------------------------------------------
def _samples(name, device="cpu", dtype=torch.float64):
    if name not in SAMPLES:
        pytest.skip(f"op {name} has no sample inputs in test_contracts.SAMPLES (see test_every_op_has_samples)")
    return SAMPLES[name](device, dtype)


@functools.lru_cache(maxsize=None)
def _is_random(name):
    return any("Generator" in str(a.type) for a in getattr(OPS, name).default._schema.arguments)


def _device_of(sample):
    return next((a.device for a in sample.args if isinstance(a, torch.Tensor)), torch.device("cpu"))


def _call(name, sample, seed=None, args=None):
    """The op's outputs as a tuple; random ops draw from a Generator seeded with `seed` (None: the global
    generator)."""
    kwargs = dict(sample.kwargs)
    if _is_random(name) and seed is not None:
        kwargs["generator"] = torch.Generator(device=_device_of(sample)).manual_seed(seed)
    out = getattr(OPS, name)(*(sample.args if args is None else args), **kwargs)
    return out if isinstance(out, tuple) else (out,)


def _assert_same(got, want, what):
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        torch.testing.assert_close(g, w, rtol=0, atol=0, equal_nan=True, msg=lambda m: f"{what}, output {i}: {m}")


def _sizes(sample):
    sizes = {}
    for a, d in zip(sample.args, sample.dims):
        for letter, n in zip(d or "", a.shape if d else ()):
            sizes[letter] = max(sizes.get(letter, 1), n)
    return sizes


def _map_letter(sample, letter, fn):
    """Apply fn(tensor, dim) to every argument that spans `letter` at its full size (size-1 dimensions
    broadcast and are left alone)."""
    full = _sizes(sample)[letter]
    args = list(sample.args)
    for i, (a, d) in enumerate(zip(args, sample.dims)):
        if d and letter in d and a.shape[d.index(letter)] == full:
            args[i] = fn(a, d.index(letter))
    return args


def _strided(x):
    """A copy of x with every stride doubled (every other element of a larger buffer)."""
    buf = torch.empty(x.shape + (2,), dtype=x.dtype, device=x.device)
    out = buf[..., 0]
    out.copy_(x)
    return out


def _transposed(x):
    """A copy of x stored with its last two dimensions swapped (column-major for a matrix)."""
    return x.transpose(-1, -2).contiguous().transpose(-1, -2) if x.dim() >= 2 else x


THREAD_COUNTS = sorted({2, torch.get_num_threads()})  # each compared with 1 thread


def _threads(n, fn):
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(n)
        return fn()
    finally:
        torch.set_num_threads(old)


def _distinct(samples):
    """The first sample of each combination of non-tensor arguments."""
    seen = set()
    for sample in samples:
        key = repr([a for a in sample.args if not isinstance(a, torch.Tensor)] + sorted(sample.kwargs.items()))
        if key not in seen:
            seen.add(key)
            yield sample


def _with_grad(args, indices):
    return [a.detach().clone().requires_grad_() if i in indices else a for i, a in enumerate(args)]


# --- the op list -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ALL_OPS)
def test_every_op_has_samples(name):
    assert name in SAMPLES, (f"op {name} has no sample inputs in test_contracts.SAMPLES: add an entry (op name "
                             "-> function(device, dtype) returning Samples) at the top of tests/test_contracts.py")


def test_samples_name_existing_ops():
    stale = sorted(set(SAMPLES) - set(ALL_OPS))
    assert not stale, f"test_contracts.SAMPLES has entries for ops torch.ops.gradkern does not have (renamed?): {stale}"


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ALL_OPS)
def test_outputs(name, device, dtype):
    for sample in _samples(name, device, dtype):
        want_dtype, want_device = sample.expect or (dtype, torch.device(device))
        for o in _call(name, sample, seed=0):
            assert o.dtype == want_dtype and o.device.type == torch.device(want_device).type, (name, sample, o.dtype)
            assert torch.isfinite(o).all(), f"{name}{sample}: non-finite output on valid-domain input"


# --- opcheck and torch.compile --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ALL_OPS)
def test_opcheck(name, device, dtype):
    samples = _samples(name, device, dtype)
    # float32: one sample per combination of non-tensor arguments (the shapes are float64's to cover).
    for sample in samples if dtype == torch.float64 else _distinct(samples):
        args, kwargs, utils = _with_grad(sample.args, sample.grad), dict(sample.kwargs), {}
        if _is_random(name):
            # test_aot_dispatch_dynamic compares two calls, which must differ for a random op.
            kwargs["generator"] = torch.Generator(device=_device_of(sample)).manual_seed(0)
            utils = {"test_utils": ("test_schema", "test_autograd_registration", "test_faketensor")}
        torch.library.opcheck(getattr(OPS, name), tuple(args), kwargs, **utils)


@pytest.mark.parametrize("name", ALL_OPS)
def test_compile_matches_eager(name):
    op = getattr(OPS, name)
    for sample in _samples(name, "cpu", torch.float64):
        torch._dynamo.reset()
        slots = [i for i, a in enumerate(sample.args) if isinstance(a, torch.Tensor)]
        consts = [None if i in slots else a for i, a in enumerate(sample.args)]
        kwargs = sample.kwargs

        def f(*tensors):
            args = list(consts)
            for i, t in zip(slots, tensors):
                args[i] = t
            return op(*args, **kwargs)

        counter = CompileCounterWithBackend("aot_eager")
        compiled = torch.compile(f, backend=counter, fullgraph=True)
        results = []
        for fn in (f, compiled):
            inputs = _with_grad([sample.args[i] for i in slots], [slots.index(i) for i in sample.grad])
            torch.manual_seed(0)
            out = fn(*inputs)
            out = out if isinstance(out, tuple) else (out,)
            grads = ()
            wrt = [inputs[slots.index(i)] for i in sample.grad]
            if wrt:
                weights = [torch.randn(o.shape, generator=_gen(7), dtype=o.dtype) for o in out]
                loss = sum((o * w).sum() for o, w in zip(out, weights))
                grads = torch.autograd.grad(loss, wrt)
            results.append((tuple(o.detach() for o in out), grads))
        assert counter.frame_count >= 1, f"{name}{sample}: nothing was compiled"  # (fullgraph: one graph)
        _assert_same(results[1][0], results[0][0], f"{name}{sample} compiled vs eager")
        _assert_same(results[1][1], results[0][1], f"{name}{sample} compiled vs eager gradients")


# --- sizes: empty, 0-dim -------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ALL_OPS)
def test_empty_inputs(name, device, dtype):
    checked = 0
    for sample in _samples(name, device, dtype):
        full = _call(name, sample, seed=0)
        for letter in sample.batch:
            args = _map_letter(sample, letter, lambda a, d: a.narrow(d, 0, 0))
            got = _call(name, sample, seed=0, args=args)
            for o, f, od in zip(got, full, sample.out):
                if letter in od:
                    want = list(f.shape)
                    want[od.index(letter)] = 0
                    assert list(o.shape) == want, f"{name}{sample}, {letter} = 0: shape {tuple(o.shape)}, want {want}"
                else:  # summed over: an empty sum
                    assert o.shape == f.shape and bool((o == 0).all()), f"{name}{sample}, {letter} = 0: {o}"
                assert o.dtype == f.dtype and o.device == f.device
            checked += 1
    if not checked:
        pytest.skip(f"{name}: no tensor input with a batch dimension")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ALL_OPS)
def test_zero_dim_inputs(name, device, dtype):
    checked = 0
    for sample in _samples(name, device, dtype):
        if sample.fixed_rank or not sample.batch:
            continue
        # Index 0 along every batch dimension: the batch dimensions disappear from inputs and outputs.
        def drop(d):
            return tuple(0 if letter in sample.batch else slice(None) for letter in d)
        args = [a[drop(d)] if d else a for a, d in zip(sample.args, sample.dims)]
        dims = [None if d is None else "".join(c for c in d if c not in sample.batch) for d in sample.dims]
        small = sample.replace(args, dims=dims)
        got, full = _call(name, small, seed=0), _call(name, sample, seed=0)
        for o, f, od in zip(got, full, sample.out):
            want = f[drop(od)]
            if _is_random(name):
                assert o.shape == want.shape and o.dtype == want.dtype, f"{name}{small}: {tuple(o.shape)}"
            else:
                _assert_same((o,), (want,), f"{name}{small} vs element 0 of {sample}")
        checked += 1
    if not checked:
        pytest.skip(f"{name}: its samples need all their dimensions")


# --- strides: non-contiguous, expanded --------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ALL_OPS)
def test_noncontiguous_inputs(name, device, dtype):
    checked = 0
    for sample in _samples(name, device, dtype):
        want = _call(name, sample, seed=0)
        for layout in (_strided, _transposed):
            args = [layout(a) if isinstance(a, torch.Tensor) and a.numel() > 1 else a for a in sample.args]
            if all(a.is_contiguous() for a in args if isinstance(a, torch.Tensor)):
                continue
            _assert_same(_call(name, sample, seed=0, args=args), want, f"{name}{sample}, {layout.__name__} inputs")
            checked += 1
    if not checked:
        pytest.skip(f"{name}: no tensor input to lay out differently")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ALL_OPS)
def test_expanded_inputs(name, device, dtype):
    checked = 0
    for sample in _samples(name, device, dtype):
        sizes = _sizes(sample)
        for letter in sample.batch:
            if sizes[letter] < 2:
                continue
            args = _map_letter(sample, letter, lambda a, d: a.narrow(d, 0, 1).expand(a.shape))
            dense = [a.contiguous() if isinstance(a, torch.Tensor) else a for a in args]
            _assert_same(_call(name, sample, seed=0, args=args), _call(name, sample, seed=0, args=dense),
                         f"{name}{sample}, stride 0 along {letter}")
            checked += 1
        if (len(sample.out) == 1 and set(sample.out[0]) <= set(sample.batch)
                and all(d is None or sample.out[0].endswith(d) for d in sample.dims)):
            # Broadcasting (an elementwise op): the same as every input expanded to the output's shape,
            # as a stride-0 view and as a dense copy.
            shape = [sizes[c] for c in sample.out[0]]
            views = [a.expand(shape) if d is not None else a for a, d in zip(sample.args, sample.dims)]
            if any(d is not None and list(a.shape) != shape for a, d in zip(sample.args, sample.dims)):
                want = _call(name, sample, seed=0)
                for args in (views, [a.contiguous() if isinstance(a, torch.Tensor) else a for a in views]):
                    _assert_same(_call(name, sample, seed=0, args=args), want, f"{name}{sample} vs broadcast inputs")
                checked += 1
    if not checked:
        pytest.skip(f"{name}: no batch dimension to expand")


# --- threads, seeds, devices ------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", ALL_OPS)
def test_thread_count_independent(name, dtype):
    # Grown to THREAD_ELEMENTS, samples that differ only in their shapes are the same check.
    for sample in _distinct(_samples(name, "cpu", dtype)):
        grow = sample.grow or sample.batch[:1]
        if grow:
            sizes = _sizes(sample)
            factor = math.ceil(THREAD_ELEMENTS / math.prod(sizes[c] for c in set(sample.batch + grow)))
            args = _map_letter(sample, grow, lambda a, d: a.repeat(*[factor if i == d else 1 for i in range(a.dim())]))
            sample = sample.replace(args)
        one = _threads(1, lambda: _call(name, sample, seed=0))
        for n in THREAD_COUNTS:
            _assert_same(_threads(n, lambda: _call(name, sample, seed=0)), one, f"{name}{sample}: {n} threads vs 1")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ALL_OPS)
def test_seeded_reproducible(name, device, dtype):
    if not _is_random(name):
        pytest.skip(f"{name} is deterministic")
    for sample in _samples(name, device, dtype):
        a, b, c = (_call(name, sample, seed=s) for s in (7, 7, 8))
        _assert_same(b, a, f"{name}{sample}, same seed")
        assert not any(torch.equal(x, y) for x, y in zip(a, c)), f"{name}{sample}: seeds 7 and 8 give the same draw"
        # Without a generator: the global one, which torch.manual_seed resets.
        torch.manual_seed(11)
        d = _call(name, sample)
        torch.manual_seed(11)
        _assert_same(_call(name, sample), d, f"{name}{sample}, torch.manual_seed")


@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", ALL_OPS)
def test_cuda_matches_cpu(name, dtype):
    for sample in _samples(name, "cpu", dtype):
        if not any(isinstance(a, torch.Tensor) for a in sample.args):
            continue  # a CPU op
        gpu_sample = sample.replace([a.cuda() if isinstance(a, torch.Tensor) else a for a in sample.args])
        cpu, gpu = _call(name, sample, seed=0), _call(name, gpu_sample, seed=0)
        for c, g in zip(cpu, gpu):
            assert g.device.type == "cuda" and g.shape == c.shape and g.dtype == c.dtype
            if not _is_random(name):  # the CPU and CUDA generators are different streams
                rtol, atol = (sample.tol or {}).get(dtype, (None, None))
                torch.testing.assert_close(g.cpu(), c, rtol=rtol, atol=atol, equal_nan=True,
                                           msg=lambda m: f"{name}{sample} CUDA vs CPU: {m}")


# --- composites: public functions that combine ops with torch code ----------------------------------------
class Case:
    """``fn(*inputs, generator=None)`` returns one tensor of shape ``shape``; gradients are checked for the
    inputs that require grad."""

    def __init__(self, fn, *inputs, shape):
        self.fn, self.inputs, self.shape = fn, inputs, tuple(shape)


def _req(t):
    return t.requires_grad_()


def _gamma_rsample(device, dtype, n):
    alpha = _req(torch.linspace(0.5, 2.0, n, dtype=dtype, device=device))
    return [Case(lambda a, generator=None: gradkern.gamma_rsample(a, sample_shape=(4,), generator=generator), alpha,
                 shape=(4, n))]


def _dirichlet_rsample(device, dtype, n):
    conc = _req(torch.tensor([0.01, 0.5, 4.0], dtype=dtype, device=device))
    return [Case(lambda c, generator=None: gradkern.dirichlet_rsample(c, (n,), generator=generator), conc,
                 shape=(n, 3))]


def _beta_rsample(device, dtype, n):
    a = _req(torch.linspace(0.01, 3.0, n, dtype=dtype, device=device))
    b = _req(torch.linspace(2.0, 0.05, n, dtype=dtype, device=device))
    return [Case(lambda x, y, generator=None: gradkern.beta_rsample(x, y, (4,), generator=generator), a, b,
                 shape=(4, n)),
            Case(lambda x, y, generator=None: gradkern.beta_rsample(x, y, (4,), generator=generator,
                                                                    reparameterization="gamma"), a, b, shape=(4, n))]


def _log_dirichlet_rsample(device, dtype, n):
    conc = _req(torch.tensor([1e-3, 0.5, 4.0], dtype=dtype, device=device))
    return [Case(lambda c, generator=None: gradkern.log_dirichlet_rsample(c, (n,), generator=generator), conc,
                 shape=(n, 3))]


def _vonmises_rsample(device, dtype, n):
    loc = _req(torch.linspace(-1.0, 1.0, n, dtype=dtype, device=device))
    kappa = _req(torch.linspace(0.5, 8.0, n, dtype=dtype, device=device))
    return [Case(lambda l, k, generator=None: gradkern.vonmises_rsample(l, k, (8,), generator=generator), loc, kappa,
                 shape=(8, n))]


def _vmf_rsample(device, dtype, n):
    cases = []
    for d in (2, 3, 6):
        loc = torch.nn.functional.normalize(torch.randn(n, d, generator=_gen(5), dtype=dtype), dim=-1)
        loc = _req(loc.to(device))
        kappa = _req(torch.linspace(0.5, 8.0, n, dtype=dtype, device=device))
        cases.append(Case(lambda l, k, generator=None: gradkern.vmf_rsample(l, k, (8,), generator=generator), loc,
                          kappa, shape=(8, n, d)))
    return cases


def _normal_rsample(device, dtype, n):
    cases = []
    for k, method, reflection in ((2, "marsaglia", "exact"), (8, "marsaglia", "exact"), (2, "cheng", "exact"),
                                  (8, "cheng", "exact"), (4, "cheng", "exact"), (3, "marsaglia", "hawkins-wixley")):
        loc = _req(torch.linspace(-1.0, 1.0, n, dtype=dtype, device=device))
        scale = _req(torch.linspace(0.5, 2.0, n, dtype=dtype, device=device))
        fn = functools.partial(antithetic.normal_rsample, k=k, method=method, reflection=reflection,
                               validate_args=False)
        cases.append(Case(lambda l, s, generator=None, fn=fn: fn(l, s, generator=generator), loc, scale,
                          shape=(2 * k, n)))
    return cases


def _estimator(fn, *variants):
    def cases(device, dtype, n):
        logits = torch.linspace(-1.5, 1.5, 3 * n, dtype=dtype, device=device).reshape(n, 3)
        f = lambda b: ((b - 0.3) ** 2).sum(-1)  # noqa: E731
        return [Case(lambda lg, generator=None, kw=kw: fn(lg, f, 4, generator=generator, **kw), logits, shape=(n, 3))
                for kw in variants or ({},)]
    return cases


def _copula_composite(sampler, rho):
    def cases(device, dtype, n):
        p = torch.linspace(0.05, 0.95, n, dtype=dtype, device=device)

        def fn(p, generator=None):
            u = sampler(4, p.shape, generator, dtype=p.dtype, device=p.device)
            return (u < p).to(p.dtype) * rho(p, 4) + u
        return [Case(fn, p, shape=(4, n))]
    return cases


_MIXTURE_CLASSES = {  # class in gradkern.distributions -> (parameter names, per-component coord_scale)
    "MixtureOfDiagNormalsSharedCovariance": (("locs", "coord_scale", "component_logits"), False),
    "MixtureOfDiagNormals": (("locs", "coord_scale", "component_logits"), True),
    "GaussianScaleMixture": (("coord_scale", "component_logits", "component_scale"), False),
    "DiscreteGaussianScaleMixture": (("locs", "coord_scale", "component_logits", "component_scale"), False),
}


def _mixture_distribution(cls_name):
    def cases(device, dtype, n):
        names, per_component = _MIXTURE_CLASSES[cls_name]
        cls = getattr(gradkern.distributions, cls_name)
        K, D = 3, 2
        out = []
        extras = [{"velocity": v} for v in M.VELOCITIES.get("diag_normals", ())] if per_component else [{}]
        for kw in extras:
            # n samples of one mixture, and 4 samples of a batch of n mixtures.
            for batch, sample_shape, shape in (((), (n,), (n, D)), ((n,), (4,), (4, n, D))):
                params, _ = _mixture_params(names, per_component, 1, K, D, dtype, seed=21)
                params = [_req(p[0].expand(batch + p.shape[1:]).clone().to(device)) for p in params]

                def fn(*ps, generator=None, kw=kw, sample_shape=sample_shape):
                    return cls(**dict(zip(names, ps)), **kw).rsample(sample_shape, generator=generator)
                out.append(Case(fn, *params, shape=shape))
        return out
    return cases


# name -> function(device, dtype, n) returning Cases; n sizes a batch or sample dimension (6 to compile, 100
# for the seeded draws, 50_000 for the thread counts, 0 for the empty check).
COMPOSITES = {
    "gamma_rsample": _gamma_rsample,
    "dirichlet_rsample": _dirichlet_rsample,
    "beta_rsample": _beta_rsample,
    "log_dirichlet_rsample": _log_dirichlet_rsample,
    "vonmises_rsample": _vonmises_rsample,
    "vmf_rsample": _vmf_rsample,
    "antithetic.normal_rsample": _normal_rsample,
    "estimators.arms": _estimator(estimators.arms, {"copula": "dirichlet"}, {"copula": "gaussian"},
                                  {"copula": "independent"}),
    "estimators.loorf": _estimator(estimators.loorf),
    "estimators.disarm": _estimator(estimators.disarm),
    "estimators.arm": _estimator(estimators.arm),
    "copulas.dirichlet": _copula_composite(copulas.dirichlet, copulas.dirichlet_rho),
    "copulas.gaussian": _copula_composite(copulas.gaussian, copulas.gaussian_rho),
    **{f"distributions.{c}": _mixture_distribution(c) for c in _MIXTURE_CLASSES},
}


@pytest.mark.parametrize("name", sorted(COMPOSITES))
def test_composite_compile_matches_eager(name):
    for case in COMPOSITES[name]("cpu", torch.float64, 6):
        torch._dynamo.reset()
        counter = CompileCounterWithBackend("aot_eager")
        fn = case.fn
        compiled = torch.compile(lambda *xs: fn(*xs), backend=counter, fullgraph=True)
        results = []
        for f in (fn, compiled):
            inputs = [x.detach().clone().requires_grad_(x.requires_grad) for x in case.inputs]
            torch.manual_seed(0)
            out = f(*inputs)
            wrt = [x for x in inputs if x.requires_grad]
            w = torch.randn(out.shape, generator=_gen(7), dtype=out.dtype)
            grads = torch.autograd.grad((out * w).sum(), wrt) if wrt else ()
            results.append(((out.detach(),), grads))
        assert counter.frame_count >= 1, f"{name}: nothing was compiled"
        assert results[0][0][0].shape == case.shape
        _assert_same(results[1][0], results[0][0], f"{name} compiled vs eager")
        _assert_same(results[1][1], results[0][1], f"{name} compiled vs eager gradients")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(COMPOSITES))
def test_composite_seeded_reproducible(name, device):
    for dtype in FLOAT_DTYPES:
        for case in COMPOSITES[name](device, dtype, 100):
            def draw(seed):
                return case.fn(*case.inputs, generator=torch.Generator(device=device).manual_seed(seed))
            a, b, c = draw(7), draw(7), draw(8)
            assert a.shape == case.shape and a.dtype == dtype and a.device.type == device
            _assert_same((b,), (a,), f"{name}, same seed")
            assert not torch.equal(a, c), f"{name}: seeds 7 and 8 give the same draw"
            torch.manual_seed(11)
            d = case.fn(*case.inputs)
            torch.manual_seed(11)
            _assert_same((case.fn(*case.inputs),), (d,), f"{name}, torch.manual_seed")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", sorted(COMPOSITES))
def test_composite_thread_count_independent(name, dtype):
    for case in COMPOSITES[name]("cpu", dtype, 50_000):
        draw = lambda: case.fn(*case.inputs, generator=_gen(5)).detach()  # noqa: E731
        one = _threads(1, draw)
        for n in THREAD_COUNTS:
            _assert_same((_threads(n, draw),), (one,), f"{name}: {n} threads vs 1")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(COMPOSITES))
def test_composite_empty(name, device):
    for dtype in FLOAT_DTYPES:
        for case in COMPOSITES[name](device, dtype, 0):
            out = case.fn(*case.inputs, generator=torch.Generator(device=device).manual_seed(0))
            assert out.shape == case.shape and out.dtype == dtype, (name, tuple(out.shape), case.shape)
            wrt = [x for x in case.inputs if x.requires_grad]
            if wrt:  # nothing drawn: zero gradients, of the parameters' shapes
                for x, g in zip(wrt, torch.autograd.grad(out.sum(), wrt)):
                    assert g.shape == x.shape and bool((g == 0).all()), name
