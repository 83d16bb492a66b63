"""Reparameterized samplers of the Gamma family with exact implicit gradients.

Gamma samples come from torch's sampler, log-Gamma and Beta samples from gradkern's fused one (Marsaglia and
Tsang 2000 with the small-shape boost in log space, one counter-based Philox stream per element:
csrc/core/gamma_sampler.h); their gradients w.r.t.
the concentration are the implicit reparameterization gradients of Figurnov et al. (2018), eq. 8, computed
by gradkern's kernels (:func:`gradkern.standard_gamma_grad`), not torch's Jankowiak-Obermeyer
approximation. Beta, Dirichlet, Chi2 and Student-t samples are built from Gamma samples as in section 4 of
the paper; Beta and Dirichlet gradients default to the marginal ones from the incomplete beta function
(gradkern._beta). Beta and Dirichlet are normalised in log space (logsumexp) from log-Gamma
samples, which keeps concentrations down to 1e-6 correctly distributed where torch's samplers return
degenerate values because the Gamma samples underflow to 0.
"""
import math

import torch

from . import _beta, _special  # noqa: F401  (register the gradient ops used below)
from ._fast import Tensor, fast, is_compiling, raw, tf_mode
from ._promote import promote, promote2, promote3
from ._utils import expand_to

__all__ = ["gamma_rsample", "log_gamma_rsample", "beta_rsample", "dirichlet_rsample", "log_dirichlet_rsample",
           "chi2_rsample", "student_t_rsample"]

_ops = torch.ops.gradkern
_SG = _ops.standard_gamma.default
_SG_RAW = raw(_SG)  # eager calls (gradkern/_fast.py)
_SG_FAST = fast("standard_gamma")
_SD = _ops.standard_dirichlet.default
_SD_RAW = raw(_SD)
_SB = _ops.standard_beta.default
_SB_RAW = raw(_SB)
_LSG = _ops.log_standard_gamma.default
_LSG_RAW = raw(_LSG)


# --- op registrations -------------------------------------------------------------------------------
def _fake_like(alpha, generator=None):
    return torch.empty_like(alpha, memory_format=torch.contiguous_format)


torch.library.register_fake("gradkern::standard_gamma")(_fake_like)
torch.library.register_fake("gradkern::log_standard_gamma")(_fake_like)


# Autograd (reverse and forward mode, the torch.func transforms, second order where the derivative ops
# have derivatives): csrc/autograd.cpp, one kernel for every op.


# --- helpers ----------------------------------------------------------------------------------------
def _shape(sample_shape, *tensors):
    # torch.broadcast_shapes costs several microseconds per call; equal shapes (the common case: one
    # tensor, or a distribution's parameters, which torch broadcasts in the constructor) need none.
    first = tensors[0].shape
    if all(t.shape == first for t in tensors[1:]):
        return torch.Size(sample_shape) + first if sample_shape else first
    return torch.Size(sample_shape) + torch.broadcast_shapes(*(t.shape for t in tensors))


def _expanded(t, sample_shape):
    # No view (and no autograd node) when there are no sample dimensions: a microsecond per small call.
    return t.expand(_shape(sample_shape, t)) if sample_shape else t


def _no_graph(*tensors):
    # Sampling without autograd (no_grad, or no parameter requires a gradient): the samplers may then
    # work in place and keep their peak memory near 3x the output (bench/memory.py).
    return not torch.is_grad_enabled() or not any(t.requires_grad for t in tensors)


def _nan_unless_positive(t):
    # An out-of-domain rate or scale gives NaN samples (torch's convention for out-of-domain arguments
    # of its special functions; the concentration is handled the same way by the sampler ops), never a
    # finite number of the wrong sign. The gradient of the valid entries is unchanged.
    return torch.where(t > 0, t, float("nan"))


# --- public API -------------------------------------------------------------------------------------
def gamma_rsample(concentration, rate=None, sample_shape=(), generator=None):
    r"""Reparameterized samples of Gamma(concentration, rate) with exact implicit gradients.

    Args:
        concentration (Tensor): shape parameter :math:`\alpha > 0`, shape ``B``.
        rate (Tensor or float, optional): inverse scale :math:`\beta > 0`, broadcastable with ``B``
            (default 1).
        sample_shape (torch.Size): leading sample dimensions ``S``.
        generator (torch.Generator, optional): source of randomness.

    Returns:
        Tensor of shape ``S + B``. ``d z / d alpha`` is the implicit gradient (Figurnov et al. 2018,
        eq. 8) of the standard Gamma sample divided by the rate; ``dz/d rate = -z / rate``.
    """
    if rate is None:
        if not is_compiling() and not sample_shape and type(concentration) is Tensor and not tf_mode():
            z = _SG_FAST(concentration, generator)
            if z is not NotImplemented:
                return z
        (alpha,) = promote("gamma_rsample", ("concentration", concentration))
        return (_SG if is_compiling() else _SG_RAW)(_expanded(alpha, sample_shape), generator)
    alpha, rate = promote2("gamma_rsample", "concentration", concentration, "rate", rate)
    return _scaled_gamma(alpha, _nan_unless_positive(rate), sample_shape, generator)


def _scaled_gamma(alpha, rate, sample_shape=(), generator=None):
    """Gamma(alpha, rate) samples for tensors of one dtype and device and a rate known to be valid (the
    distribution classes under validate_args; gamma_rsample maps an invalid rate to NaN first)."""
    shape = _shape(sample_shape, alpha, rate)
    return (_SG if is_compiling() else _SG_RAW)(expand_to(alpha, shape), generator) / expand_to(rate, shape)


def log_gamma_rsample(concentration, rate=None, sample_shape=(), generator=None):
    r"""Reparameterized samples of :math:`\log z`, :math:`z \sim` Gamma(concentration, rate).

    For ``concentration < 1`` the sample is drawn in log space
    (:math:`\log z = \log \mathrm{Gamma}(\alpha + 1) + \log(u) / \alpha`), so that concentrations down
    to 1e-6, whose samples underflow to 0 even in float64, still give finite, correctly distributed
    values and the exact implicit gradient :math:`d \log z / d\alpha`
    (:func:`gradkern.log_standard_gamma_grad`).

    Returns:
        Tensor of shape ``sample_shape + broadcast(concentration, rate).shape``.
    """
    if rate is None:
        (alpha,) = promote("log_gamma_rsample", ("concentration", concentration))
        return _ops.log_standard_gamma.default(_expanded(alpha, sample_shape), generator)
    alpha, rate = promote2("log_gamma_rsample", "concentration", concentration, "rate", rate)
    shape = _shape(sample_shape, alpha, rate)
    log_rate = expand_to(torch.log(_nan_unless_positive(rate)), shape)
    return _ops.log_standard_gamma(expand_to(alpha, shape), generator) - log_rate


_REPARAMETERIZATIONS = ("marginal", "gamma")


def _check_reparameterization(fn, reparameterization):
    if reparameterization not in _REPARAMETERIZATIONS:
        raise ValueError(f"gradkern.{fn}: reparameterization must be one of {_REPARAMETERIZATIONS}, "
                         f"got {reparameterization!r}")


def _open_unit(z):
    # Into [tiny, 1 - eps/2] as torch's Beta / Dirichlet samples (finite log_prob), straight through: the
    # gradient of the unclamped value is kept (a clamp would zero it).
    fi = torch.finfo(z.dtype)
    return z + (z.detach().clamp(fi.tiny, 1 - fi.eps / 2) - z.detach())


def dirichlet_rsample(concentration, sample_shape=(), generator=None, reparameterization="marginal"):
    r"""Reparameterized Dirichlet samples, normalised in log space, with exact implicit gradients.

    :math:`z_k = \exp(\log g_k - \operatorname{logsumexp}_j \log g_j)` with log-space Gamma draws
    :math:`\log g_k` (correct down to concentrations of 1e-6), clamped into ``[tiny, 1 - eps/2]`` as
    torch's samples are.

    Gradients (``reparameterization``):

    * ``"marginal"`` (default): torch's Dirichlet gradient field (Jankowiak and Obermeyer 2018), each
      coordinate's marginal Beta(alpha_i, alpha_0 - alpha_i) implicit gradient (eq. 8 with the
      incomplete beta function as the CDF) combined as
      :math:`dz_j / d\alpha_i = g_i (\delta_{ij} - z_j)`, computed exactly by gradkern's kernel
      (torch's is a rational approximation). Lowest per-sample variance of the two.
    * ``"gamma"``: through the Gamma components, :math:`d \log g_k / d \alpha_k` from
      :func:`log_standard_gamma_grad` (section 4 of the paper). Also exact and unbiased, but a
      different, noisier reparameterization (per-sample std 1.1-1.4x the marginal one on Beta).

    Args:
        concentration (Tensor): shape ``B + (K,)``, entries ``> 0``.
        sample_shape (torch.Size): leading sample dimensions.
        generator (torch.Generator, optional): source of randomness.
        reparameterization (str): ``"marginal"`` or ``"gamma"``.

    Returns:
        Tensor of shape ``sample_shape + B + (K,)`` on the simplex.
    """
    _check_reparameterization("dirichlet_rsample", reparameterization)
    (alpha,) = promote("dirichlet_rsample", ("concentration", concentration))
    if alpha.dim() < 1:
        raise ValueError("gradkern.dirichlet_rsample: concentration must have at least one dimension (K)")
    alpha = _expanded(alpha, sample_shape)
    if reparameterization == "marginal":
        # The OpOverload's C++ callable in eager mode (gradkern/_fast.py): at 10 elements the Python frames of
        # the op packet and an expand to the same shape were a third of the call (5.2 vs torch's 3.3 us).
        return (_SD if is_compiling() else _SD_RAW)(alpha, generator)
    return _open_unit(torch.softmax(_ops.log_standard_gamma(alpha, generator), dim=-1))


def log_dirichlet_rsample(concentration, sample_shape=(), generator=None):
    r"""Logarithms :math:`\log z` of reparameterized Dirichlet samples, for concentrations so small that the
    coordinates themselves underflow (alpha = 1e-3 puts most coordinates below float64's smallest number).

    :math:`\log z_k = \log g_k - \operatorname{logsumexp}_j \log g_j` from log-space Gamma draws; the
    gradient is exact, through the Gamma components (:func:`log_standard_gamma_grad`, the ``"gamma"``
    reparameterization of :func:`dirichlet_rsample`): every :math:`\log z_k` and its gradient stay finite
    down to concentrations of 1e-6.

    Returns:
        Tensor of shape ``sample_shape + B + (K,)``, ``logsumexp`` over the last dimension equal to 0.
    """
    (alpha,) = promote("log_dirichlet_rsample", ("concentration", concentration))
    if alpha.dim() < 1:
        raise ValueError("gradkern.log_dirichlet_rsample: concentration must have at least one dimension (K)")
    return torch.log_softmax((_LSG if is_compiling() else _LSG_RAW)(_expanded(alpha, sample_shape), generator), dim=-1)


def beta_rsample(concentration1, concentration0, sample_shape=(), generator=None, reparameterization="marginal"):
    r"""Reparameterized Beta(concentration1, concentration0) samples with exact implicit gradients.

    :math:`z = g_1 / (g_1 + g_0) = \sigma(\log g_1 - \log g_0)` from log-space Gamma draws (correct down to
    concentrations of 1e-6), clamped into ``[tiny, 1 - eps/2]`` as torch's samples are.

    Gradients (``reparameterization``):

    * ``"marginal"`` (default): :math:`dz/da = -(\partial I_z(a, b)/\partial a) / q(z)` and likewise for
      ``b``, the implicit gradient of the Beta CDF itself (eq. 8), from :func:`standard_beta_grad`. The
      reparameterization torch uses (its kernel approximates it), exact here, and the lower-variance one.
      Samples clamped at the dtype's edge keep their finite, correct gradient.
    * ``"gamma"``: through the two Gamma components (section 4 of the paper): exact and unbiased, but
      noisier (per-sample std of dz/da 1.1-1.4x the marginal one).

    Args:
        concentration1, concentration0 (Tensor or float): ``> 0``; broadcast together.
        sample_shape (torch.Size): leading sample dimensions.
        generator (torch.Generator, optional): source of randomness.
        reparameterization (str): ``"marginal"`` or ``"gamma"``.

    Returns:
        Tensor of shape ``sample_shape + broadcast(concentration1, concentration0).shape``.
    """
    _check_reparameterization("beta_rsample", reparameterization)
    a, b = promote2("beta_rsample", "concentration1", concentration1, "concentration0", concentration0)
    shape = _shape(sample_shape, a, b)
    if reparameterization == "marginal":
        return (_SB if is_compiling() else _SB_RAW)(expand_to(a, shape), expand_to(b, shape), generator)
    # Two draws on the expanded (stride-0) parameters rather than one on a stacked copy: no (..., 2)
    # buffers, peak memory ~3x the output instead of ~19x.
    log_g1 = _ops.log_standard_gamma(expand_to(a, shape), generator)
    log_g0 = _ops.log_standard_gamma(expand_to(b, shape), generator)
    # z = g1 / (g1 + g0) = sigmoid(log g1 - log g0), formed from the logs: tiny concentrations, whose
    # samples underflow, stay exact (sigmoid(d) = e^d / (1 + e^d) keeps full relative accuracy for d << 0).
    z = _ops.sigmoid_difference(log_g1, log_g0)
    del log_g1, log_g0
    if _no_graph(a, b):
        fi = torch.finfo(z.dtype)
        return z.clamp_(fi.tiny, 1 - fi.eps / 2)
    return _open_unit(z)


def chi2_rsample(df, sample_shape=(), generator=None):
    r"""Reparameterized Chi2(df) samples, :math:`2\,\mathrm{Gamma}(df/2, 1)`, exact implicit gradient
    w.r.t. ``df``. Shape ``sample_shape + df.shape``."""
    (df,) = promote("chi2_rsample", ("df", df))
    z = (_SG if is_compiling() else _SG_RAW)(_expanded(0.5 * df, sample_shape), generator)
    return z.mul_(2) if _no_graph(df) else 2 * z


def student_t_rsample(df, loc=0.0, scale=1.0, sample_shape=(), generator=None):
    r"""Reparameterized Student-t samples :math:`loc + scale \cdot \epsilon \sqrt{df / \chi^2_{df}}`.

    The chi-square factor is taken in log space (:func:`log_gamma_rsample`), so tiny ``df`` gives
    heavy-tailed but finite samples; gradients w.r.t. ``df`` are the exact implicit ones, w.r.t. ``loc``
    and ``scale`` the usual location-scale ones.

    Returns:
        Tensor of shape ``sample_shape + broadcast(df, loc, scale).shape``. Samples beyond the dtype's
        range (possible for tiny ``df``) are the largest finite value of their sign; NaN where ``df`` or
        ``scale`` is not positive.
    """
    df, loc, scale = promote3("student_t_rsample", "df", df, "loc", loc, "scale", scale)
    return _student_t(df, loc, _nan_unless_positive(scale), _shape(sample_shape, df, loc, scale), generator)


def _student_t(df, loc, scale, shape, generator=None):
    """student_t_rsample's sampler for tensors of one dtype and device, broadcastable to ``shape``, and a scale
    known to be valid (the StudentT class under validate_args; student_t_rsample maps an invalid one to NaN
    first)."""
    half = 0.5 * df
    log_g = (_LSG if is_compiling() else _LSG_RAW)(expand_to(half, shape), generator)
    # chi2 = 2 g, so sqrt(df / chi2) = exp((log(df / 2) - log g) / 2).
    # For tiny df a fraction of the exact distribution lies beyond the dtype's range (float32, df = 0.1:
    # about 1 in 8000). The factor is capped below the overflow threshold in log space and the sample at
    # the largest finite value of its sign, so samples, log_prob and gradients stay finite (a capped
    # sample has gradient 0, as any clamped value; capping after exp would give 0 * inf = NaN).
    info = torch.finfo(df.dtype)
    cap = math.log(info.max) - 1e-3
    if _no_graph(df, loc, scale):  # the same arithmetic in place; the factor before the noise (memory)
        factor = log_g.neg_().add_(torch.log(half)).mul_(0.5).clamp_(max=cap).exp_()
        eps = torch.randn(shape, dtype=df.dtype, device=df.device, generator=generator)
        return factor.mul_(eps).mul_(scale).add_(loc).clamp_(-info.max, info.max)
    factor = torch.exp((0.5 * (torch.log(half) - log_g)).clamp(max=cap))
    eps = torch.randn(shape, dtype=df.dtype, device=df.device, generator=generator)
    value = loc + scale * (eps * factor)
    return value.clamp(-info.max, info.max)
