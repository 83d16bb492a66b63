"""CUDA checks beyond the per-op contracts, parametrised from the same op list and sample table.

tests/test_contracts.py already runs its outputs, opcheck, empty, 0-dim, non-contiguous, expanded and
seeded checks on CUDA (``device=cuda``), and test_cuda_matches_cpu compares CUDA with the CPU at
torch.testing's default tolerances. This file adds, for every op in test_contracts.ALL_OPS:

* ulps: each deterministic op on CUDA against the CPU kernels on the same inputs, within the number of
  units in the last place stated in ULPS (per element, or of the output's largest magnitude for ops whose
  outputs cancel or sum), on the contract samples and on the samples grown to GROWN_ELEMENTS, past one
  launch's grid (so the grid-stride loops take a second step); half and bfloat16 for the ops that take
  them (computed in float32 on both: at most 1 ulp of their own);
* gradients: autograd on CUDA against autograd on the CPU, within GRAD_ULPS; a sampler's gradient
  against the CPU formula evaluated at the CUDA draw;
* distributions: every sampler's CUDA draws against its CPU draws, two-sample Kolmogorov-Smirnov per
  parameter value (copulas: per coordinate and for the row sum) and the means (copulas: the correlation
  matrix) within 5 standard errors;
* mixed devices: a CUDA call with one argument on the CPU raises an error about devices that names one
  (a table the op ignores, and a CPU 0-dim tensor, may instead be accepted if the result is the all-CUDA
  one); a CPU generator with CUDA tensors, and a CUDA generator with CPU tensors, raise;
* streams: every op runs on the current stream: inputs written on a busy side stream (behind
  torch.cuda._sleep) are the ones it reads, and the result is the default stream's, bit for bit;
* graphs: every op captured in a CUDA graph and replayed gives the eager result; every sampler replayed
  twice draws twice (different values), and re-seeding replays the same sequence, which is the eager
  one (the Philox state is read on the device: graph safe); the same with a registered torch.Generator,
  and the public samplers (COMPOSITES) captured whole;
* 64-bit indexing: an elementwise op and a sampler over more than 2**31 elements (needs ~24 GB free on
  the device; marked slow).

Everything needing a device is marked ``cuda`` and skipped cleanly without one; the table checks
(every op has its tolerances) run everywhere. Where GRADKERN_CUDA_REPORT names a file, the ulps and
gradient checks append one JSON line per output with the measured maximum, so a device run records
the actual CPU/CUDA distance of every op even where a bound fails.
"""
import json
import math
import os

import numpy as np
import pytest
import torch

from conftest import CUDA, FLOAT_DTYPES
from test_contracts import (ALL_OPS, COMPOSITES, SAMPLES, _call, _is_random, _map_letter, _samples,
                            _sizes)

OPS = torch.ops.gradkern
GROWN_ELEMENTS = 1 << 19  # > 132 SMs x 8 blocks x 256 threads (cuda/host.cuh's grid cap on an H200)
REPORT = os.environ.get("GRADKERN_CUDA_REPORT")


def cuda_test(fn):
    return pytest.mark.cuda(pytest.mark.skipif(not CUDA, reason="needs a CUDA device")(fn))


# --- tolerances: CUDA against the CPU, stated per op --------------------------------------------------------
class Tol:
    """``ulps`` units in the last place of the dtype, measured at each element ("elem") or at the
    output's largest finite magnitude ("tensor": ops whose outputs cancel towards 0 or sum many terms);
    ``per_sqrt`` adds that many ulps per square root of the number of terms summed into one output
    element (float additions in another order: CUDA's atomics and reduction trees)."""

    def __init__(self, ulps, scale="elem", per_sqrt=0.0):
        self.ulps, self.scale, self.per_sqrt = ulps, scale, per_sqrt

    def bound(self, summed=1):
        return self.ulps + self.per_sqrt * math.sqrt(summed)

    def __repr__(self):
        return f"{self.ulps} ulp ({self.scale})" + (f" + {self.per_sqrt} sqrt(terms)" if self.per_sqrt else "")


# Values. Calibrated on the CPU: the float32 kernels' distance from the float64 kernels at the same inputs
# (the CPU's own float32 rounding error) was at most 5 ulps per element for the special functions, 3 for
# the copula functions, 4 for the mixture forwards; CUDA adds its libm (expf, logf, lgammaf: up to 2-6
# ulps where glibc has 1) and FMA contraction, so each bound is about 4x the measured error plus 4. The
# same counts apply to float64 (the same formulas; CUDA's double libm is within 1-4 ulps too).
ULPS = {
    "gammainc": Tol(16),
    "gammaincc": Tol(32),
    "gammainc_grad_a": Tol(32),
    "standard_gamma_grad": Tol(32),
    "log_standard_gamma_grad": Tol(16),
    "gammaincinv": Tol(16),
    # Second order in a (igamma_d2.h): the same branches one order further, longer sums; a first estimate.
    "gammainc_grad_aa": Tol(64),
    "standard_gamma_grad_dalpha": Tol(64),
    "log_standard_gamma_grad_dalpha": Tol(64),
    # The incomplete beta ops run in double for float32 too (one rounding at the end); in float64 the
    # continued fraction's steps on the device (FMA contractions) differ from the CPU's in the last bits.
    "betainc": Tol(16),
    "betaincc": Tol(16),
    "betainc_grads": Tol(32),
    "standard_beta_grad": Tol(32),
    "betainc_grads2": Tol(64),
    "standard_beta_grad_d2": Tol(64),
    "betaincinv": Tol(16),
    "dirichlet_grad": Tol(32),
    "sigmoid_difference": Tol(4),
    "vonmises_cdf": Tol(8),
    "vonmises_cdf_grad_concentration": Tol(8),
    "vonmises_cdf_grad_kk": Tol(64),
    "vonmises_grad_dconcentration": Tol(64),
    "vonmises_grad": Tol(16),
    "vonmises_shift_wrap": Tol(8),
    # von Mises-Fisher: 48-node quadratures in double for both dtypes (sin, log, exp per node; the device's
    # libm differs from glibc by an ulp or two per call). Not yet measured on a device: a first estimate.
    "vmf_grad_u": Tol(256),
    "vmf_grad_u_dkappa": Tol(1024),  # a difference of the sides' second moments (as the odd central moments)
    "vmf_cdf_u": Tol(256),
    "vmf_moments": Tol(256),
    "vmf_central_moment": Tol(1024),  # odd moments are differences of the two sides' integrals
    # sums of d products per row (the reflection), an FMA on the device: coordinates near 0 cancel
    "vmf_direction": Tol(16, "tensor"),
    "vmf_direction_backward": Tol(16, "tensor"),
    # Truncated Normal: erfc / exp / log in double (the device's libm differs by an ulp or two per call);
    # z = loc + scale x and dz/dloc = 1 - D_a - D_b cancel near 0. Not yet measured on a device: a first estimate.
    "truncated_normal_icdf": Tol(32, "tensor"),
    "truncated_normal_backward": Tol(32, "tensor"),
    # z = loc + scale * noise: an FMA on the device, two roundings on the CPU; z near 0 cancels.
    "mixture_shared_cov_rsample": Tol(8, "tensor"),
    "mixture_diag_normals_rsample": Tol(8, "tensor"),
    "mixture_gaussian_scale_rsample": Tol(8, "tensor"),
    "mixture_discrete_gaussian_scale_rsample": Tol(8, "tensor"),
    # Sums over samples, accumulated with atomics in no fixed order (float32 vs float64 on the CPU: up to
    # 173 ulps of the largest gradient over 2**15 samples).
    "mixture_shared_cov_backward": Tol(16, "tensor", per_sqrt=4),
    "mixture_diag_normals_backward": Tol(16, "tensor", per_sqrt=4),
    "mixture_gaussian_scale_backward": Tol(16, "tensor", per_sqrt=4),
    "mixture_discrete_gaussian_scale_backward": Tol(16, "tensor", per_sqrt=4),
    "dirichlet_copula_rho": Tol(16),
    "gaussian_copula_rho": Tol(8),
    # Small probabilities are differences of larger terms (float32 vs float64 on the CPU: 1600 ulps of
    # the element, 0.8 of the largest).
    "bivariate_normal_cdf": Tol(8, "tensor"),
    "chi2_reflect": Tol(8),
    # Outputs with sample mean 0 (the construction subtracts the mean): 1.9 / 2.6 ulps of the largest.
    "antithetic_construction": Tol(16, "tensor"),
    "antithetic_normal_standardized": Tol(16, "tensor"),
}

# Gradients (autograd on both devices). The Gamma-family formulas multiply by the density
# exp((a - 1) log x - x - lgamma(a)), formed with torch.lgamma: at a = 3000 its terms are ~2e4, so one
# ulp of theirs is 0.4% of the density in float32 (CPU float32 vs float64: 33,000 ulps), and CUDA's
# lgammaf (up to 6 ulps) can move it further. Sums over broadcast dimensions add per_sqrt.
GRAD_ULPS = {
    "gammainc": Tol(1 << 18, per_sqrt=4),
    "gammaincc": Tol(1 << 18, per_sqrt=4),
    "gammaincinv": Tol(1 << 18, per_sqrt=4),
    # The Beta density from lgamma (torch's CPU and CUDA lgamma differ by a few ulps of lgamma(a)).
    "betainc": Tol(1 << 18, per_sqrt=4),
    "betaincc": Tol(1 << 18, per_sqrt=4),
    "betaincinv": Tol(1 << 18, per_sqrt=4),
    "sigmoid_difference": Tol(16, per_sqrt=4),
    "vonmises_cdf": Tol(1024, per_sqrt=4),  # the density exp(kappa (cos x - 1)) / (2 pi i0e(kappa)): 88
    "vonmises_shift_wrap": Tol(4, per_sqrt=4),
    # the density exp(nu log(u (2 - u)) - kappa u - log Z_u): terms ~kappa u, as the Gamma family's lgamma
    "vmf_cdf_u": Tol(1 << 18, per_sqrt=4),
    "vmf_grad_u": Tol(1 << 12, per_sqrt=4),
    "vmf_grad_u_dkappa": Tol(1 << 12, per_sqrt=4),
    "vmf_moments": Tol(1024, per_sqrt=4),
    "vmf_central_moment": Tol(4096, per_sqrt=4),
    "vmf_direction": Tol(64, "tensor", per_sqrt=4),  # the upstream gradient, summed over broadcast dimensions
    "chi2_reflect": Tol(128),  # 23 on the CPU
    "mixture_shared_cov_rsample": Tol(64, "tensor", per_sqrt=4),  # the backward ops: 22-32 on the CPU
    "mixture_diag_normals_rsample": Tol(64, "tensor", per_sqrt=4),
    "mixture_gaussian_scale_rsample": Tol(64, "tensor", per_sqrt=4),
    "mixture_discrete_gaussian_scale_rsample": Tol(64, "tensor", per_sqrt=4),
    "bivariate_normal_cdf": Tol(64, "tensor", per_sqrt=4),
}
# A sampler's autograd formula: grad * dx/dparam from this deterministic op, at (parameter, draw).
SAMPLER_GRAD_OP = {"standard_gamma": "standard_gamma_grad", "log_standard_gamma": "log_standard_gamma_grad",
                   "vonmises_sample": "vonmises_grad", "standard_beta": "standard_beta_grad",
                   "standard_dirichlet": "dirichlet_grad", "vmf_sample_u": "vmf_grad_u"}


def _sampler_formula(name, params, x, weight, extra=()):
    """The CPU autograd formula of sampler `name` at the draw x: the gradient of (weight * x).sum() w.r.t.
    each parameter in params (tensors of the draw's shape), as gradkern/_gamma.py and _beta.py register it."""
    op = getattr(OPS, SAMPLER_GRAD_OP[name])
    if name == "standard_beta":
        return [weight * g for g in op(params[0], params[1], x)]
    if name == "standard_dirichlet":
        alpha = params[0]
        total = alpha.sum(-1, keepdim=True).expand_as(alpha).contiguous()
        g = op(x, alpha.contiguous(), total)
        return [g * (weight - (x * weight).sum(-1, keepdim=True))]
    return [weight * op(params[0], x, *extra)]  # extra: the sampler's int arguments (vmf_sample_u's d)

# Parameter values at which each sampler's CUDA draws are compared with its CPU draws.
DIST_PARAMS = {
    # Not alpha = 1e-3: there most draws underflow (to 0 or subnormals, P ~ 0.9 in float32, 0.5 in float64),
    # and where torch's CPU and CUDA samplers round them differs; log_standard_gamma covers tiny alpha.
    "standard_gamma": [0.1, 0.5, 1.0, 3.0, 50.0, 1e3],
    "log_standard_gamma": [1e-5, 1e-3, 0.1, 0.5, 1.0, 3.0, 1e3],
    "vonmises_sample": [1e-3, 0.1, 1.0, 4.0, 50.0, 1e4],
    "standard_beta": [(0.5, 0.5), (2.0, 5.0), (1e-3, 1.0), (30.0, 0.2)],  # (concentration1, concentration0)
    "standard_dirichlet": [(0.3, 1.0, 4.0), (2.0, 2.0, 2.0)],  # the concentration; marginals compared
    "dirichlet_copula": [2, 3, 7],  # n, the number of mutually antithetic uniforms
    "gaussian_copula": [2, 3, 7],
    "vmf_sample_u": [(0.0, 3), (1.0, 2), (4.0, 3), (50.0, 10), (1e4, 200)],  # (concentration, d)
    "vmf_noise": [2, 5],  # d: d - 1 normals per element of like
}
DIST_DRAWS = 200_000
KS_P_MIN = 1e-5  # per comparison; the seeds are fixed, so a pass is a pass on every rerun of one build

DETERMINISTIC = [n for n in ALL_OPS if not _is_random(n)]
RANDOM = [n for n in ALL_OPS if _is_random(n)]


def _tensor_inputs(sample):
    return any(isinstance(a, torch.Tensor) for a in sample.args)


def _device_ops(ops):
    """The ops that take a tensor (those without run on the CPU whatever the device, e.g.
    antithetic_reflection_table)."""
    return [n for n in ops if n in SAMPLES and any(_tensor_inputs(s) for s in SAMPLES[n]("cpu", torch.float64))]


# --- the tables cover the ops (these run without a device) -------------------------------------------------
def test_every_deterministic_op_has_tolerances():
    missing = sorted(set(_device_ops(DETERMINISTIC)) - set(ULPS))
    assert not missing, f"tests/test_cuda.py: add a CPU/CUDA tolerance to ULPS for {missing}"
    stale = sorted(set(ULPS) - set(DETERMINISTIC)) + sorted(set(GRAD_ULPS) - set(ALL_OPS))
    assert not stale, f"tests/test_cuda.py: ULPS / GRAD_ULPS name ops that do not exist (renamed?): {stale}"


def test_every_differentiable_op_has_gradient_tolerances():
    want = {n for n in ALL_OPS if n in SAMPLES and any(s.grad for s in SAMPLES[n]("cpu", torch.float64))}
    missing = sorted(n for n in want - set(GRAD_ULPS) if n not in SAMPLER_GRAD_OP)
    assert not missing, f"tests/test_cuda.py: add a gradient tolerance to GRAD_ULPS for {missing}"
    for sampler, op in SAMPLER_GRAD_OP.items():
        assert sampler in RANDOM and op in DETERMINISTIC, (sampler, op)
    assert sorted(n for n in want if n in RANDOM) == sorted(SAMPLER_GRAD_OP), "a differentiable sampler lacks its formula"


def test_every_sampler_has_distribution_cases():
    missing = sorted(set(RANDOM) - set(DIST_PARAMS))
    assert not missing, f"tests/test_cuda.py: add the sampler(s) {missing} to DIST_PARAMS"


# --- helpers -------------------------------------------------------------------------------------------
def _to(sample, device, dtype=None):
    """The sample with its tensors on `device` (and its floating data tensors in `dtype`; lookup tables,
    whose dims are None, keep theirs)."""
    args = []
    for a, d in zip(sample.args, sample.dims):
        if isinstance(a, torch.Tensor):
            if dtype is not None and d is not None and a.is_floating_point():
                a = a.to(dtype)
            a = a.to(device)
        args.append(a)
    return sample.replace(args)


def _grown(sample, elements=GROWN_ELEMENTS):
    grow = sample.grow or sample.batch[:1]
    if not grow:
        return None
    sizes = _sizes(sample)
    factor = math.ceil(elements / math.prod(sizes[c] for c in set(sample.batch + grow)))
    args = _map_letter(sample, grow, lambda a, d: a.repeat(*[factor if i == d else 1 for i in range(a.dim())]))
    return sample.replace(args)


def _summed_terms(sample, out_dims):
    """How many elements of the batch are summed into one element of an output with these dims."""
    sizes = _sizes(sample)
    return max(1, math.prod(sizes[c] for c in sample.batch if c not in (out_dims or "")))


def ulp_distance(got, want, scale):
    """|got - want| in units in the last place of want's dtype, per element: at |want| ("elem") or at
    the largest finite |want| ("tensor"). NaN against NaN and equal infinities count 0; NaN against a
    number, or differing infinities, count inf."""
    got, want = got.detach().cpu(), want.detach().cpu()
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, want.dtype, got.shape, want.shape)
    if got.numel() == 0:
        return torch.zeros(got.shape, dtype=torch.float64)
    fin = torch.isfinite(want)
    if scale == "elem":
        ref = want.abs()
    else:
        peak = want.abs()[fin].max() if fin.any() else torch.zeros((), dtype=want.dtype)
        ref = peak.expand(want.shape)
    spacing = (torch.nextafter(ref, torch.full_like(ref, math.inf)) - ref).double()
    dist = (got.double() - want.double()).abs() / spacing
    same = (got == want) | (torch.isnan(got) & torch.isnan(want))
    dist = torch.where(same, torch.zeros_like(dist), dist)
    return torch.where(torch.isfinite(dist) | same, dist, torch.full_like(dist, math.inf))


def _report(**record):
    if REPORT:
        with open(REPORT, "a") as f:
            f.write(json.dumps(record, default=str) + "\n")


def _check_ulps(what, name, kind, got, want, tol, summed=1, dtype=None):
    dist = ulp_distance(got, want, tol.scale)
    worst = float(dist.max()) if dist.numel() else 0.0
    bound = tol.bound(summed)
    where = None
    if dist.numel() and worst > 0:
        i = int(dist.flatten().argmax())
        where = {"index": np.unravel_index(i, tuple(dist.shape)) if dist.dim() else (),
                 "cuda": float(got.flatten()[i]), "cpu": float(want.flatten()[i])}
    _report(check=kind, op=name, dtype=str(dtype or want.dtype), what=what, max_ulps=worst, bound=bound,
            scale=tol.scale, numel=want.numel(), worst=where)
    assert worst <= bound, f"{what}: CUDA vs CPU {worst:.4g} ulps ({tol.scale}) > {bound:.4g}; worst {where}"


REDUCED = [torch.float16, torch.bfloat16]


# --- CUDA against the CPU: values ----------------------------------------------------------------------
@cuda_test
@pytest.mark.parametrize("size", ["contract", "grown"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES + REDUCED, ids=str)
@pytest.mark.parametrize("name", _device_ops(DETERMINISTIC))
def test_cuda_matches_cpu_in_ulps(name, dtype, size):
    base = torch.float32 if dtype in REDUCED else dtype
    checked = 0
    for sample in _samples(name, "cpu", base):
        if not _tensor_inputs(sample):
            continue
        if size == "grown":
            sample = _grown(sample)
            if sample is None:
                continue
        if dtype in REDUCED:
            sample = _to(sample, "cpu", dtype)
            try:
                cpu = _call(name, sample)
            except RuntimeError as e:  # the op takes float32 and float64 only (and says so)
                assert "float" in str(e) or "Half" in str(e) or "BFloat16" in str(e), e
                continue
            tol = Tol(1, ULPS[name].scale)  # float32 on both, rounded once: at most one ulp of the dtype
        else:
            cpu = _call(name, sample)
            tol = ULPS[name]
        gpu = _call(name, _to(sample, "cuda"))
        for i, (c, g) in enumerate(zip(cpu, gpu)):
            assert g.device.type == "cuda" and g.shape == c.shape and g.dtype == c.dtype, (name, i, g.shape, g.dtype)
            summed = _summed_terms(sample, sample.out[i]) if tol.per_sqrt else 1
            _check_ulps(f"{name}{sample} output {i}", name, f"value/{size}", g, c, tol, summed, dtype)
        checked += 1
    if not checked:
        pytest.skip(f"{name}: no {dtype} sample ({size})")


# --- CUDA against the CPU: gradients ---------------------------------------------------------------------
def _autograd(name, sample, weight_seed=7):
    args = [a.detach().clone().requires_grad_() if i in sample.grad else a for i, a in enumerate(sample.args)]
    out = _call(name, sample, args=args) if not _is_random(name) else _call(name, sample, seed=0, args=args)
    gen = torch.Generator().manual_seed(weight_seed)
    weights = [torch.randn(o.shape, generator=gen, dtype=torch.float64).to(o.dtype).to(o.device) for o in out]
    loss = sum((o * w).sum() for o, w in zip(out, weights))
    grads = torch.autograd.grad(loss, [args[i] for i in sample.grad])
    return out, weights, grads


@cuda_test
@pytest.mark.parametrize("size", ["contract", "grown"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", sorted(set(GRAD_ULPS) | set(SAMPLER_GRAD_OP)))
def test_cuda_gradients_match_cpu(name, dtype, size):
    checked = 0
    for sample in _samples(name, "cpu", dtype):
        if not sample.grad:
            continue
        if size == "grown":
            sample = _grown(sample)
            if sample is None:
                continue
        gsample = _to(sample, "cuda")
        if name in SAMPLER_GRAD_OP:
            # The CUDA draw's gradient against the CPU formula at that draw: grad * dx/dparam, summed over
            # the parameter's broadcast dimensions (the contract samples do not broadcast a parameter).
            out, weights, grads = _autograd(name, gsample)
            x = out[0].detach().cpu()
            params = [sample.args[i] for i in sample.grad]
            extra = [a for a in sample.args if not isinstance(a, torch.Tensor)]
            wants = _sampler_formula(name, [p.expand(x.shape) for p in params], x, weights[0].cpu(), extra)
            tol = ULPS[SAMPLER_GRAD_OP[name]]
            for j, (g, w, p) in enumerate(zip(grads, wants, params)):
                _check_ulps(f"{name}{sample} gradient {j}", name, f"grad/{size}", g, w.sum_to_size(p.shape),
                            Tol(tol.ulps + 2, tol.scale))
        else:
            _, _, want = _autograd(name, sample)
            _, _, got = _autograd(name, gsample)
            tol = GRAD_ULPS[name]
            for j, (g, w) in enumerate(zip(got, want)):
                assert g.device.type == "cuda"
                summed = max(1, max(o.numel() for o in _call(name, sample)) // max(1, w.numel()))
                _check_ulps(f"{name}{sample} gradient {j}", name, f"grad/{size}", g, w, tol, summed)
        checked += 1
    if not checked:
        pytest.skip(f"{name}: no differentiable {size} sample")


# --- samplers: the same distribution on both devices -------------------------------------------------------
def _draws(name, param, dtype, device, seed):
    gen = torch.Generator(device=device).manual_seed(seed)
    if name in ("dirichlet_copula", "gaussian_copula"):
        like = torch.zeros((), dtype=dtype, device=device).expand(DIST_DRAWS)
        return getattr(OPS, name)(like, int(param), generator=gen)  # (n, DIST_DRAWS)
    if name == "standard_beta":
        a, b = (torch.full((DIST_DRAWS,), v, dtype=dtype, device=device) for v in param)
        return OPS.standard_beta(a, b, generator=gen)[None]  # (1, DIST_DRAWS)
    if name == "standard_dirichlet":
        alpha = torch.tensor(param, dtype=dtype, device=device).expand(DIST_DRAWS, len(param))
        return OPS.standard_dirichlet(alpha, generator=gen).t()  # (K, DIST_DRAWS): marginals and correlations
    if name == "vmf_noise":  # (d - 1, DIST_DRAWS): each position of a row, and the correlations between them
        return OPS.vmf_noise(torch.zeros(DIST_DRAWS, dtype=dtype, device=device), int(param), generator=gen).t()
    if name == "vmf_sample_u":
        kappa, d = param
        return OPS.vmf_sample_u(torch.full((DIST_DRAWS,), kappa, dtype=dtype, device=device), d, generator=gen)[None]
    p = torch.full((DIST_DRAWS,), param, dtype=dtype, device=device)
    return getattr(OPS, name)(p, generator=gen)[None]  # (1, DIST_DRAWS)


def _ks(a, b):
    from scipy import stats

    return float(stats.ks_2samp(a, b).pvalue)


def _mean_z(a, b):
    se = math.sqrt(a.var() / a.size + b.var() / b.size)
    return abs(a.mean() - b.mean()) / se if se > 0 else (0.0 if a.mean() == b.mean() else math.inf)


@cuda_test
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", RANDOM)
def test_cuda_sampler_distribution_matches_cpu(name, dtype):
    failures = []
    for k, param in enumerate(DIST_PARAMS[name]):
        cpu = _draws(name, param, dtype, "cpu", seed=100 + k).double().numpy()
        gpu = _draws(name, param, dtype, "cuda", seed=200 + k).double().cpu().numpy()
        assert cpu.shape == gpu.shape and np.isfinite(gpu).all(), (name, param, gpu.shape)
        columns = [(f"row {i}", cpu[i], gpu[i]) for i in range(cpu.shape[0])]
        if cpu.shape[0] > 1:
            if name != "standard_dirichlet":  # a Dirichlet's coordinates sum to 1 by construction
                columns.append(("row sum", cpu.sum(0), gpu.sum(0)))
            cc, cg = np.corrcoef(cpu), np.corrcoef(gpu)
            gap = float(np.abs(cc - cg).max())
            if gap > 5 * math.sqrt(2.0 / DIST_DRAWS):
                failures.append(f"param {param}: correlation matrices differ by {gap:.3g}")
        for label, a, b in columns:
            p = _ks(a, b)
            z = _mean_z(a, b)
            if p < KS_P_MIN or z > 5:
                failures.append(f"param {param}, {label}: KS p = {p:.3g}, means {a.mean():.6g} (CPU) vs "
                                f"{b.mean():.6g} (CUDA), {z:.2f} standard errors")
    assert not failures, f"{name} {dtype}: CUDA draws differ in distribution from the CPU's:\n" + "\n".join(failures)


# --- mixed devices ---------------------------------------------------------------------------------------
def _op_with_generator(name, args, kwargs, generator):
    kwargs = dict(kwargs)
    if _is_random(name):
        kwargs["generator"] = generator
    out = getattr(OPS, name)(*args, **kwargs)
    return out if isinstance(out, tuple) else (out,)


def _assert_clear_device_error(err, what):
    # Clear: it is about devices and names one (gradkern's checks name the argument and its device,
    # TensorIterator's both devices, torch's generator check both device types), and it is not an
    # internal assertion or a CUDA fault from a kernel that read host memory.
    msg = str(err)
    low = msg.lower()
    assert "device" in low and ("cpu" in low or "cuda" in low) and "internal assert" not in low \
        and "illegal" not in low, f"{what}: not a clear device error: {msg[:400]}"


@cuda_test
@pytest.mark.parametrize("name", _device_ops(ALL_OPS))
def test_mixed_devices_raise(name):
    checked = 0
    for sample in _samples(name, "cpu", torch.float64):
        slots = [i for i, a in enumerate(sample.args) if isinstance(a, torch.Tensor)]
        gpu = _to(sample, "cuda")
        cuda_gen = lambda: torch.Generator(device="cuda").manual_seed(0)  # noqa: E731
        if len(slots) >= 2:
            want = _op_with_generator(name, gpu.args, sample.kwargs, cuda_gen())
            for i in slots:
                args = list(gpu.args)
                args[i] = sample.args[i]
                what = f"{name}{sample} with argument {i} on the CPU"
                optional = sample.dims[i] is None or sample.args[i].dim() == 0  # a table, a 0-dim scalar
                try:
                    got = _op_with_generator(name, args, sample.kwargs, cuda_gen())
                    torch.cuda.synchronize()
                except RuntimeError as e:
                    _assert_clear_device_error(e, what)
                    continue
                assert optional, f"{what}: no error"
                for g, w in zip(got, want):  # accepted: it must be the all-CUDA result
                    torch.testing.assert_close(g, w, rtol=0, atol=0, equal_nan=True)
            checked += 1
        if _is_random(name):
            with pytest.raises(RuntimeError) as e:
                _op_with_generator(name, gpu.args, sample.kwargs, torch.Generator().manual_seed(0))
            _assert_clear_device_error(e.value, f"{name}{sample}: CPU generator, CUDA tensors")
            with pytest.raises(RuntimeError) as e:
                _op_with_generator(name, sample.args, sample.kwargs, cuda_gen())
            _assert_clear_device_error(e.value, f"{name}{sample}: CUDA generator, CPU tensors")
            checked += 1
    torch.cuda.synchronize()  # no sticky error left behind
    if not checked:
        pytest.skip(f"{name}: one tensor argument and no generator")


# --- streams ---------------------------------------------------------------------------------------------
def _placeholder(t):
    """A tensor of t's shape and dtype whose values would give other results: NaN for floats, an
    out-of-range index for integers."""
    if t.is_floating_point():
        return torch.full_like(t, math.nan)
    return torch.full_like(t, 1 << 40)


def _first(samples, k=2):
    return [s for s in samples if _tensor_inputs(s)][:k]


@cuda_test
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", _device_ops(ALL_OPS))
def test_runs_on_current_stream(name, dtype):
    for sample in _first(_samples(name, "cpu", dtype)):
        gpu = _to(sample, "cuda")
        want = _call(name, gpu, seed=0)  # the default stream
        holders = [_placeholder(a) if isinstance(a, torch.Tensor) else a for a in gpu.args]
        torch.cuda.synchronize()
        side = torch.cuda.Stream()
        with torch.cuda.stream(side):
            torch.cuda._sleep(50_000_000)  # ~25 ms: a kernel on another stream would read the placeholders
            for h, a in zip(holders, gpu.args):
                if isinstance(a, torch.Tensor):
                    h.copy_(a)
            got = _call(name, sample.replace(holders), seed=0)
            done = torch.cuda.Event()
            done.record(side)
        done.synchronize()
        torch.cuda.synchronize()
        tol = ULPS.get(name)
        for i, (g, w) in enumerate(zip(got, want)):
            if tol is not None and tol.per_sqrt:  # atomics: the last bits may differ between launches
                _check_ulps(f"{name}{sample} on a side stream", name, "stream", g, w, tol,
                            _summed_terms(sample, sample.out[i]))
            else:
                torch.testing.assert_close(g, w, rtol=0, atol=0, equal_nan=True,
                                           msg=lambda m: f"{name}{sample}: side stream vs default stream: {m}")


# --- CUDA graphs -----------------------------------------------------------------------------------------
def _capture(fn, warmup=2):
    """(graph, static outputs) of fn() captured after warm-up calls on a side stream (torch's recipe)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(warmup):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fn()
    return graph, out


def _replay(graph, out):
    graph.replay()
    torch.cuda.synchronize()
    return tuple(o.clone() for o in (out if isinstance(out, tuple) else (out,)))


def _same(a, b):
    return all(torch.equal(x, y) or (x.isnan() == y.isnan()).all() and torch.equal(x.nan_to_num(), y.nan_to_num())
               for x, y in zip(a, b))


@cuda_test
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", _device_ops(DETERMINISTIC))
def test_graph_replay_deterministic(name, dtype):
    # Capture also proves the kernels launch on the current stream and never synchronise the host.
    for sample in _first(_samples(name, "cpu", dtype)):
        gpu = _to(sample, "cuda")
        want = _call(name, gpu)
        graph, out = _capture(lambda: _call(name, gpu))
        for _ in range(2):
            got = _replay(graph, out)
            tol = ULPS[name]
            for i, (g, w) in enumerate(zip(got, want)):
                if tol.per_sqrt:
                    _check_ulps(f"{name}{sample} graph replay", name, "graph", g, w, tol,
                                _summed_terms(sample, sample.out[i]))
                else:
                    torch.testing.assert_close(g, w, rtol=0, atol=0, equal_nan=True)


@cuda_test
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", RANDOM)
def test_graph_replay_sampler(name, dtype):
    for sample in _first(_samples(name, "cpu", dtype)):
        gpu = _to(sample, "cuda")
        # The default CUDA generator, as a captured training step uses it.
        graph, out = _capture(lambda: _call(name, gpu))
        torch.cuda.manual_seed(1234)
        a1, a2 = _replay(graph, out), _replay(graph, out)
        assert not _same(a1, a2), f"{name}{sample}: two graph replays gave the same draw"
        torch.cuda.manual_seed(1234)
        b1, b2 = _replay(graph, out), _replay(graph, out)
        assert _same(a1, b1) and _same(a2, b2), f"{name}{sample}: re-seeding did not replay the same sequence"
        torch.cuda.manual_seed(1234)
        e1, e2 = _call(name, gpu), _call(name, gpu)
        assert _same(a1, e1) and _same(a2, e2), f"{name}{sample}: graph replays differ from the eager draws"
        for o in a1:
            assert o.device.type == "cuda" and torch.isfinite(o).all()


@cuda_test
@pytest.mark.skipif(not hasattr(torch.cuda.CUDAGraph, "register_generator_state"),
                    reason="this torch has no CUDAGraph.register_generator_state")
@pytest.mark.parametrize("name", RANDOM)
def test_graph_replay_sampler_own_generator(name):
    sample = _first(_samples(name, "cpu", torch.float32), 1)[0]
    gpu = _to(sample, "cuda")
    gen = torch.Generator(device="cuda")
    fn = lambda: _op_with_generator(name, gpu.args, sample.kwargs, gen)  # noqa: E731
    gen.manual_seed(99)
    for _ in range(2):  # warm-up
        fn()
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    graph.register_generator_state(gen)
    with torch.cuda.graph(graph):
        out = fn()
    gen.manual_seed(5)
    a1, a2 = _replay(graph, out), _replay(graph, out)
    gen.manual_seed(5)
    b1, b2 = _replay(graph, out), _replay(graph, out)
    gen.manual_seed(5)
    e1, e2 = fn(), fn()
    assert not _same(a1, a2), f"{name}: two replays gave the same draw"
    assert _same(a1, b1) and _same(a2, b2), f"{name}: re-seeding the generator did not replay the sequence"
    assert _same(a1, e1) and _same(a2, e2), f"{name}: replays differ from the eager draws of the generator"


PUBLIC_SAMPLERS = ["gamma_rsample", "dirichlet_rsample", "vonmises_rsample", "antithetic.normal_rsample"]


@cuda_test
@pytest.mark.parametrize("name", PUBLIC_SAMPLERS)
def test_graph_replay_public_sampler(name):
    # The public functions whole (promotion, validation, the ops, the torch code around them) must
    # capture: no host synchronisation anywhere on their forward path.
    for case in COMPOSITES[name]("cuda", torch.float32, 64):
        inputs = [x.detach() for x in case.inputs]
        with torch.no_grad():
            graph, out = _capture(lambda: case.fn(*inputs))
            torch.cuda.manual_seed(7)
            a1, a2 = _replay(graph, out), _replay(graph, out)
            torch.cuda.manual_seed(7)
            e1, e2 = (case.fn(*inputs),), (case.fn(*inputs),)
        assert a1[0].shape == case.shape and not _same(a1, a2), name
        assert _same(a1, e1) and _same(a2, e2), f"{name}: graph replays differ from the eager draws"


# --- 64-bit indexing -------------------------------------------------------------------------------------
PERIOD = 997  # prime: an index wrapped at 2**31 or 2**32 lands on another residue, hence another value
BIG_ROWS = (2 ** 31 + 2 ** 22) // PERIOD + 1  # rows of PERIOD elements: 2**31 + ~4e6 elements in all
BIG_NEED = 24 * 2 ** 30  # bytes free: float32 input and output (8 GiB each) and a bool mask


def _need_big_memory():
    torch.cuda.empty_cache()
    free = torch.cuda.mem_get_info()[0]
    if free < BIG_NEED:
        pytest.skip(f"needs {BIG_NEED / 2 ** 30:.0f} GiB free on the device, {free / 2 ** 30:.1f} GiB are")


@cuda_test
@pytest.mark.slow
def test_elementwise_over_2_31_elements():
    _need_big_memory()
    n = BIG_ROWS * PERIOD
    assert n > 2 ** 31
    base = torch.linspace(-3.0, 3.0, PERIOD, dtype=torch.float32)
    loc = torch.tensor(0.75, dtype=torch.float32)
    x = base.cuda().repeat(BIG_ROWS)
    out = OPS.vonmises_shift_wrap(x, loc.cuda())
    del x
    assert out.shape == (n,) and out.device.type == "cuda"
    want = OPS.vonmises_shift_wrap(base, loc)
    _check_ulps("vonmises_shift_wrap over 2**31 elements, first period", "vonmises_shift_wrap", "value/2**31",
                out[:PERIOD], want, ULPS["vonmises_shift_wrap"])
    # Every element: row r of the output is f(base) as row 0 is (the input repeats, the op is elementwise).
    rows = out.view(BIG_ROWS, PERIOD)
    same = (rows == rows[0]).all(dim=1)
    bad = (~same).nonzero().flatten()
    assert bad.numel() == 0, (f"{bad.numel()} rows of {PERIOD} differ from row 0, the first at element "
                              f"{int(bad[0]) * PERIOD} (2**31 = {2 ** 31})")
    del out, rows, same
    torch.cuda.empty_cache()


@cuda_test
@pytest.mark.slow
def test_sampler_over_2_31_elements():
    from scipy import special

    _need_big_memory()
    n = BIG_ROWS * PERIOD
    kappas = (0.5, 20.0)
    pattern = torch.tensor([kappas[j % 2] for j in range(PERIOD)], dtype=torch.float32)
    kappa = pattern.cuda().repeat(BIG_ROWS)
    gen = torch.Generator(device="cuda").manual_seed(2 ** 31 - 1)
    out = OPS.vonmises_sample(kappa, generator=gen)
    del kappa
    assert out.shape == (n,)
    assert bool(torch.isfinite(out).all()) and bool((out.abs() <= math.pi).all()), "samples outside [-pi, pi]"
    rows = out.view(BIG_ROWS, PERIOD)
    # The first elements are those of a small call from the same seed (element i reads subsequence i).
    gen.manual_seed(2 ** 31 - 1)
    small = OPS.vonmises_sample(pattern.cuda(), generator=gen)
    assert torch.equal(rows[0], small), "element i of a large draw is not element i of a small one"
    # Windows at the start, straddling 2**31 and at the end: each element drew with its own kappa
    # (mean cos x = I1(kappa) / I0(kappa)) and its own stream (rows past 2**31 repeat none before it).
    window = 4000
    at_2_31 = 2 ** 31 // PERIOD
    for r0 in (0, at_2_31 - window // 2, BIG_ROWS - window):
        w = rows[r0:r0 + window].double().cos()
        for j, k in enumerate(kappas):
            c = w[:, j::2].flatten()
            truth = special.i1e(k) / special.i0e(k)
            se = float(c.std()) / math.sqrt(c.numel())
            assert abs(float(c.mean()) - truth) < 5 * se, (
                f"rows {r0}..{r0 + window} (elements from {r0 * PERIOD}), kappa {k}: mean cos "
                f"{float(c.mean()):.5f} vs {truth:.5f} (se {se:.2g})")
    assert not torch.equal(rows[at_2_31 + 1], rows[0]) and not torch.equal(rows[-1], rows[0])
    del out, rows
    torch.cuda.empty_cache()
