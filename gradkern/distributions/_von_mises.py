"""von Mises with a fused sampler, exact implicit reparameterization gradients, ``cdf``, ``icdf``,
``entropy`` and KL divergence, and the uniform distribution on the circle at concentration 0."""
import math

import torch
import torch.distributions as td
from torch.distributions import constraints
from torch.distributions.kl import register_kl

from .._utils import sum_to_shape
from .._vonmises import vonmises_cdf, vonmises_grad, vonmises_rsample
from ._common import DeepcopyMixin, GeneratorSampleMixin

__all__ = ["VonMises"]

_TWO_PI = 2 * math.pi

# 1 - A(kappa), A = I1 / I0, for large kappa: (1/2 + 1/(8k) + 1/(8k^2) + 25/(128k^3) + 13/(32k^4)
# + 1073/(1024k^5) + 103/(32k^6) + ...) / k, exact to rounding above _SERIES_FROM (truncation < 1e-15
# relative there), where 1 - i1e/i0e would lose 2 kappa eps to cancellation.
_ONE_MINUS_A_SERIES = (1 / 2, 1 / 8, 1 / 8, 25 / 128, 13 / 32, 1073 / 1024, 103 / 32)
_SERIES_FROM = 250.0
_ICDF_MAX_ITER = 100

_ops = torch.ops.gradkern


def _wide(t):
    """float64 for the Bessel-function and root-finding arithmetic (float32 results are rounded once)."""
    return t.double() if t.dtype != torch.float64 else t


def _one_minus_a(kappa):
    """``1 - I1(kappa) / I0(kappa)`` without cancellation, in ``kappa``'s dtype (float64 inside); 1 at 0."""
    k = _wide(kappa)
    large = k > _SERIES_FROM
    inv = torch.where(large, k, _SERIES_FROM).reciprocal()  # both branches see safe inputs (and gradients)
    series = torch.zeros_like(inv)
    for c in reversed(_ONE_MINUS_A_SERIES):
        series = series * inv + c
    k_small = torch.where(large, 0.0, k)
    i0e = torch.special.i0e(k_small)
    direct = (i0e - torch.special.i1e(k_small)) / i0e
    return torch.where(large, series * inv, direct).to(kappa.dtype)


def _bessel_ratio(kappa):
    """``A(kappa) = I1(kappa) / I0(kappa)``."""
    k = _wide(kappa)
    return (torch.special.i1e(k) / torch.special.i0e(k)).to(kappa.dtype)


def _log_density0(y, kappa):
    """log density of vonMises(0, kappa) at y (the scaled Bessel function keeps large kappa finite)."""
    return kappa * (torch.cos(y) - 1) - torch.log(_TWO_PI * torch.special.i0e(kappa))


def _solve_lower(v, kappa):
    """y in [-pi, 0] with F0(y; kappa) = v for v in [0, 1/2] (float64): Newton's method on
    log F0(y) - log v (which, unlike F0 - v, converges in the lower tail, where F0 is exponentially small;
    gradkern's CDF is accurate to relative rounding there), safeguarded by bisection on a bracket that
    every step narrows, capped at _ICDF_MAX_ITER iterations."""
    lo = torch.full_like(v, -math.pi)
    hi = torch.zeros_like(v)
    # Start: the normal approximation N(0, 1/kappa) for concentrated distributions, uniform otherwise.
    normal = torch.special.ndtri(v.clamp(min=1e-300)) / kappa.clamp(min=1e-300).sqrt()
    y = torch.where(kappa > 2, normal, _TWO_PI * v - math.pi).clamp(-math.pi, 0.0)
    y = torch.where(v == 0, -math.pi, y)
    tol = 4 * torch.finfo(v.dtype).eps * math.pi
    done = (v == 0) | torch.isnan(v) | torch.isnan(kappa)
    log_v = torch.log(v)
    for _ in range(_ICDF_MAX_ITER):
        f = _ops.vonmises_cdf(y, kappa)
        root = f == v
        lo = torch.where(f < v, y, lo)
        hi = torch.where(f > v, y, hi)
        # NaN or +-inf where F0 or the density underflows: bisect.
        step = (torch.log(f) - log_v) * f * torch.exp(-_log_density0(y, kappa))
        newton = y - step
        small = step.abs() <= tol
        y_new = torch.where(((newton > lo) & (newton < hi)) | small, newton, 0.5 * (lo + hi))
        y_new = torch.where(done | root, y, y_new)
        done = done | root | small | (hi - lo <= tol)
        y = y_new
        if bool(done.all()):
            break
    return y


def _solve_cdf0(u, kappa):
    """y in [-pi, pi] with F0(y; kappa) = u for u in [0, 1] (float64), by the symmetry F0(-y) = 1 - F0(y)
    from the lower half (1 - u is exact for u > 1/2). NaN inputs give NaN."""
    upper = u > 0.5
    y = _solve_lower(torch.where(upper, 1 - u, u), kappa)
    y = torch.where(upper, -y, y)
    return torch.where(torch.isnan(u) | torch.isnan(kappa), u + kappa, y)


class _VonMisesIcdf(torch.autograd.Function):
    """x = loc + F0^{-1}(u - floor(u); kappa) + 2 pi floor(u), differentiated by the implicit function
    theorem: dx/du = 1 / q(x), dx/dloc = 1, dx/dkappa = -(dF/dkappa) / q = gradkern.vonmises_grad.

    setup_context style with a jvp and a vmap rule (elementwise: the batch dimension first), so that forward
    mode and every torch.func transform apply. Second derivatives: through the gradkern ops
    (vonmises_grad's derivative in x; in kappa it raises)."""

    @staticmethod
    def forward(u, loc, kappa):
        dtype = torch.promote_types(u.dtype, torch.promote_types(loc.dtype, kappa.dtype))
        u_b, loc_b, kappa_b = torch.broadcast_tensors(u, loc, kappa)
        u64, k64 = _wide(u_b), _wide(kappa_b)
        periods = torch.floor(u64)
        y = _solve_cdf0(u64 - periods, k64)
        return (_wide(loc_b) + (y + _TWO_PI * periods)).to(dtype), y

    @staticmethod
    def setup_context(ctx, inputs, output):
        _, y = output
        k64 = _wide(inputs[2].expand(y.shape))
        ctx.mark_non_differentiable(y)
        ctx.save_for_backward(y, k64)
        ctx.save_for_forward(y, k64)
        ctx.inputs = [(t.shape, t.dtype) for t in inputs]
        ctx.out_dtype = output[0].dtype

    @staticmethod
    def backward(ctx, grad, _grad_y):
        y, k64 = ctx.saved_tensors
        (shape_u, dtype_u), (shape_loc, dtype_loc), (shape_k, dtype_k) = ctx.inputs
        g = _wide(grad)
        grad_u = grad_loc = grad_kappa = None
        if ctx.needs_input_grad[0]:
            grad_u = sum_to_shape(g * torch.exp(-_log_density0(y, k64)), shape_u).to(dtype_u)
        if ctx.needs_input_grad[1]:
            grad_loc = sum_to_shape(grad, shape_loc).to(dtype_loc)
        if ctx.needs_input_grad[2]:
            grad_kappa = sum_to_shape(g * vonmises_grad(k64, y), shape_k).to(dtype_k)
        return grad_u, grad_loc, grad_kappa

    @staticmethod
    def jvp(ctx, t_u, t_loc, t_kappa):
        y, k64 = ctx.saved_tensors
        out = torch.zeros_like(y)
        if t_u is not None:
            out = out + _wide(t_u) * torch.exp(-_log_density0(y, k64))
        if t_loc is not None:
            out = out + _wide(t_loc)
        if t_kappa is not None:
            out = out + _wide(t_kappa) * vonmises_grad(k64, y)
        return out.to(ctx.out_dtype), None

    @staticmethod
    def vmap(info, in_dims, u, loc, kappa):
        from .._vmap import _elementwise_args

        return _VonMisesIcdf.apply(*_elementwise_args(in_dims, (u, loc, kappa))), (0, 0)


class VonMises(GeneratorSampleMixin, DeepcopyMixin, td.VonMises):
    r"""VonMises(loc, concentration) with ``has_rsample = True``: samples from gradkern's fused kernel
    (on CPU and CUDA), reparameterized with the exact implicit gradient w.r.t. the concentration.

    Adds to :class:`torch.distributions.VonMises`:

    * ``concentration = 0`` (the uniform distribution on the circle, as in TensorFlow Probability):
      ``arg_constraints["concentration"]`` is ``constraints.nonnegative``;
    * :meth:`cdf` and :meth:`icdf` (measured from ``loc - pi``, extended to the real line periodically);
    * :meth:`entropy`, and ``kl_divergence`` between von Mises distributions (registered with
      :func:`torch.distributions.kl.register_kl`);
    * ``generator=`` on :meth:`sample` and :meth:`rsample`.

    Everything else (``log_prob``, ``mean``, ``mode``, ``variance``, validation) is torch's.
    """

    arg_constraints = {"loc": constraints.real, "concentration": constraints.nonnegative}
    has_rsample = True

    def rsample(self, sample_shape=torch.Size(), generator=None):
        """Reparameterized samples from :func:`gradkern.vonmises_rsample`, in ``[-pi, pi)``: gradient 1
        w.r.t. ``loc`` and the exact implicit gradient w.r.t. the concentration; ``generator`` is passed on."""
        shape = self._extended_shape(sample_shape)
        return vonmises_rsample(self.loc.expand(shape), self.concentration.expand(shape), generator=generator)

    def expand(self, batch_shape, _instance=None):
        """The same distribution with ``loc`` and ``concentration`` expanded to ``batch_shape``; accepts
        ``_instance`` like every other torch distribution (torch's VonMises.expand does not)."""
        new = self._get_checked_instance(VonMises, _instance)
        batch_shape = torch.Size(batch_shape)
        new.loc = self.loc.expand(batch_shape)
        new.concentration = self.concentration.expand(batch_shape)
        super(td.VonMises, new).__init__(batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def cdf(self, value):
        r"""``P(X <= value)`` with ``X`` measured from ``loc - pi``: ``F(x) = F_0(x - loc)`` where ``F_0``
        is the CDF of vonMises(0, kappa) on ``[-pi, pi]``, extended by ``F_0(y + 2 pi k) = F_0(y) + k``
        (the convention of TensorFlow Probability and scipy.stats.vonmises). :func:`gradkern.vonmises_cdf`;
        differentiable in ``value``, ``loc`` and ``concentration``."""
        if self._validate_args:
            self._validate_sample(value)
        return vonmises_cdf(value, self.loc, self.concentration)

    def icdf(self, value):
        r"""The inverse of :meth:`cdf`: for ``value`` in ``[0, 1]`` the quantile in
        ``[loc - pi, loc + pi]``; other values follow the periodic extension
        (``icdf(u + k) = icdf(u) + 2 pi k``), so that ``icdf(cdf(x)) = x`` for every real ``x``.

        Newton's method on :func:`gradkern.vonmises_cdf`, safeguarded by bisection and capped at 100
        iterations, in float64 (float32 results are rounded once). Differentiable by the implicit function
        theorem: ``d/dvalue = 1 / density``, ``d/dloc = 1``, ``d/dconcentration`` is
        :func:`gradkern.vonmises_grad` at the quantile."""
        if not isinstance(value, torch.Tensor):
            value = torch.as_tensor(value, dtype=self.loc.dtype, device=self.loc.device)
        return _VonMisesIcdf.apply(value, self.loc, self.concentration)[0]

    def entropy(self):
        r""":math:`-\kappa I_1(\kappa)/I_0(\kappa) + \log(2\pi I_0(\kappa))`, evaluated as
        ``kappa (1 - A) + log(2 pi i0e(kappa))`` with the exponentially scaled Bessel functions and a
        cancellation-free ``kappa (1 - A)`` (``log(2 pi)`` at ``kappa = 0``, finite at ``kappa = 1e6``)."""
        kappa = self.concentration
        log_norm = torch.log(_TWO_PI * torch.special.i0e(_wide(kappa))).to(kappa.dtype)
        return kappa * _one_minus_a(kappa) + log_norm


def _kl_vonmises_vonmises(p, q):
    r"""KL(p || q) = log(I0(k_q) / I0(k_p)) + A(k_p) (k_p - k_q cos(mu_p - mu_q)), rearranged as
    ``log(i0e(k_q) / i0e(k_p)) + (k_q - k_p)(1 - A(k_p)) + 2 k_q A(k_p) sin^2((mu_p - mu_q) / 2)`` so that
    no term cancels: exactly 0 for p = q, and finite for concentrations up to 1e6 and beyond."""
    kp, kq = p.concentration, q.concentration
    dtype = torch.promote_types(kp.dtype, kq.dtype)
    log_ratio = (torch.log(torch.special.i0e(_wide(kq))) - torch.log(torch.special.i0e(_wide(kp)))).to(dtype)
    a_p = _bessel_ratio(kp)
    one_minus_a = _one_minus_a(kp)
    half_angle = torch.sin(0.5 * (p.loc - q.loc))
    return log_ratio + (kq - kp) * one_minus_a + 2 * kq * a_p * half_angle * half_angle


# gradkern's VonMises on either side; torch's own pairs (which have no KL in torch) are left alone.
register_kl(VonMises, VonMises)(_kl_vonmises_vonmises)
register_kl(VonMises, td.VonMises)(_kl_vonmises_vonmises)
register_kl(td.VonMises, VonMises)(_kl_vonmises_vonmises)
