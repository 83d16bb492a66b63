"""gradkern.pyro: every gradkern distribution usable in Pyro models and guides.

Per class: ``pyro.sample`` in a model (and under ``pyro.plate``), ``expand`` / ``expand_by`` (same class,
``_instance`` honoured), ``to_event``, ``mask``, ``shape`` / ``infer_shapes``, ``log_prob`` shapes and the
reparameterized ``score_parts``. Then four problems with a known answer (conjugate Gamma-Poisson,
conjugate Dirichlet-Categorical, a von Mises target given as an unnormalised density, a 2-component
Gaussian mixture target), each with a guide of gradkern.pyro's class; and the import contract
(``import gradkern`` never imports Pyro; ``import gradkern.pyro`` without Pyro says what to install).

Why a broken gradient fails. The SVI runs start the guide 50-300 % off in every parameter and check it
to 3-15 %. If the gradient through ``rsample`` were zero, the ELBO gradient would be
``E_q[-d/dtheta log q(z; theta)]`` at fixed ``z``, zero in expectation (the score identity): the
parameters would only random-walk from where they started. A walk of 300 Adam steps can still end inside
a tolerance by chance for one parameter, so the gradient itself is checked too: at one point, Trace_ELBO's
gradient must match the exact ELBO gradient to Monte Carlo error, and that error is small against the
gradient w.r.t. every parameter, so zeroing (or flipping) the path gradient of any single parameter
fails deterministically.
"""
import math
import os
import subprocess
import sys

import pytest
import torch

pyro = pytest.importorskip("pyro")

import pyro.distributions as dist  # noqa: E402
from pyro import poutine  # noqa: E402
from pyro.distributions.torch_distribution import TorchDistributionMixin  # noqa: E402
from pyro.distributions.util import is_identically_zero  # noqa: E402
from pyro.infer import SVI, Trace_ELBO  # noqa: E402
from pyro.optim import ClippedAdam  # noqa: E402
from torch.distributions import constraints  # noqa: E402

import gradkern  # noqa: E402
import gradkern.distributions as gd  # noqa: E402
import gradkern.pyro as gp  # noqa: E402
from conftest import DEVICES  # noqa: E402

K, D = 3, 2
B = (2,)  # batch shape of every test distribution


def _args(name, device="cpu"):
    """Constructor arguments (leaf tensors that require grad) giving batch shape B."""
    g = torch.Generator().manual_seed(0)

    def pos(*shape):
        return (torch.rand(shape, generator=g) + 0.5).to(device).requires_grad_()

    def real(*shape):
        return torch.randn(shape, generator=g).to(device).requires_grad_()

    return {
        "Gamma": dict(concentration=pos(*B), rate=pos(*B)),
        "Chi2": dict(df=pos(*B)),
        "Beta": dict(concentration1=pos(*B), concentration0=pos(*B)),
        "Dirichlet": dict(concentration=pos(*B, 4)),
        "StudentT": dict(df=pos(*B) + 2, loc=real(*B), scale=pos(*B)),
        "VonMises": dict(loc=real(*B), concentration=pos(*B)),
        "VonMisesFisher": dict(loc=torch.nn.functional.normalize(torch.randn(*B, 3, generator=g), dim=-1).to(device)
                               .requires_grad_(), concentration=pos(*B)),
        "TruncatedNormal": dict(loc=real(*B), scale=pos(*B), low=real(*B) - 2.0, high=real(*B) + 2.0),
        "MixtureOfDiagNormalsSharedCovariance": dict(locs=real(*B, K, D), coord_scale=pos(*B, D),
                                                     component_logits=real(*B, K)),
        "MixtureOfDiagNormals": dict(locs=real(*B, K, D), coord_scale=pos(*B, K, D), component_logits=real(*B, K)),
        "GaussianScaleMixture": dict(coord_scale=pos(*B, D), component_logits=real(*B, K),
                                     component_scale=pos(*B, K)),
        "DiscreteGaussianScaleMixture": dict(locs=real(*B, K, D), coord_scale=pos(*B, D),
                                             component_logits=real(*B, K), component_scale=pos(*B, K)),
    }[name]


# Truncated and MixtureSameFamily take distributions as arguments: their own test below.
COMPOSITE = ("Truncated", "MixtureSameFamily")
# HypersphericalUniform has no tensor parameters (d, batch_shape): test_hyperspherical_vae_sites.
NAMES = [n for n in gd.__all__ if n not in COMPOSITE + ("HypersphericalUniform",)]
EVENT = {"Dirichlet": (4,), "VonMisesFisher": (3,)}
EVENT.update({n: (D,) for n in NAMES if "Mixture" in n})


def _make(name, device="cpu", **extra):
    return getattr(gp, name)(**_args(name, device), **extra)


@pytest.fixture
def one_thread():
    # Tiny tensors: under load, waking a second intra-op thread costs more than the work (10x here).
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    pyro.clear_param_store()
    yield
    pyro.clear_param_store()
    torch.set_num_threads(old)


def test_module_exports_every_distribution():
    assert sorted(gp.__all__) == sorted(gd.__all__)
    assert gp.__doc__ and "pyro" in gp.__doc__.lower()


@pytest.mark.parametrize("name", NAMES)
def test_class_is_gradkern_class_plus_mixin(name):
    cls = getattr(gp, name)
    assert cls.__module__ == "gradkern.pyro"
    assert issubclass(cls, getattr(gd, name)) and issubclass(cls, TorchDistributionMixin)
    assert cls.__doc__ and cls.__doc__.strip()
    for attr, value in vars(cls).items():  # what gradkern.pyro adds is documented too
        func = value.__func__ if isinstance(value, (staticmethod, classmethod)) else value
        if not attr.startswith("__") and callable(func):
            assert func.__doc__ and func.__doc__.strip(), f"{name}.{attr}"
    d = _make(name)
    assert d.has_rsample is True
    assert callable(d)
    assert (d.batch_shape, d.event_shape) == (torch.Size(B), torch.Size(EVENT.get(name, ())))


def _trace_two_sites(d):
    """A model sampling ``d`` once and in a plate of 5: (trace with log probs, x, y)."""
    def model():
        x = pyro.sample("x", d)
        with pyro.plate("plate", 5, dim=-2):
            y = pyro.sample("y", d)
        return x, y

    tr = poutine.trace(model).get_trace()
    tr.compute_log_prob()
    return tr, tr.nodes["x"]["value"], tr.nodes["y"]["value"]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", NAMES)
def test_pyro_sample_in_model(name, device):
    d = _make(name, device)
    event = EVENT.get(name, ())

    tr, x, y = _trace_two_sites(d)
    assert x.shape == B + event and y.shape == (5,) + B + event
    assert x.device.type == y.device.type == device
    assert x.requires_grad and y.requires_grad  # drawn by rsample, not sample
    assert tr.nodes["x"]["log_prob"].shape == B and tr.nodes["y"]["log_prob"].shape == (5,) + B
    # pyro.plate broadcasts the site through our expand: still this class, so still gradkern's sampler.
    assert type(tr.nodes["y"]["fn"]) is type(d)
    parts = tr.nodes["x"]["fn"].score_parts(x)
    assert is_identically_zero(parts.score_function)  # Trace_ELBO's reparameterized path
    torch.testing.assert_close(parts.log_prob, d.log_prob(x))


@pytest.mark.parametrize("name", NAMES)
def test_expand_and_expand_by(name):
    args = _args(name)
    extra = {"velocity": "pairwise"} if name == "MixtureOfDiagNormals" else {}
    d = getattr(gp, name)(**args, **extra)
    event = EVENT.get(name, ())
    e = d.expand_by([4])
    assert type(e) is type(d) and e.batch_shape == (4,) + B and e.event_shape == event
    assert e.shape((3,)) == (3, 4) + B + event
    z = e.rsample((3,))
    assert z.shape == (3, 4) + B + event
    torch.testing.assert_close(e.log_prob(z), d.log_prob(z))
    grads = torch.autograd.grad(z.sum(), list(args.values()), allow_unused=True)
    assert all(g is not None and torch.isfinite(g).all() for g in grads), name  # a path to every parameter
    # expand fills an _instance, as subclasses' expand methods require
    inst = type(d).__new__(type(d))
    e2 = d.expand(torch.Size((4,) + B), _instance=inst)
    assert e2 is inst and e2.batch_shape == (4,) + B and e2.sample().shape == (4,) + B + event
    if extra:
        assert e._velocity == "pairwise" and e2._velocity == "pairwise"
    with pytest.raises(RuntimeError):  # torch's rule: only size-1 or new leading dims expand
        d.expand(torch.Size((3,)))


@pytest.mark.parametrize("name", NAMES)
def test_to_event_mask_shape(name):
    d = _make(name)
    event = EVENT.get(name, ())
    ind = d.to_event(1)
    assert ind.batch_shape == () and ind.event_shape == B + event and ind.has_rsample
    z = ind.rsample((3,))
    assert z.shape == (3,) + B + event and z.requires_grad
    torch.testing.assert_close(ind.log_prob(z), d.log_prob(z).sum(-1))
    assert d.expand_by([4]).to_event(2).event_shape == (4,) + B + event

    mask = torch.tensor([True, False])
    m = d.mask(mask)
    assert m.has_rsample and m.batch_shape == B
    z = m.rsample((3,))
    assert z.shape == (3,) + B + event and z.requires_grad
    lp = m.log_prob(z)
    assert lp.shape == (3,) + B
    torch.testing.assert_close(lp[:, 0], d.log_prob(z)[:, 0])
    assert (lp[:, 1] == 0).all()
    assert d.mask(False).log_prob(z).eq(0).all()

    shapes = {k: v.shape for k, v in _args(name).items()}
    assert getattr(gp, name).infer_shapes(**shapes) == (d.batch_shape, d.event_shape)


# ---------------------------------------------------------------- SVI with a known answer
#
# Each problem: a model whose posterior (or target) is known, a guide started far from it, the SVI
# settings that fit it, the check of the fit, and the exact ELBO of the guide as a differentiable function
# of its parameters (closed form; for the mixture an estimator that differentiates only the Gaussian
# components, stratified by component, so none of the mixture's velocity fields).

class _Problem:
    def __init__(self, site, model, guide, nest, steps, lr, particles, check, exact_elbo, probe=None):
        self.site, self.model, self.guide, self.nest = site, model, guide, nest
        self.steps, self.lr, self.particles = steps, lr, particles
        self.check, self.exact_elbo = check, exact_elbo
        self.probe = probe or {}  # where to check the gradient, if not at the start (symmetric there)


def _gamma_poisson():
    # lambda ~ Gamma(a0, b0), x_i ~ Poisson(lambda): posterior Gamma(a0 + sum x, b0 + n) = Gamma(32, 11).
    a0, b0 = 2.0, 1.0
    x = torch.tensor([3.0, 1, 4, 2, 5, 3, 2, 4, 3, 3])
    a_post, b_post = a0 + x.sum().item(), b0 + len(x)

    def model():
        lam = pyro.sample("lam", dist.Gamma(a0, b0))
        with pyro.plate("data", len(x)):
            pyro.sample("x", dist.Poisson(lam), obs=x)

    def guide():  # (concentration, mean) parameters: the two directions are well conditioned
        a = pyro.param("a", torch.tensor(8.0), constraint=constraints.positive)
        m = pyro.param("m", torch.tensor(1.0), constraint=constraints.positive)
        pyro.sample("lam", gp.Gamma(a, a / m))

    def check():
        a, m = pyro.param("a").item(), pyro.param("m").item()
        assert abs(m / (a_post / b_post) - 1) < 0.05, (a, m)   # starts 66 % off
        assert abs(a / a_post - 1) < 0.15, (a, m)              # starts 75 % off

    def exact_elbo():  # E_q log p(lambda, x) + H(q), up to a constant
        a, m = pyro.param("a"), pyro.param("m")
        q = torch.distributions.Gamma(a, a / m)
        e_log = torch.digamma(a) - torch.log(a / m)
        return (a_post - 1) * e_log - b_post * m + q.entropy()

    return _Problem("lam", model, guide, 1, 300, 0.1, 16, check, exact_elbo)


def _dirichlet_categorical():
    # p ~ Dirichlet(1, 1, 1), y_i ~ Categorical(p): posterior Dirichlet(1 + counts) = Dirichlet(4, 13, 6).
    alpha0 = torch.ones(3)
    y = torch.tensor([0] * 3 + [1] * 12 + [2] * 5)
    post = alpha0 + torch.bincount(y, minlength=3)

    def model():
        p = pyro.sample("p", dist.Dirichlet(alpha0))
        with pyro.plate("data", len(y)):
            pyro.sample("y", dist.Categorical(p), obs=y)

    def guide():
        c = pyro.param("c", torch.full((3,), 2.0), constraint=constraints.positive)
        pyro.sample("p", gp.Dirichlet(c))

    def check():
        c = pyro.param("c").detach()
        assert ((c / post - 1).abs() < 0.15).all(), c          # starts 50-85 % off

    def exact_elbo():
        c = pyro.param("c")
        e_log = torch.digamma(c) - torch.digamma(c.sum())
        return ((post - 1) * e_log).sum() + torch.distributions.Dirichlet(c).entropy()

    return _Problem("p", model, guide, 1, 300, 0.1, 16, check, exact_elbo)


def _von_mises():
    # Flat prior on the circle times exp(kappa cos(theta - mu)): the posterior is VonMises(mu, kappa),
    # given to SVI only as an unnormalised log density (pyro.factor).
    mu, kappa = 2.5, 4.0

    def model():
        theta = pyro.sample("theta", dist.Uniform(-math.pi, math.pi))
        pyro.factor("target", kappa * torch.cos(theta - mu))

    def guide():
        loc = pyro.param("loc", torch.tensor(0.5))
        conc = pyro.param("conc", torch.tensor(1.0), constraint=constraints.positive)
        pyro.sample("theta", gp.VonMises(loc, conc))

    def check():
        loc, conc = pyro.param("loc").item(), pyro.param("conc").item()
        assert abs(math.remainder(loc - mu, 2 * math.pi)) < 0.1, loc   # starts 2 rad off
        assert abs(conc / kappa - 1) < 0.15, conc                       # starts 75 % off

    def exact_elbo():  # E_q[kappa cos(theta - mu)] + H(q), with A = I1 / I0 the mean resultant length
        loc, conc = pyro.param("loc"), pyro.param("conc")
        A = torch.special.i1e(conc) / torch.special.i0e(conc)
        entropy = -conc * A + torch.log(2 * math.pi * torch.special.i0e(conc)) + conc
        return kappa * A * torch.cos(loc - mu) + entropy

    return _Problem("theta", model, guide, 0, 300, 0.1, 16, check, exact_elbo)


def _mixture():
    # Target: a 2-component diagonal Gaussian mixture with overlapping components (Pyro's own
    # MixtureSameFamily, so its log density is not gradkern's); the guide family contains it, so the
    # optimum is the target itself. (With well-separated components the logit gradient, gradkern's and
    # Pyro's MixtureOfDiagNormals' alike, is heavy-tailed: samples between the modes, where q is small,
    # carry large velocities; SVI still converges there, but needs more steps to do so reliably.)
    t_locs = torch.tensor([[-1.0, 0.5], [1.0, -0.5]])
    t_scales = torch.tensor([[0.6, 1.0], [0.8, 0.5]])
    t_weights = torch.tensor([0.3, 0.7])
    target = dist.MixtureSameFamily(dist.Categorical(t_weights), dist.Normal(t_locs, t_scales).to_event(1))

    def model():
        pyro.sample("z", target)

    def guide():
        locs = pyro.param("locs", torch.tensor([[-0.3, 0.0], [0.3, 0.0]]))
        scales = pyro.param("scales", torch.full((2, 2), 1.5), constraint=constraints.positive)
        logits = pyro.param("logits", torch.zeros(2))
        pyro.sample("z", gp.MixtureOfDiagNormals(locs, scales, logits))

    def check():
        locs, scales = pyro.param("locs").detach(), pyro.param("scales").detach()
        weights = pyro.param("logits").detach().softmax(-1)
        order = locs[:, 0].argsort()  # the components may come out in either order
        locs, scales, weights = locs[order], scales[order], weights[order]
        assert (locs - t_locs).abs().max() < 0.1, locs                    # starts 0.5-0.7 off
        assert ((scales / t_scales - 1).abs() < 0.1).all(), scales        # starts 50-200 % off
        assert (weights - t_weights).abs().max() < 0.03, weights          # starts 0.2 off: only the logits move it

    def exact_elbo(n=8192):
        # sum_k pi_k E_{eps ~ N(0, I)}[f(locs_k + scales_k eps)], f = log p - log q with q's parameters held:
        # its gradient is the ELBO's (the score term E_q[d log q] vanishes), with no discrete sampling.
        locs, scales, logits = pyro.param("locs"), pyro.param("scales"), pyro.param("logits")
        q = gd.MixtureOfDiagNormals(locs.detach(), scales.detach(), logits.detach())
        z = locs + scales * torch.randn((n,) + locs.shape)  # (n, K, D): n draws from each component
        f = target.log_prob(z) - q.log_prob(z)
        return (logits.softmax(-1) * f.mean(0)).sum()

    probe = {"locs": torch.tensor([[-0.5, 0.8], [1.2, 0.0]]), "scales": torch.tensor([[1.0, 0.7], [0.5, 0.8]]),
             "logits": torch.tensor([0.8, -0.8])}
    return _Problem("z", model, guide, 0, 300, 0.05, 256, check, exact_elbo, probe)


PROBLEMS = {"gamma_poisson": _gamma_poisson, "dirichlet_categorical": _dirichlet_categorical,
            "von_mises": _von_mises, "mixture_of_diag_normals": _mixture}


@pytest.mark.parametrize("name", PROBLEMS)
def test_svi_converges(name, one_thread):
    pyro.set_rng_seed(0)
    prob = PROBLEMS[name]()
    tr = poutine.trace(prob.guide).get_trace()  # the guide's site takes Trace_ELBO's reparameterized path
    node = tr.nodes[prob.site]
    assert type(node["fn"]).__module__ == "gradkern.pyro" and node["fn"].has_rsample
    assert node["value"].requires_grad
    assert is_identically_zero(node["fn"].score_parts(node["value"]).score_function)

    svi = SVI(prob.model, prob.guide, ClippedAdam({"lr": prob.lr, "lrd": 0.1 ** (1 / prob.steps)}),
              Trace_ELBO(num_particles=prob.particles, vectorize_particles=True, max_plate_nesting=prob.nest))
    for _ in range(prob.steps):
        loss = svi.step()
    assert math.isfinite(loss)
    prob.check()


def _batch_mean(fn, batches):
    g = torch.stack([fn() for _ in range(batches)])
    return g.mean(0), (g.std(0) / batches ** 0.5 if batches > 1 else torch.zeros_like(g[0]))


@pytest.mark.parametrize("name", PROBLEMS)
def test_trace_elbo_gradient_is_exact(name, one_thread):
    # At the guide's starting point (the mixture's: a less symmetric one), Trace_ELBO's gradient through
    # gradkern's rsample must agree with the exact ELBO gradient to Monte Carlo error (5 standard errors
    # from 16 batches), and that error must be small against the gradient w.r.t. each parameter: a zeroed
    # (or wrong-sign) gradient w.r.t. any one parameter fails, whatever the luck of an SVI run.
    pyro.set_rng_seed(0)
    prob = PROBLEMS[name]()
    prob.guide()  # creates the parameters
    store = pyro.get_param_store()
    for n, value in prob.probe.items():
        store[n] = value
    names = list(store.keys())
    leaves = [store.get_param(n).unconstrained() for n in names]
    elbo = Trace_ELBO(num_particles=2048, vectorize_particles=True, max_plate_nesting=prob.nest)

    def pyro_grad():
        loss = elbo.differentiable_loss(prob.model, prob.guide)
        return -torch.cat([g.flatten() for g in torch.autograd.grad(loss, leaves)])

    def exact_grad():
        return torch.cat([g.flatten() for g in torch.autograd.grad(prob.exact_elbo(), leaves)])

    est, se = _batch_mean(pyro_grad, 16)
    ref, ref_se = _batch_mean(exact_grad, 8 if name == "mixture_of_diag_normals" else 1)  # closed forms: exact
    tol = 5 * (se ** 2 + ref_se ** 2).sqrt()
    assert ((est - ref).abs() <= tol).all(), (est, ref, tol)
    # Discriminating: for every parameter, the exact gradient is far outside the tolerance around 0, so a
    # zeroed gradient for that parameter would fail the check above.
    for n, r, t in zip(names, ref.split([x.numel() for x in leaves]), tol.split([x.numel() for x in leaves])):
        assert r.norm() > 3 * t.norm(), (n, r, t)


# ---------------------------------------------------------------- import contract

def _python(code):
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(gradkern.__file__)))
    env["PYTHONPATH"] = os.pathsep.join([root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_import_gradkern_does_not_import_pyro():
    proc = _python("import sys, gradkern, gradkern.distributions\n"
                   "assert not [m for m in sys.modules if m == 'pyro' or m.startswith('pyro.')], 'pyro imported'\n"
                   "assert 'gradkern.pyro' not in sys.modules\n")
    assert proc.returncode == 0, proc.stderr


def test_import_without_pyro_says_what_to_install():
    proc = _python("import sys\n"
                   "sys.modules['pyro'] = None  # as if pyro-ppl were not installed\n"
                   "import gradkern, gradkern.distributions  # fine without pyro\n"
                   "try:\n"
                   "    import gradkern.pyro\n"
                   "except ImportError as e:\n"
                   "    print('MESSAGE:', e)\n"
                   "else:\n"
                   "    raise SystemExit('import gradkern.pyro succeeded without pyro')\n")
    assert proc.returncode == 0, proc.stderr
    assert "MESSAGE: gradkern.pyro needs pyro-ppl: pip install pyro-ppl" in proc.stdout, proc.stdout


@pytest.mark.parametrize("name", COMPOSITE)
def test_composite_classes_in_pyro(name, one_thread):
    g = torch.Generator().manual_seed(0)
    a = (torch.rand(B, generator=g, dtype=torch.float64) + 1.0).requires_grad_()
    if name == "Truncated":
        d = gp.Truncated(gp.Gamma(a, torch.ones(B, dtype=torch.float64)), 0.5, 3.0)
    else:
        logits = torch.zeros(B + (2,), dtype=torch.float64, requires_grad=True)
        d = gp.MixtureSameFamily(torch.distributions.Categorical(logits=logits),
                                 gp.Gamma(torch.stack([a, a + 1], -1), torch.ones(B + (2,), dtype=torch.float64)))
    assert isinstance(d, TorchDistributionMixin) and isinstance(d, getattr(gd, name)) and d.has_rsample

    tr, x, y = _trace_two_sites(d)
    assert x.shape == B and y.shape == (5,) + B and x.requires_grad and y.requires_grad
    assert is_identically_zero(tr.nodes["x"]["fn"].score_parts(x).score_function)
    (grad,) = torch.autograd.grad(y.sum(), a)
    assert torch.isfinite(grad).all() and (grad != 0).all()
    e = d.expand_by([4])
    assert type(e) is type(d) and e.batch_shape == (4,) + B and e.rsample().shape == (4,) + B
    assert d.to_event(1).event_shape == B


def test_hyperspherical_vae_sites():
    # the hyperspherical VAE's pair in a Pyro model and guide: a vMF posterior and a uniform prior on S^2
    loc = torch.nn.functional.normalize(torch.randn(4, 3), dim=-1).requires_grad_()
    kappa = (torch.rand(4) + 1).requires_grad_()

    def model():
        with pyro.plate("n", 4):
            pyro.sample("z", gp.HypersphericalUniform(3, batch_shape=(4,)))

    def guide():
        with pyro.plate("n", 4):
            pyro.sample("z", gp.VonMisesFisher(loc, kappa))

    elbo = pyro.infer.Trace_ELBO().differentiable_loss(model, guide)
    g_loc, g_kappa = torch.autograd.grad(elbo, (loc, kappa))
    assert torch.isfinite(g_loc).all() and torch.isfinite(g_kappa).all() and (g_kappa != 0).all()
    u = gp.HypersphericalUniform(3, batch_shape=(4,))
    assert callable(u) and u.has_rsample and type(u.expand_by([2])) is gp.HypersphericalUniform
