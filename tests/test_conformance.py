"""Drop-in conformance: every gradkern distribution passes the generic checks that torch.distributions'
own test suite (test/distributions/test_distributions.py), Pyro's (tests/distributions/: shapes, support,
expand, pickle, Gaussian mixtures) and TensorFlow Probability's von_mises_test.py apply to theirs, with
those suites' tolerances, written anew for gradkern's classes; and the fake (meta) kernels check devices
and dtypes as the real kernels do.

Tolerances: torch's ``assertEqual`` defaults (``torch.testing.assert_close``: float32 rtol 1.3e-6 / atol
1e-5, float64 1e-7 / 1e-7), torch's ``icdf(cdf(x))`` relative error 1e-4 and Monte Carlo entropy atol 0.2
and KL precision 0.1; TFP's ``assertAllClose`` default (rtol = atol = 1e-6) and its per-test values
(cdf 1e-4, sample moments rtol 0.1, sample-gradient 0.1).
"""
import copy
import io
import math
import pickle
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
import torch.distributions as td
from scipy import stats
from torch.distributions import constraints
from torch.distributions.constraint_registry import biject_to

import gradkern
from gradkern import distributions as D
from conftest import DEVICES, FLOAT_DTYPES

OPS = torch.ops.gradkern


# --- the cases ------------------------------------------------------------------------------------------
@dataclass
class Case:
    """A gradkern distribution class, its constructor arguments and its reference."""
    name: str
    cls: type
    params: callable  # (dtype, device) -> dict of constructor arguments (tensors, broadcastable)
    reference: callable  # dict of arguments -> the torch distribution it must agree with
    bad_params: list = field(default_factory=list)  # [dict of overrides] each invalid
    bad_value: callable = None  # dist -> a value outside the support (log_prob raises under validation)
    kwargs: dict = field(default_factory=dict)  # non-tensor constructor arguments


def _t(values, dtype, device):
    return torch.tensor(values, dtype=dtype, device=device)


def _mixture_reference(family):
    """torch's MixtureSameFamily built from the arguments (not from the class's own properties)."""
    def reference(p):
        logits = p["component_logits"]
        if family == "diag_normals":
            scales = p["coord_scale"]
        else:
            scales = p["coord_scale"].unsqueeze(-2)
        if "component_scale" in p:
            scales = scales * p["component_scale"].unsqueeze(-1)
        locs = p["locs"] if "locs" in p else torch.zeros_like(scales)
        locs, scales = torch.broadcast_tensors(locs, scales)
        batch = torch.broadcast_shapes(logits.shape[:-1], locs.shape[:-2])
        return td.MixtureSameFamily(
            td.Categorical(logits=logits.expand(batch + logits.shape[-1:])),
            td.Independent(td.Normal(locs.expand(batch + locs.shape[-2:]), scales.expand(batch + locs.shape[-2:])), 1))
    return reference


def _mixture_params(family):
    def params(dtype, device):
        g = torch.Generator().manual_seed(3)
        B, K, Dm = 3, 4, 2
        out = {}
        if family != "gaussian_scale":
            out["locs"] = (2 * torch.randn(B, K, Dm, generator=g)).to(dtype=dtype, device=device)
        if family == "diag_normals":
            out["coord_scale"] = (0.5 + torch.rand(B, K, Dm, generator=g)).to(dtype=dtype, device=device)
        else:
            out["coord_scale"] = (0.5 + torch.rand(Dm, generator=g)).to(dtype=dtype, device=device)  # broadcast
        out["component_logits"] = torch.randn(K, generator=g).to(dtype=dtype, device=device)  # broadcast
        if "scale" in family:
            out["component_scale"] = (0.5 + torch.rand(B, K, generator=g)).to(dtype=dtype, device=device)
        if family == "gaussian_scale":  # GaussianScaleMixture(coord_scale, component_logits, component_scale)
            out = {k: out[k] for k in ("coord_scale", "component_logits", "component_scale")}
        return out
    return params


def _mixture_bad(family):
    bad = [{"coord_scale": lambda p: -p["coord_scale"]},
           {"component_logits": lambda p: torch.full_like(p["component_logits"], math.nan)}]
    if family != "gaussian_scale":
        bad.append({"locs": lambda p: torch.full_like(p["locs"], math.nan)})
    if "scale" in family:
        bad.append({"component_scale": lambda p: torch.zeros_like(p["component_scale"])})
    return bad


CASES = [
    Case("Gamma", D.Gamma,
         lambda dt, dev: {"concentration": _t([0.5, 2.0, 7.0], dt, dev), "rate": _t([1.5, 0.5, 2.0], dt, dev)},
         lambda p: td.Gamma(**p),
         bad_params=[{"concentration": lambda p: -p["concentration"]}, {"rate": lambda p: 0 * p["rate"]}],
         bad_value=lambda d: -torch.ones(d.batch_shape, dtype=d.mean.dtype)),
    Case("Chi2", D.Chi2,
         lambda dt, dev: {"df": _t([0.7, 3.0, 12.0], dt, dev)},
         lambda p: td.Chi2(**p),
         bad_params=[{"df": lambda p: -p["df"]}],
         bad_value=lambda d: -torch.ones(d.batch_shape, dtype=d.mean.dtype)),
    Case("Beta", D.Beta,
         lambda dt, dev: {"concentration1": _t([0.5, 2.0, 5.0], dt, dev),
                          "concentration0": _t([1.5, 0.7, 3.0], dt, dev)},
         lambda p: td.Beta(**p),
         bad_params=[{"concentration1": lambda p: -p["concentration1"]},
                     {"concentration0": lambda p: 0 * p["concentration0"]}],
         bad_value=lambda d: torch.full(d.batch_shape, 1.5, dtype=d.mean.dtype)),
    Case("Dirichlet", D.Dirichlet,
         lambda dt, dev: {"concentration": _t([[0.5, 1.0, 2.0, 4.0], [3.0, 0.3, 1.0, 1.0]], dt, dev)},
         lambda p: td.Dirichlet(**p),
         bad_params=[{"concentration": lambda p: -p["concentration"]}],
         bad_value=lambda d: torch.full(d.batch_shape + d.event_shape, 0.5, dtype=d.mean.dtype)),
    Case("StudentT", D.StudentT,
         lambda dt, dev: {"df": _t([2.5, 4.0, 8.0], dt, dev), "loc": _t([0.0, -1.0, 2.0], dt, dev),
                          "scale": _t([1.0, 0.5, 2.0], dt, dev)},
         lambda p: td.StudentT(**p),
         bad_params=[{"df": lambda p: -p["df"]}, {"scale": lambda p: -p["scale"]},
                     {"loc": lambda p: torch.full_like(p["loc"], math.nan)}],
         bad_value=lambda d: torch.full(d.batch_shape, math.nan, dtype=d.mean.dtype)),
    Case("VonMises", D.VonMises,
         lambda dt, dev: {"loc": _t([0.0, 1.0, -2.5], dt, dev), "concentration": _t([0.5, 4.0, 30.0], dt, dev)},
         lambda p: td.VonMises(**p),
         bad_params=[{"concentration": lambda p: -p["concentration"]},
                     {"loc": lambda p: torch.full_like(p["loc"], math.nan)}],
         bad_value=lambda d: torch.full(d.batch_shape, math.nan, dtype=d.mean.dtype)),
    Case("MixtureOfDiagNormalsSharedCovariance", D.MixtureOfDiagNormalsSharedCovariance,
         _mixture_params("shared_cov"), _mixture_reference("shared_cov"), _mixture_bad("shared_cov"),
         lambda d: torch.full(d.batch_shape + d.event_shape, math.nan, dtype=d.mean.dtype)),
    Case("MixtureOfDiagNormals", D.MixtureOfDiagNormals,
         _mixture_params("diag_normals"), _mixture_reference("diag_normals"), _mixture_bad("diag_normals"),
         lambda d: torch.full(d.batch_shape + d.event_shape, math.nan, dtype=d.mean.dtype)),
    Case("MixtureOfDiagNormals-pairwise", D.MixtureOfDiagNormals,
         _mixture_params("diag_normals"), _mixture_reference("diag_normals"), _mixture_bad("diag_normals"),
         lambda d: torch.full(d.batch_shape + d.event_shape, math.nan, dtype=d.mean.dtype),
         kwargs={"velocity": "pairwise"}),
    Case("GaussianScaleMixture", D.GaussianScaleMixture,
         _mixture_params("gaussian_scale"), _mixture_reference("gaussian_scale"), _mixture_bad("gaussian_scale"),
         lambda d: torch.full(d.batch_shape + d.event_shape, math.nan, dtype=d.mean.dtype)),
    Case("DiscreteGaussianScaleMixture", D.DiscreteGaussianScaleMixture,
         _mixture_params("discrete_gaussian_scale"), _mixture_reference("discrete_gaussian_scale"),
         _mixture_bad("discrete_gaussian_scale"),
         lambda d: torch.full(d.batch_shape + d.event_shape, math.nan, dtype=d.mean.dtype)),
]
CASE_IDS = [c.name for c in CASES]
MIXTURES = tuple(c for c in CASES if "Mixture" in c.name)


def make(case, dtype=torch.float64, device="cpu", requires_grad=False, validate_args=None, **overrides):
    params = case.params(dtype, device)
    for name, fn in overrides.items():
        params[name] = fn(params)
    if requires_grad:
        params = {k: v.clone().requires_grad_() for k, v in params.items()}
    return case.cls(**params, **case.kwargs, validate_args=validate_args), params


def gen(seed=0, device="cpu"):
    return torch.Generator(device=device).manual_seed(seed)


# Classes with no torch or Pyro counterpart to conform to: tested against SciPy in their own files.
NO_PEER = {D.TruncatedNormal: "tests/test_truncated.py (scipy.stats.truncnorm)",
           D.Truncated: "tests/test_truncated_mixture.py (SciPy's truncated Gamma, quadrature)",
           # torch's own class (everything inherited) plus rsample and sample(generator=); its arguments are
           # distributions, not the tensors these cases build: tests/test_truncated_mixture.py
           D.MixtureSameFamily: "tests/test_truncated_mixture.py (closed-form gradients)",
           # neither torch nor Pyro has a von Mises-Fisher: mpmath, closed forms and Monte Carlo
           D.VonMisesFisher: "tests/test_vmf.py (mpmath, the d = 3 closed form, Monte Carlo)",
           D.HypersphericalUniform: "tests/test_vmf.py"}


def test_every_class_has_a_case():
    covered = {c.cls for c in CASES}
    assert covered == {getattr(D, n) for n in D.__all__} - set(NO_PEER)


# --- shapes, support, sample_shape ------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_sample_shapes_and_support(case, dtype):
    d, _ = make(case, dtype)
    assert d.support.event_dim == len(d.event_shape)  # Pyro's test_support_shape
    for sample_shape in [(), (2,), torch.Size((2, 3))]:
        for x in (d.sample(sample_shape, generator=gen()), d.rsample(sample_shape, generator=gen())):
            assert x.shape == torch.Size(sample_shape) + d.batch_shape + d.event_shape
            assert x.dtype == dtype
            ok = d.support.check(x)
            assert ok.shape == torch.Size(sample_shape) + d.batch_shape
            assert ok.all()
    assert d.sample(torch.Size((0,))).shape == (0,) + d.batch_shape + d.event_shape
    assert d.sample([4]).shape == (4,) + d.batch_shape + d.event_shape  # a list, as torch accepts
    assert not d.sample().requires_grad  # torch's test_sample_detached


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_log_prob_matches_torch(case, dtype):
    d, p = make(case, dtype)
    ref = case.reference(p)
    assert d.batch_shape == ref.batch_shape and d.event_shape == ref.event_shape
    x = d.sample((5,), generator=gen(1))
    lp = d.log_prob(x)
    assert lp.shape == (5,) + d.batch_shape and lp.dtype == dtype
    torch.testing.assert_close(lp, ref.log_prob(x))
    # Broadcasting values against the batch shape (torch's test_distribution_shape rules).
    x1 = x[0, :1]
    torch.testing.assert_close(d.log_prob(x1), ref.log_prob(x1))


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_log_prob_shape_errors(case):
    # Pyro's test_score_errors_event_dim_mismatch / non_broadcastable_data_shape.
    d, _ = make(case, validate_args=True)
    shape = d.batch_shape + d.event_shape
    with pytest.raises((ValueError, RuntimeError)):
        d.log_prob(torch.ones((shape[0] + 1,) + shape[1:], dtype=torch.float64) * 0.1)
    if d.event_shape:
        with pytest.raises(ValueError):
            d.log_prob(torch.ones(d.batch_shape + (d.event_shape[-1] + 1,), dtype=torch.float64) * 0.1)


# --- expand ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_expand(case):
    d, p = make(case)
    for prefix in [torch.Size(), torch.Size((2,)), torch.Size((2, 2))]:
        shape = prefix + d.batch_shape
        for e in (d.expand(shape), d.expand(list(shape), _instance=None),
                  d.expand(shape, _instance=type(d).__new__(type(d)))):
            assert type(e) is type(d)
            assert e.batch_shape == shape and e.event_shape == d.event_shape
            x = e.sample(generator=gen(2))
            assert x.shape == shape + d.event_shape
            torch.testing.assert_close(e.log_prob(x), d.log_prob(x))
            assert e._validate_args == d._validate_args
            for name in d.arg_constraints:
                assert getattr(e, name).shape[:len(shape)] == shape
            try:
                torch.testing.assert_close(e.cdf(x), d.cdf(x))
            except NotImplementedError:
                pass
            e2 = e.expand((3,) + shape)  # Pyro's test_subsequent_expands_ok
            assert e2.batch_shape == (3,) + shape
    # Subclasses without an __init__ of their own expand to their own type (torch's test_distribution_subclass_expand).
    sub_cls = type("Sub" + case.cls.__name__, (case.cls,), {})
    sub = sub_cls(**p, **case.kwargs)
    assert type(sub.expand((2,) + sub.batch_shape)) is sub_cls
    # Pyro's test_expand_error: a batch shape the distribution does not broadcast to.
    with pytest.raises((RuntimeError, ValueError)):
        d.expand((d.batch_shape[0] + 1,))


# --- cdf / icdf --------------------------------------------------------------------------------------------
CDF_CASES = [c for c in CASES if c.name in ("Gamma", "Chi2", "VonMises", "Beta")]


@pytest.mark.parametrize("case", CDF_CASES, ids=[c.name for c in CDF_CASES])
def test_cdf_icdf_inverse(case):
    # torch's test_cdf_icdf_inverse in float64: relative error of icdf(cdf(x)) below 1e-4; and in float32
    # the round trip in probability space, cdf(icdf(u)) = u.
    d, _ = make(case)
    x = d.sample((20,), generator=gen(3))
    rel_error = (d.icdf(d.cdf(x)) - x).abs() / (1e-10 + x.abs())
    assert rel_error.max() < 1e-4
    d32, _ = make(case, torch.float32)
    u = torch.linspace(0.01, 0.99, 15, dtype=torch.float32)[:, None].expand(15, 3)
    torch.testing.assert_close(d32.cdf(d32.icdf(u)), u)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("case", CDF_CASES, ids=[c.name for c in CDF_CASES])
def test_cdf_log_prob(case, dtype):
    # torch's test_cdf_log_prob: the derivative of the CDF is the density.
    d, _ = make(case, dtype)
    x = d.sample((4,), generator=gen(4)).requires_grad_()
    pdf = d.log_prob(x).exp()
    (dcdf,) = torch.autograd.grad(d.cdf(x).sum(), [x])
    torch.testing.assert_close(dcdf, pdf.detach())


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_cdf_matches_torch_where_torch_has_one(case):
    d, p = make(case)
    ref = case.reference(p)
    x = d.sample((6,), generator=gen(5))
    try:
        want = ref.cdf(x)
    except NotImplementedError:
        if case.name == "VonMises":  # torch has none; scipy's convention (from loc - pi, periodic)
            want = torch.from_numpy(stats.vonmises.cdf(x.numpy(), p["concentration"].numpy(), loc=p["loc"].numpy()))
        elif case.name == "Beta":  # torch has none; scipy's
            want = torch.from_numpy(stats.beta.cdf(x.numpy(), p["concentration1"].numpy(), p["concentration0"].numpy()))
            torch.testing.assert_close(d.icdf(want), x)
        else:
            with pytest.raises(NotImplementedError):
                d.cdf(x)
            with pytest.raises(NotImplementedError):
                d.icdf(torch.full(d.batch_shape, 0.5, dtype=torch.float64))
            return
    torch.testing.assert_close(d.cdf(x), want)


# --- moments, mode, entropy -----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_moments_match_torch(case, dtype):
    d, p = make(case, dtype)
    ref = case.reference(p)
    for attr in ("mean", "variance", "stddev", "mode"):
        try:
            want = getattr(ref, attr)
        except NotImplementedError:
            with pytest.raises(NotImplementedError):
                getattr(d, attr)
            continue
        got = getattr(d, attr)
        assert got.dtype == dtype and got.shape == d.batch_shape + d.event_shape
        torch.testing.assert_close(got, want)
    try:
        want = ref.entropy()
    except NotImplementedError:
        want = None
    if case.name == "VonMises":  # torch's VonMises has none; scipy's closed form
        want = torch.from_numpy(np.asarray(stats.vonmises.entropy(p["concentration"].double().numpy()))).to(dtype)
    if want is None:
        with pytest.raises(NotImplementedError):  # as torch's MixtureSameFamily
            d.entropy()
    else:
        got = d.entropy()
        assert got.dtype == dtype and got.shape == d.batch_shape
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_entropy_monte_carlo(case):
    # torch's test_entropy_monte_carlo: 60000 samples, atol 0.2.
    d, _ = make(case)
    try:
        actual = d.entropy()
    except NotImplementedError:
        return
    x = d.sample((60000,), generator=gen(6))
    expected = -d.log_prob(x).mean(0)
    torch.testing.assert_close(actual, expected, atol=0.2, rtol=0)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_no_enumerate_support(case):
    d, _ = make(case)
    assert not d.has_enumerate_support
    with pytest.raises(NotImplementedError):
        d.enumerate_support()


# --- validation -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_validate_args(case):
    make(case, validate_args=True)  # valid
    for override in case.bad_params:
        with pytest.raises(ValueError):
            make(case, validate_args=True, **override)
        make(case, validate_args=False, **override)  # constructs without validation
    d, _ = make(case, validate_args=True)
    with pytest.raises(ValueError):
        d.log_prob(case.bad_value(d))
    # validate_args=False skips the support check (torch returns whatever the formula gives).
    d_off, _ = make(case, validate_args=False)
    d_off.log_prob(case.bad_value(d_off))


# --- pickle, deepcopy -------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_pickle_and_deepcopy(case):
    d, p = make(case, requires_grad=True)  # leaves that require grad, broadcast shapes for the mixtures
    e = d.expand((2,) + d.batch_shape)
    for copied, original in ((pickle.loads(pickle.dumps(d)), d), (copy.deepcopy(d), d), (copy.deepcopy(e), e)):
        assert type(copied) is type(original) and copied.batch_shape == original.batch_shape
        x = original.sample((3,), generator=gen(7))
        torch.testing.assert_close(copied.log_prob(x), original.log_prob(x))
    buffer = io.BytesIO()  # Pyro's test_pickle
    torch.save(d, buffer, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    assert type(loaded) is type(d) and repr(loaded) == repr(d)
    # A deep copy owns its parameters: they require grad and are not the originals.
    c = copy.deepcopy(d)
    assert repr(c) == repr(d)
    for name in d.arg_constraints:
        a, b = getattr(c, name), getattr(d, name)
        torch.testing.assert_close(a, b)
        assert a.requires_grad and a.data_ptr() != b.data_ptr()
    c.rsample((2,), generator=gen(8)).sum().backward()  # the copy's graph is its own
    assert all(v.grad is None for v in p.values())


# --- gradients ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_rsample_gradients_for_every_parameter(case, dtype):
    d, p = make(case, dtype, requires_grad=True)
    assert d.has_rsample
    x = d.rsample((64,), generator=gen(9))
    assert x.requires_grad  # torch's test_rsample_requires_grad
    w = torch.randn(x.shape[1:], generator=gen(10), dtype=dtype)
    grads = torch.autograd.grad((torch.sin(x) * w).sum(), list(p.values()))
    for (name, value), g in zip(p.items(), grads):
        assert g is not None and g.shape == value.shape, name
        assert torch.isfinite(g).all(), name
        assert (g != 0).any(), name


# --- generator= -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_generator_reproducible(case, device):
    d, _ = make(case, device=device)
    state = torch.random.get_rng_state()
    a = d.sample((5,), generator=gen(11, device))
    b = d.sample((5,), generator=gen(11, device))
    r = d.rsample((5,), generator=gen(11, device))
    c = d.sample((5,), generator=gen(12, device))
    assert torch.equal(a, b) and torch.equal(a, r.detach())
    assert not torch.equal(a, c)
    assert torch.equal(state, torch.random.get_rng_state())  # the global generator is not used
    # Without a generator: the global seed reproduces the draw.
    torch.manual_seed(13)
    x = d.sample((5,))
    torch.manual_seed(13)
    assert torch.equal(x, d.sample((5,)))


# --- constraints ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_arg_constraints_match_parameter_shapes(case):
    # A constraint's event_dim is the number of trailing dimensions the parameter has beyond the batch
    # shape, so that check() reduces to the batch shape (how torch's and Pyro's tooling, e.g. biject_to
    # for unconstrained parameters, broadcast constraints).
    d0 = make(case)[0]
    for d in (d0, d0.expand((2,) + d0.batch_shape)):
        for name, c in d.arg_constraints.items():
            if constraints.is_dependent(c):
                continue
            value = getattr(d, name)
            assert c.event_dim == value.dim() - len(d.batch_shape), name
            ok = c.check(value)
            assert ok.shape == d.batch_shape and ok.all(), name
            u = torch.randn(value.shape, generator=gen(14), dtype=value.dtype)
            assert c.check(biject_to(c)(u)).all(), name


# --- VonMises (TensorFlow Probability's von_mises_test.py) -----------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_vonmises_cdf_against_scipy(dtype):
    # TFP's testVonMisesCdf: loc and x in [-10, 10], concentration 1e-3 .. 1e3, atol = rtol = 1e-4.
    loc = torch.linspace(-10, 10, 20, dtype=dtype).reshape(-1, 1, 1)
    kappa = torch.logspace(-3, 3, 20, dtype=dtype).reshape(1, -1, 1)
    x = torch.linspace(-10, 10, 20, dtype=dtype).reshape(1, 1, -1)
    got = D.VonMises(loc, kappa).cdf(x)
    want = stats.vonmises.cdf(x.double().numpy(), kappa.double().numpy(), loc=loc.double().numpy())
    np.testing.assert_allclose(got.double().numpy(), want, atol=1e-4, rtol=1e-4)


def test_vonmises_cdf_gradient_finite_differences():
    # TFP's testVonMisesCdfGradientSimple (places=3), plus gradcheck in float64.
    loc, kappa, x = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (0.5, 0.7, 0.6))
    assert torch.autograd.gradcheck(lambda a, b, c: D.VonMises(a, b).cdf(c), (loc, kappa, x))
    icdf_inputs = (torch.tensor([0.1, 0.5, 0.97], dtype=torch.float64, requires_grad=True),
                   torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64, requires_grad=True),
                   torch.tensor([0.5, 3.0, 50.0], dtype=torch.float64, requires_grad=True))
    assert torch.autograd.gradcheck(lambda u, a, b: D.VonMises(a, b).icdf(u), icdf_inputs)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_vonmises_icdf(dtype):
    d = D.VonMises(torch.tensor([0.0, 2.0, -1.0], dtype=dtype), torch.tensor([0.3, 5.0, 1e3], dtype=dtype))
    u = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=dtype)[:, None]
    x = d.icdf(u)
    assert x.shape == (5, 3) and x.dtype == dtype
    torch.testing.assert_close(x[0], d.loc - math.pi)
    torch.testing.assert_close(x[2], d.loc)  # the median is loc (symmetry)
    torch.testing.assert_close(x[4], d.loc + math.pi)
    # scipy's ppf for vonMises(0, kappa) (numerical inversion; it answers -inf / inf at 0 / 1).
    want = stats.vonmises.ppf(u[1:4].double().numpy(), d.concentration.double().numpy())
    atol = 1e-5 if dtype == torch.float32 else 1e-9
    torch.testing.assert_close(x[1:4] - d.loc, torch.from_numpy(want).to(dtype), atol=atol, rtol=0)
    # The periodic extension: icdf(u + k) = icdf(u) + 2 pi k, so icdf(cdf(x)) = x on the whole line.
    torch.testing.assert_close(d.icdf(u[1:4] + 2), x[1:4] + 4 * math.pi)
    # (Points where F0 is below the rounding of the period count, deep in a tail, cannot round-trip.)
    periods = torch.tensor([-3.0, 1.0, 4.0], dtype=dtype)
    far = d.loc + torch.tensor([0.3, -0.2, 0.01], dtype=dtype) + 2 * math.pi * periods
    torch.testing.assert_close(d.icdf(d.cdf(far)), far)
    assert torch.isnan(d.icdf(torch.full((3,), math.nan, dtype=dtype))).all()


def test_vonmises_entropy():
    # TFP's testVonMisesEntropy (against scipy, default tolerance) and the large-kappa limit (against mpmath).
    loc = torch.tensor([-2.0, -1.0, 0.3, 3.2], dtype=torch.float64).reshape(-1, 1)
    kappa = torch.tensor([0.01, 0.01, 1.0, 10.0], dtype=torch.float64).reshape(1, -1)
    got = D.VonMises(loc, kappa).entropy()
    np.testing.assert_allclose(got.numpy(), stats.vonmises.entropy(kappa.numpy(), loc=loc.numpy()) + 0 * loc.numpy(),
                               rtol=1e-6, atol=1e-6)
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 30
    big = [249.0, 251.0, 1e3, 1e6, 1e12]
    want = [float(-k * mpmath.besseli(1, k) / mpmath.besseli(0, k) + mpmath.log(2 * mpmath.pi * mpmath.besseli(0, k)))
            for k in map(mpmath.mpf, big)]
    for dtype, rtol in ((torch.float64, 1e-13), (torch.float32, 1e-6)):
        h = D.VonMises(torch.zeros(5, dtype=dtype), torch.tensor(big, dtype=dtype)).entropy()
        np.testing.assert_allclose(h.double().numpy(), want, rtol=rtol)
    # Differentiable in the concentration: dH/dkappa = -kappa A'(kappa).
    k = torch.tensor([0.5, 5.0, 500.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda c: D.VonMises(torch.zeros(3, dtype=torch.float64), c).entropy(), (k,))


def test_vonmises_kl():
    # TFP's testVonMisesVonMisesKL: the reference values, Monte Carlo (1e5 samples, rtol 0.1), KL(p, p) = 0.
    p = D.VonMises(torch.tensor([[0.05, 0.1, 0.2]], dtype=torch.float64),
                   torch.tensor([[0.0, 0.3, 0.4]], dtype=torch.float64))
    q = D.VonMises(torch.tensor([[0.7, 0.5, 0.3], [0.1, 0.3, 0.5]], dtype=torch.float64),
                   torch.tensor([[0.8, 0.0, 0.5]], dtype=torch.float64))
    kl = td.kl_divergence(p, q)
    want = torch.tensor([[0.15402061, 0.02212654, 0.00282222], [0.15402061, 0.02212654, 0.00671171]],
                        dtype=torch.float64)
    torch.testing.assert_close(kl, want, rtol=1e-6, atol=1e-6)
    x = p.sample((100000,), generator=gen(15))
    torch.testing.assert_close(kl, (p.log_prob(x) - q.log_prob(x)).mean(0), rtol=0.1, atol=0)
    assert torch.equal(td.kl_divergence(p, p), torch.zeros(1, 3, dtype=torch.float64))
    # torch's test_kl_monte_carlo on concentrated, far-apart pairs (precision 0.1 relative to 1 + KL),
    # between gradkern's and torch's classes in both orders; torch's own pair stays unregistered.
    a = D.VonMises(torch.tensor([0.0, 3.0, -2.0]), torch.tensor([50.0, 2.0, 1e3]))
    b = td.VonMises(torch.tensor([1.0, -3.0, -2.1]), torch.tensor([3.0, 20.0, 1e3]))
    for left, right in ((a, b), (b, a)):
        left_g = D.VonMises(left.loc, left.concentration)
        y = left_g.sample((20000,), generator=gen(16))
        mc = (left.log_prob(y) - right.log_prob(y)).mean(0)
        actual = td.kl_divergence(left, right)
        assert actual.shape == (3,)
        assert ((mc - actual).abs() / (1 + mc.abs())).max() < 0.1
    with pytest.raises(NotImplementedError):
        td.kl_divergence(td.VonMises(0.0, 1.0), td.VonMises(0.0, 2.0))
    # Extreme concentrations stay finite, and agree with the Normal limit N(mu, 1/kappa) at large kappa.
    big_p = D.VonMises(torch.tensor(0.0, dtype=torch.float64), torch.tensor(1e6, dtype=torch.float64))
    big_q = D.VonMises(torch.tensor(1e-3, dtype=torch.float64), torch.tensor(2e6, dtype=torch.float64))
    normal = td.kl_divergence(td.Normal(0.0, 1e-3), td.Normal(1e-3, 1 / math.sqrt(2e6)))
    torch.testing.assert_close(td.kl_divergence(big_p, big_q).float(), normal, rtol=1e-4, atol=0)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_vonmises_sample_moments(dtype):
    # TFP's testVonMisesSampleMoments: circular mean and variance, rtol 0.1.
    d = D.VonMises(torch.tensor([-2.0, -1.0, 0.3, 2.3], dtype=dtype), torch.tensor([0.1, 1.0, 2.0, 10.0], dtype=dtype))
    x = d.sample((10000,), generator=gen(17))
    mean = torch.atan2(torch.sin(x).mean(0), torch.cos(x).mean(0))
    var = 1 - torch.cos(x - d.mean).mean(0)
    torch.testing.assert_close(mean, d.mean, rtol=0.1, atol=0)
    torch.testing.assert_close(var, d.variance, rtol=0.1, atol=0)


def test_vonmises_sample_gradients():
    # TFP's testVonMisesSampleAverageGradient and testVonMisesSampleCircularVarianceGradient.
    loc = torch.ones(7, dtype=torch.float64, requires_grad=True)
    kappa = torch.logspace(-3, 3, 7, dtype=torch.float64, requires_grad=True)
    grad_ys = torch.arange(7.0, dtype=torch.float64)
    x = D.VonMises(loc, kappa).rsample((1000,), generator=gen(18))
    g_loc, g_kappa = torch.autograd.grad(x.mean(0), [loc, kappa], grad_ys)
    torch.testing.assert_close(g_loc, grad_ys, atol=0.1, rtol=0.1)
    torch.testing.assert_close(g_kappa, torch.zeros(7, dtype=torch.float64), atol=0.1, rtol=0.1)
    x = D.VonMises(loc, kappa).rsample((1000,), generator=gen(19))
    g_loc, g_kappa = torch.autograd.grad((1 - torch.cos(x - loc)).mean(0).sum(), [loc, kappa])
    k = kappa.detach().requires_grad_()
    (want,) = torch.autograd.grad((1 - torch.special.i1e(k) / torch.special.i0e(k)).sum(), [k])
    torch.testing.assert_close(g_loc, torch.zeros(7, dtype=torch.float64), atol=1e-2, rtol=1e-2)
    torch.testing.assert_close(g_kappa, want, atol=0.1, rtol=0.1)


def test_vonmises_extreme_concentration_sample():
    # TFP's testVonMisesSampleExtremeConcentration (1e-50, 1e50 there; 1e-30, 1e30 fit float32): no infinite loop.
    d = D.VonMises(torch.tensor([1.0, math.nan, 1.0, 1.0, math.nan]),
                   torch.tensor([1e-30, 1.0, 1e30, math.nan, math.nan]), validate_args=False)
    assert d.sample(generator=gen(20)).shape == (5,)


# Concentration 0: the uniform distribution on the circle (TFP allows it; the kernels give its limits).
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_vonmises_concentration_zero(dtype):
    with pytest.raises(ValueError):  # TFP's testInvalidconcentration
        D.VonMises(torch.tensor(0.0, dtype=dtype), torch.tensor(-0.01, dtype=dtype), validate_args=True)
    d = D.VonMises(torch.tensor(0.1, dtype=dtype), torch.tensor(0.0, dtype=dtype), validate_args=True)
    x = torch.tensor([2.0, 3.0, 4.0, 5.0, 6.0, 7.0], dtype=dtype)
    torch.testing.assert_close(d.log_prob(x), torch.full((6,), -math.log(2 * math.pi), dtype=dtype),
                               rtol=1e-6, atol=1e-6)  # testVonMisesLogPdfUniform
    torch.testing.assert_close(d.entropy(), torch.tensor(math.log(2 * math.pi), dtype=dtype),
                               rtol=1e-6, atol=1e-6)  # testVonMisesEntropyUniform
    torch.testing.assert_close(d.variance, torch.tensor(1.0, dtype=dtype))  # testVonMisesVariance
    torch.testing.assert_close(d.mode, d.loc)  # testVonMisesMode
    u = D.VonMises(torch.tensor(0.0, dtype=dtype), torch.tensor(0.0, dtype=dtype))
    grid = torch.linspace(-math.pi, math.pi, 20, dtype=dtype)
    torch.testing.assert_close(u.cdf(grid), (grid + math.pi) / (2 * math.pi), rtol=1e-6, atol=1e-6)  # CdfUniform
    q = torch.linspace(0, 1, 11, dtype=dtype)
    torch.testing.assert_close(u.icdf(q), 2 * math.pi * q - math.pi, rtol=1e-6, atol=1e-6)


def test_vonmises_concentration_zero_samples_and_gradients():
    # TFP's testVonMisesSampleUniformKsTest: fewer than 10% of 50 KS tests at p <= 0.05.
    locs = torch.linspace(-10, 10, 50, dtype=torch.float64)
    d = D.VonMises(locs, torch.zeros(50, dtype=torch.float64))
    x = d.sample((10000,), generator=gen(21))
    assert x.shape == (10000, 50)
    fails = sum(stats.kstest((x[:, i].numpy() + np.pi) / (2 * np.pi), stats.uniform.cdf).pvalue <= 0.05
                for i in range(50))
    assert fails < 5
    # KL to the uniform is log(2 pi) - H(p); between two uniforms it is 0.
    p = D.VonMises(torch.tensor(0.3, dtype=torch.float64), torch.tensor(2.0, dtype=torch.float64))
    uniform = D.VonMises(locs[0], torch.tensor(0.0, dtype=torch.float64))
    torch.testing.assert_close(td.kl_divergence(p, uniform), math.log(2 * math.pi) - p.entropy())
    assert td.kl_divergence(d, d).abs().max() == 0
    # The kappa -> 0 limits of the gradients: d/dkappa of a sample is -sin(x - loc), of the cdf sin(x - loc) / (2 pi).
    kappa = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    loc = torch.tensor([0.0, 1.0, -2.0, 3.0], dtype=torch.float64)
    z = D.VonMises(loc, kappa).rsample(generator=gen(22))
    (g,) = torch.autograd.grad(z.sum(), [kappa])
    torch.testing.assert_close(g, -torch.sin(z.detach() - loc))
    x = torch.tensor([0.5, 2.0, -1.0, 1.0], dtype=torch.float64)
    (gc,) = torch.autograd.grad(D.VonMises(loc, kappa).cdf(x).sum(), [kappa])
    torch.testing.assert_close(gc, torch.sin(x - loc) / (2 * math.pi))


# --- StudentT in float32 (scipy.stats.t.logpdf) ------------------------------------------------------------
def test_student_t_log_prob_no_overflow():
    x = torch.tensor([0.0, 1e-30, 1e-3, 1.0, 30.0, 1e10, 1e19, 3e19, 1e30, 3e38, -1e35], dtype=torch.float32)
    for df in (0.1, 1.0, 5.0, 1e3, 1e6):
        for loc, scale in ((0.0, 1.0), (2.0, 1e-3), (-1.0, 1e3)):
            d = D.StudentT(torch.tensor(df), torch.tensor(loc), torch.tensor(scale))
            got = d.log_prob(x).double().numpy()
            want = stats.t.logpdf(x.double().numpy(), df, loc=loc, scale=scale)
            assert np.isfinite(got).all(), (df, loc, scale, got)
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # Gradients are finite everywhere, at value = loc included.
    df, loc, scale = (torch.tensor(v, requires_grad=True) for v in (2.0, 0.5, 1.5))
    value = torch.tensor([0.5, 1.0, 1e25, -3e38], requires_grad=True)
    grads = torch.autograd.grad(D.StudentT(df, loc, scale).log_prob(value).sum(), [df, loc, scale, value])
    assert all(torch.isfinite(g).all() for g in grads)
    # float64 agrees with scipy to 1e-12 over the bulk, for small and large df.
    xd = torch.linspace(-50, 50, 101, dtype=torch.float64)
    for df in (0.3, 3.0, 40.0, 1e5):
        p = (torch.tensor(df, dtype=torch.float64), torch.tensor(0.7, dtype=torch.float64),
             torch.tensor(2.0, dtype=torch.float64))
        want = torch.from_numpy(stats.t.logpdf(xd.numpy(), df, loc=0.7, scale=2.0))
        torch.testing.assert_close(D.StudentT(*p).log_prob(xd), want, rtol=1e-12, atol=1e-12)


# --- Gaussian mixtures: what torch's MixtureSameFamily provides ------------------------------------------
@pytest.mark.parametrize("case", MIXTURES, ids=[c.name for c in MIXTURES])
def test_mixture_is_a_mixture_same_family(case):
    d, p = make(case)
    msf = td.MixtureSameFamily(d.mixture_distribution, d.component_distribution)
    ref = case.reference(p)
    assert msf.batch_shape == d.batch_shape and msf.event_shape == d.event_shape
    x = d.sample((4,), generator=gen(23))
    torch.testing.assert_close(msf.log_prob(x), ref.log_prob(x))
    torch.testing.assert_close(msf.mean, d.mean)
    torch.testing.assert_close(msf.variance, d.variance)
    for dist in (ref, d):  # neither has a closed-form mode or entropy
        with pytest.raises(NotImplementedError):
            dist.mode
        with pytest.raises(NotImplementedError):
            dist.entropy()


# --- fake kernels: devices and dtypes -------------------------------------------------------------------
BINARY_OPS = ["gammainc", "gammaincc", "gammainc_grad_a", "gammaincinv", "standard_gamma_grad",
              "log_standard_gamma_grad", "gammainc_grad_aa", "standard_gamma_grad_dalpha",
              "log_standard_gamma_grad_dalpha", "vonmises_cdf", "vonmises_cdf_grad_concentration", "vonmises_grad",
              "vonmises_cdf_grad_kk", "vonmises_grad_dconcentration",
              "vonmises_shift_wrap"]


def test_torch_rejects_meta_with_cpu():
    # The behaviour the fakes reproduce: torch's binary ops refuse meta with CPU, except 0-dim CPU tensors.
    meta, cpu = torch.empty(3, device="meta"), torch.ones(3)
    with pytest.raises(RuntimeError):
        torch.special.gammainc(meta, cpu)
    with pytest.raises(RuntimeError):
        torch.special.gammainc(cpu, meta)
    assert torch.special.gammainc(torch.tensor(1.0), meta).device.type == "meta"


@pytest.mark.parametrize("name", BINARY_OPS)
def test_fake_binary_ops_check_devices(name):
    op = getattr(OPS, name)
    names = [a.name for a in op.default._schema.arguments]
    meta, cpu = torch.empty(3, device="meta"), torch.ones(3)
    for a, b in ((meta, cpu), (cpu, meta)):
        with pytest.raises(RuntimeError, match=rf"gradkern\.{name}: {names[0]} and {names[1]} must be on the same "
                                               rf"device, got {names[0]} on {a.device} and {names[1]} on {b.device}"):
            op(a, b)
    for a, b in ((meta, torch.tensor(1.0)), (torch.tensor(1.0), meta), (meta, torch.empty((), device="meta"))):
        out = op(a, b)
        assert out.device.type == "meta" and out.shape == (3,) and out.dtype == torch.float32
    with pytest.raises(RuntimeError, match=rf"gradkern\.{name}: {names[0]} and {names[1]} must be on the same device"):
        op(torch.empty((), device="meta"), torch.ones(3))  # only CPU scalars combine with another device
    with pytest.raises(RuntimeError, match=rf"gradkern\.{name}: {names[0]} and {names[1]} must have the same dtype"):
        op(meta, torch.empty(3, device="meta", dtype=torch.float64))
    # Under FakeTensorMode the fakes make the same checks.
    from torch._subclasses.fake_tensor import FakeTensorMode
    with FakeTensorMode() as mode:
        fa, fb = mode.from_tensor(torch.ones(3)), mode.from_tensor(torch.empty(3, device="meta"))
        with pytest.raises(RuntimeError, match=rf"gradkern\.{name}: .* must be on the same device"):
            op(fa, fb)
        assert op(fa, mode.from_tensor(torch.ones(()))).shape == (3,)


def test_fake_bivariate_normal_cdf_checks_devices():
    meta, cpu = torch.empty(3, device="meta"), torch.ones(3)
    with pytest.raises(RuntimeError, match=r"gradkern\.bivariate_normal_cdf: h, k and r must be on the same device, "
                                           r"got h on meta, k on cpu and r on meta"):
        OPS.bivariate_normal_cdf(meta, cpu, meta)
    out = OPS.bivariate_normal_cdf(torch.tensor(0.5), meta, torch.tensor(0.1))
    assert out.device.type == "meta" and out.shape == (3,)
    with pytest.raises(RuntimeError, match="same dtype"):
        OPS.bivariate_normal_cdf(meta, meta, meta.double())


MIXTURE_OPS = [(stem, names) for stem, names in gradkern._mixtures.FAMILIES.values()]


@pytest.mark.parametrize("stem,names", MIXTURE_OPS, ids=[s for s, _ in MIXTURE_OPS])
def test_fake_mixture_ops_check_devices(stem, names):
    S, B, K, Dm = 2, 3, 4, 2
    shapes = {"locs": (B, K, Dm), "coord_scale": (B, K, Dm) if "diag" in stem else (B, Dm),
              "component_logits": (B, K), "component_scale": (B, K)}

    def params(device, dtype=torch.float32, odd=None, odd_device=None, odd_dtype=None):
        return [torch.ones(shapes[n], device=odd_device if n == odd and odd_device else device,
                           dtype=odd_dtype if n == odd and odd_dtype else dtype) for n in names]

    noise = torch.empty(S, B, Dm, device="meta")
    component = torch.zeros(S, B, dtype=torch.long, device="meta")
    rsample, backward = getattr(OPS, stem + "_rsample"), getattr(OPS, stem + "_backward")
    assert rsample(noise, component, *params("meta")).shape == (S, B, Dm)
    assert [g.shape for g in backward(noise, noise, *params("meta"))] == [torch.Size(shapes[n]) for n in names]
    for odd in names:
        if odd == "component_logits":
            continue
        match = rf"gradkern\.{stem}_(rsample|backward): {odd} must be on the same device as component_logits"
        with pytest.raises(RuntimeError, match=match):
            rsample(noise, component, *params("meta", odd=odd, odd_device="cpu"))
        with pytest.raises(RuntimeError, match=match):
            backward(noise, noise, *params("meta", odd=odd, odd_device="cpu"))
        with pytest.raises(RuntimeError, match="must have the same dtype as component_logits"):
            rsample(noise, component, *params("meta", odd=odd, odd_dtype=torch.float64))
    logits_on_cpu = params("meta", odd="component_logits", odd_device="cpu")
    with pytest.raises(RuntimeError, match="must be on the same device as component_logits"):
        rsample(noise, component, *logits_on_cpu)
    with pytest.raises(RuntimeError, match=rf"gradkern\.{stem}_rsample: noise must be on the same device"):
        rsample(torch.zeros(S, B, Dm), component, *params("meta"))
    with pytest.raises(RuntimeError, match=rf"gradkern\.{stem}_backward: (grad|z) must be on the same device"):
        backward(noise, torch.zeros(S, B, Dm), *params("meta"))
    with pytest.raises(RuntimeError, match=rf"gradkern\.{stem}_rsample: component must be on the same device"):
        rsample(noise, torch.zeros(S, B, dtype=torch.long), *params("meta"))
    with pytest.raises(RuntimeError, match="component must be an int64 tensor"):
        rsample(noise, component.int(), *params("meta"))


def test_fake_antithetic_ops_check_the_table_device():
    table = torch.empty(10, 4, dtype=torch.float64)  # on the CPU
    noise = torch.empty(5, 3, device="meta")
    with pytest.raises(RuntimeError, match=r"gradkern\.antithetic_normal_standardized: table must be on the device"):
        OPS.antithetic_normal_standardized(noise, table, 0.0, 1.0)
    with pytest.raises(RuntimeError, match=r"gradkern\.chi2_reflect: table must be on the device"):
        OPS.chi2_reflect(torch.empty(3, device="meta"), 3.0, table, 0.0, 1.0)
    # The Hawkins-Wixley reflection ignores the table.
    assert OPS.antithetic_normal_standardized(noise, table, 0.0, 1.0, "marsaglia", "hawkins-wixley").shape == (6, 3)
    assert OPS.chi2_reflect(torch.empty(3, device="meta"), 3.0, table, 0.0, 1.0, "hawkins-wixley").shape == (3,)
