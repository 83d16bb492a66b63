"""Every public function, class and method has a docstring, and every public function follows torch's
type promotion for mixed float32 / float64 arguments. The API is enumerated from the package itself
(``__all__`` of gradkern and its public modules), so new API cannot skip these checks: a public
function missing from MIXED below fails test_every_function_has_a_mixed_dtype_case."""
import inspect

import pytest
import torch

import gradkern

MODULES = [gradkern, gradkern.distributions, gradkern.antithetic, gradkern.copulas, gradkern.estimators,
           gradkern.rsvi]


def _public():
    for mod in MODULES:
        for name in mod.__all__:
            obj = getattr(mod, name)
            if inspect.ismodule(obj):
                continue
            yield f"{mod.__name__}.{name}", obj


PUBLIC = dict(_public())
FUNCTIONS = {k: v for k, v in PUBLIC.items() if inspect.isfunction(v)}
CLASSES = {k: v for k, v in PUBLIC.items() if inspect.isclass(v)}

f32 = lambda *v: torch.tensor(v, dtype=torch.float32)  # noqa: E731
f64 = lambda *v: torch.tensor(v, dtype=torch.float64)  # noqa: E731

# Public function -> (args with one float32 and one float64 tensor, the dtype torch's rule gives), or a
# reason why the function has a single floating argument (then its integer-input behaviour is checked).
MIXED = {
    "gradkern.gammainc": ((f32(1.0, 2.0), f64(0.5, 3.0)), torch.float64),
    "gradkern.gammaincc": ((f64(1.0, 2.0), f32(0.5, 3.0)), torch.float64),
    "gradkern.gammaincinv": ((f32(1.0, 2.0), f64(0.5, 0.25)), torch.float64),
    "gradkern.standard_gamma_grad": ((f32(1.0, 2.0), f64(0.5, 3.0)), torch.float64),
    "gradkern.log_standard_gamma_grad": ((f32(1.0, 2.0), f64(-0.5, 1.0)), torch.float64),
    "gradkern.betainc": ((f32(1.0, 2.0), f64(0.5, 3.0), f32(0.25, 0.5)), torch.float64),
    "gradkern.betaincc": ((f64(1.0, 2.0), f32(0.5, 3.0), f32(0.25, 0.5)), torch.float64),
    "gradkern.betaincinv": ((f32(1.0, 2.0), f32(0.5, 3.0), f64(0.25, 0.5)), torch.float64),
    "gradkern.standard_beta_grad": ((f32(1.0, 2.0), f64(0.5, 3.0), f32(0.25, 0.5)), torch.float64),
    "gradkern.log_dirichlet_rsample": "one floating argument",
    "gradkern.gamma_rsample": ((f32(1.0, 2.0), f64(2.0, 1.0)), torch.float64),
    "gradkern.log_gamma_rsample": ((f32(1.0, 2.0), f64(2.0, 1.0)), torch.float64),
    "gradkern.beta_rsample": ((f32(1.0, 2.0), f64(2.0, 1.0)), torch.float64),
    "gradkern.dirichlet_rsample": "one floating argument",
    "gradkern.chi2_rsample": "one floating argument",
    "gradkern.student_t_rsample": ((f32(3.0, 4.0), f64(0.0, 1.0)), torch.float64),
    "gradkern.vonmises_cdf": ((f32(0.5, 1.0), f64(0.0, 0.0), f32(1.0, 2.0)), torch.float64),
    "gradkern.vonmises_grad": ((f64(1.0, 2.0), f32(0.5, 1.0)), torch.float64),
    "gradkern.vonmises_rsample": ((f32(0.0, 1.0), f64(1.0, 2.0)), torch.float64),
    "gradkern.vmf_rsample": ((f32(0.0, 1.0), f64(1.0, 2.0)), torch.float64),  # loc the unit vector (0, 1)
    "gradkern.rsvi.gamma": ((f32(1.0, 2.0), f64(2.0, 1.0)), torch.float64),
    "gradkern.rsvi.beta": ((f32(1.0, 2.0), f64(2.0, 1.0)), torch.float64),
    "gradkern.rsvi.dirichlet": "one floating argument",
    "gradkern.rsvi.vonmises": ((f32(0.0, 1.0), f64(1.0, 2.0)), torch.float64),
    "gradkern.rsvi.surrogate": ((f32(1.0, 2.0), f64(0.5, 0.25)), torch.float64),
}
# The modules whose functions take their own documented dtype rules (estimators take logits and a
# loss function; copulas draw uniforms of a requested dtype; antithetic requires one dtype for loc and
# scale, checked in its own tests).
OWN_RULES = ("gradkern.antithetic.", "gradkern.copulas.", "gradkern.estimators.",
             "gradkern.implicit_rsample")  # takes the user's samples and CDF as they are
FIRST_ORDER_ONLY = {"gradkern.standard_gamma_grad", "gradkern.log_standard_gamma_grad", "gradkern.vonmises_grad",
                    "gradkern.standard_beta_grad"}


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_public_objects_have_docstrings(name):
    obj = PUBLIC[name]
    assert inspect.getdoc(obj), f"{name} has no docstring"


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_public_methods_have_docstrings(name):
    cls = CLASSES[name]
    missing = []
    for attr, member in vars(cls).items():
        if attr.startswith("_") or not (inspect.isfunction(member) or isinstance(member, property)):
            continue
        if not inspect.getdoc(member):
            missing.append(attr)
    assert not missing, f"{name}: methods without a docstring: {missing}"


def test_every_function_has_a_mixed_dtype_case():
    missing = [n for n in FUNCTIONS if n not in MIXED and not n.startswith(OWN_RULES)]
    assert not missing, f"public functions without a mixed-dtype case in test_public_api.MIXED: {missing}"


@pytest.mark.parametrize("name", sorted(k for k, v in MIXED.items() if not isinstance(v, str)))
def test_mixed_float32_float64_promotes(name):
    args, dtype = MIXED[name]
    fn = FUNCTIONS[name]
    out = fn(*args)
    for o in out if isinstance(out, tuple) else (out,):
        assert o.dtype == dtype, f"{name}: {o.dtype}, expected {dtype} as torch's type promotion gives"
    if name in FIRST_ORDER_ONLY:  # derivatives themselves: not differentiable (yet), and they say so
        return
    # The gradient reaches every floating argument, in that argument's dtype.
    args = [a.clone().requires_grad_() for a in args]
    out = fn(*args)
    out = out.sample if isinstance(out, gradkern.rsvi.RSVISample) else out
    if out.requires_grad:
        out.nan_to_num().sum().backward()
        for a in args:
            assert a.grad is None or a.grad.dtype == a.dtype


@pytest.mark.parametrize("name", sorted(k for k, v in MIXED.items() if isinstance(v, str)))
def test_single_argument_functions_promote_integers(name):
    fn = FUNCTIONS[name]
    out = fn(torch.tensor([2, 3]))
    for o in out if isinstance(out, tuple) else (out,):
        assert o.dtype == torch.get_default_dtype()


def test_python_numbers_take_the_tensor_dtype():
    assert gradkern.gammainc(2.0, f64(1.0)).dtype == torch.float64
    assert gradkern.gammainc(f32(2.0), 1.0).dtype == torch.float32
    assert gradkern.vonmises_cdf(0.5, 0.0, f64(1.0)).dtype == torch.float64


def test_type_errors_name_the_function_and_argument():
    with pytest.raises(TypeError, match=r"gradkern\.gammainc: x must be a Tensor or a real number"):
        gradkern.gammainc(f32(1.0), "1")
    with pytest.raises(TypeError, match=r"gradkern\.vonmises_rsample: concentration must be a real tensor"):
        gradkern.vonmises_rsample(0.0, torch.ones(2, dtype=torch.complex64))


@pytest.mark.parametrize("cls", [gradkern.distributions.Gamma, gradkern.distributions.Beta])
def test_distributions_accept_mixed_dtypes(cls):
    d = cls(f64(2.0, 3.0), f32(1.0, 2.0))
    assert d.rsample().dtype == torch.float64


def test_namespace_holds_only_the_api():
    # gradkern.pyro and gradkern.reference are opt-in submodules: present once imported.
    public = {n for n in dir(gradkern) if not n.startswith("_")} - {"pyro", "reference"}
    assert public == set(gradkern.__all__), sorted(public ^ set(gradkern.__all__))
    dist_public = {n for n in dir(gradkern.distributions) if not n.startswith("_")}
    assert dist_public == set(gradkern.distributions.__all__), sorted(dist_public ^ set(gradkern.distributions.__all__))


# Argument order (docs/design.md#argument-order): functions named after a distribution's CDF take the value
# first, as Distribution.cdf(value) and scipy.stats (vonmises_cdf(x, loc, concentration)); every other
# function of a value and parameters (special functions, inverses, implicit gradients) takes the parameters
# first, as torch.special and scipy.special (gammainc(a, x), vonmises_grad(concentration, x)); samplers take
# the parameters, then sample_shape and generator.
VALUE_NAMES = {"x", "p", "log_x", "value"}
# not a sampler of parameters: it attaches gradients to the user's own samples (sample, cdf, params)
ORDER_EXEMPT = {"gradkern.implicit_rsample"}


@pytest.mark.parametrize("name", sorted(n for n in FUNCTIONS if n.startswith("gradkern.") and n.count(".") == 1
                                         and n not in ORDER_EXEMPT))
def test_argument_order_follows_the_rule(name):
    params = list(inspect.signature(FUNCTIONS[name]).parameters)
    values = [i for i, p in enumerate(params) if p in VALUE_NAMES]
    short = name.split(".", 1)[1]
    if short.endswith("_cdf"):
        assert values == [0], f"{name}{params}: a CDF takes its value first"
    elif values:
        tensors = [p for p in params if p not in ("sample_shape", "generator")]
        assert values == [len(tensors) - 1], f"{name}{params}: the value comes after the parameters"
    elif short.endswith("_rsample"):
        assert params[-2:] == ["sample_shape", "generator"] or "generator" in params, name


def test_fixed_arity_promotion_matches_promote():
    # gradkern/_promote.py's promote2 / promote3 (the wrappers' fast forms) must give exactly promote's
    # result, fast path or not: same dtypes and devices, the very tensors when nothing changes, the same errors.
    from gradkern._promote import promote, promote2, promote3

    cases = [f32([1.0, 2.0]), f64([1.0, 2.0]), f32(1.0), f64(3.0), torch.tensor([1, 2]), 2.0, 3,
             torch.tensor(True), torch.ones(2, dtype=torch.float16), torch.tensor(1.5, dtype=torch.float64)]
    for a in cases:
        for b in cases:
            want = promote("f", ("a", a), ("b", b))
            got = promote2("f", "a", a, "b", b)
            assert [(t.dtype, t.device) for t in got] == [(t.dtype, t.device) for t in want]
            assert all(torch.equal(g, w) for g, w in zip(got, want))
            for c in cases[:4]:
                want3 = promote("f", ("a", a), ("b", b), ("c", c))
                got3 = promote3("f", "a", a, "b", b, "c", c)
                assert [(t.dtype, t.device) for t in got3] == [(t.dtype, t.device) for t in want3]
    x, y = f32([1.0]), f32([2.0])
    assert all(g is w for g, w in zip(promote2("f", "a", x, "b", y), (x, y)))
    assert all(g is w for g, w in zip(promote3("f", "a", x, "b", y, "c", x), (x, y, x)))
    with pytest.raises(TypeError, match=r"gradkern\.f: b must be a Tensor or a real number"):
        promote2("f", "a", x, "b", "1")
    with pytest.raises(TypeError, match=r"gradkern\.f: c must be a real tensor"):
        promote3("f", "a", x, "b", y, "c", torch.ones(1, dtype=torch.complex64))
