// Every gradkern operator schema, declared once. Backend kernels live in cpu/ and cuda/; fake (meta)
// kernels and autograd formulas are registered next to the Python wrappers (gradkern/_special.py,
// _gamma.py, _vonmises.py, _mixtures.py, copulas.py, antithetic.py).
#include <Python.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/Exceptions.h>
#include <torch/csrc/Generator.h>
#include <torch/csrc/autograd/python_variable.h>
#include <torch/library.h>

// A plain extension module: importing gradkern._C runs the static registrations below and in the
// backend files. Every entry point is a torch op; the module adds only eager fast paths for the
// two-tensor special functions (issue 21): fast_<op>(a, b) calls the op through a cached dispatcher handle,
// as torch's own C++ bindings call theirs, which skips the schema-driven argument parsing of a torch.ops
// call (0.3-0.5 us of about 2 at 10 elements), and checks here what the wrappers' type promotion would
// (one floating dtype, one device; otherwise it returns NotImplemented and the wrapper promotes). The dispatcher still runs every key (autograd, functorch,
// Python dispatch modes, fake tensors); what it cannot see, __torch_function__ of subclasses and modes and
// dynamo tracing, the Python wrappers check before taking this path (gradkern/_fast.py).
// PyMODINIT_FUNC exports the symbol despite -fvisibility=hidden.
namespace {
#define GK_FAST_BINARY(NAME)                                                                             \
  PyObject* fast_##NAME(PyObject*, PyObject* const* args, Py_ssize_t nargs) {                            \
    HANDLE_TH_ERRORS                                                                                     \
    if (nargs != 2 || !THPVariable_Check(args[0]) || !THPVariable_Check(args[1])) {                      \
      PyErr_SetString(PyExc_TypeError, "gradkern._C.fast_" #NAME " takes two tensors");                  \
      return nullptr;                                                                                    \
    }                                                                                                    \
    static const auto op = c10::Dispatcher::singleton()                                                  \
                               .findSchemaOrThrow("gradkern::" #NAME, "")                                \
                               .typed<at::Tensor(const at::Tensor&, const at::Tensor&)>();               \
    const at::Tensor& a = THPVariable_Unpack(args[0]);                                                   \
    const at::Tensor& b = THPVariable_Unpack(args[1]);                                                   \
    /* Only what the wrappers' promote2 passes through unchanged; anything else goes back to it. */      \
    if (a.scalar_type() != b.scalar_type() || !at::isFloatingType(a.scalar_type()) ||                    \
        a.device() != b.device())                                                                        \
      Py_RETURN_NOTIMPLEMENTED;                                                                          \
    at::Tensor r;                                                                                        \
    {                                                                                                    \
      pybind11::gil_scoped_release no_gil;                                                               \
      r = op.call(a, b);                                                                                 \
    }                                                                                                    \
    return THPVariable_Wrap(std::move(r));                                                               \
    END_HANDLE_TH_ERRORS                                                                                 \
  }
#define GK_FAST_OPS(X) X(gammainc) X(gammaincc) X(gammaincinv) X(standard_gamma_grad) X(log_standard_gamma_grad)
// standard_gamma(alpha, generator): gamma_rsample's sampler, the same way (generator None or a torch.Generator).
PyObject* fast_standard_gamma(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  HANDLE_TH_ERRORS
  if (nargs != 2 || !THPVariable_Check(args[0])) {
    PyErr_SetString(PyExc_TypeError, "gradkern._C.fast_standard_gamma takes a tensor and a generator or None");
    return nullptr;
  }
  std::optional<at::Generator> gen;
  if (args[1] != Py_None) {
    if (!THPGenerator_Check(args[1])) Py_RETURN_NOTIMPLEMENTED;
    gen = reinterpret_cast<THPGenerator*>(args[1])->cdata;
  }
  const at::Tensor& a = THPVariable_Unpack(args[0]);
  if (!at::isFloatingType(a.scalar_type())) Py_RETURN_NOTIMPLEMENTED;
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("gradkern::standard_gamma", "")
                             .typed<at::Tensor(const at::Tensor&, std::optional<at::Generator>)>();
  at::Tensor r;
  {
    pybind11::gil_scoped_release no_gil;
    r = op.call(a, gen);
  }
  return THPVariable_Wrap(std::move(r));
  END_HANDLE_TH_ERRORS
}
GK_FAST_OPS(GK_FAST_BINARY)
#undef GK_FAST_BINARY
#define GK_FAST_ENTRY(NAME) {"fast_" #NAME, reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(&fast_##NAME)), METH_FASTCALL, nullptr},
PyMethodDef methods[] = {GK_FAST_OPS(GK_FAST_ENTRY) GK_FAST_ENTRY(standard_gamma){nullptr, nullptr, 0, nullptr}};
#undef GK_FAST_ENTRY
#undef GK_FAST_OPS
}  // namespace

PyMODINIT_FUNC PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, methods};
  return PyModule_Create(&module_def);
}

// Random ops carry the nondeterministic_seeded tag (as torch's _standard_gamma does), so tracing and
// compilers treat them as seeded draws, never as pure functions.
TORCH_LIBRARY(gradkern, m) {
  // --- Gamma family (csrc/core/igamma.h) -------------------------------------------------------
  // Regularized incomplete gamma P(a, x) and Q(a, x) = 1 - P(a, x).
  m.def("gammainc(Tensor a, Tensor x) -> Tensor");
  m.def("gammaincc(Tensor a, Tensor x) -> Tensor");
  // dP/da by forward-mode differentiation of the series / continued fraction / Temme expansion.
  m.def("gammainc_grad_a(Tensor a, Tensor x) -> Tensor");
  // dx/dalpha at fixed quantile for x ~ Gamma(alpha, 1): -(dP/dalpha) / q(x), fused (eq. 11).
  m.def("standard_gamma_grad(Tensor alpha, Tensor x) -> Tensor");
  // d(log x)/dalpha given log x, for log-space samples at tiny alpha (x itself may underflow).
  m.def("log_standard_gamma_grad(Tensor alpha, Tensor log_x) -> Tensor");
  // Second order in the shape (csrc/core/igamma_d2.h: the branches above carried one order further):
  // d2P/da2, and the alpha-derivatives at fixed x (fixed log x) of standard_gamma_grad
  // (log_standard_gamma_grad). The derivatives of the three ops above in a / alpha.
  m.def("gammainc_grad_aa(Tensor a, Tensor x) -> Tensor");
  m.def("standard_gamma_grad_dalpha(Tensor alpha, Tensor x) -> Tensor");
  m.def("log_standard_gamma_grad_dalpha(Tensor alpha, Tensor log_x) -> Tensor");
  // x such that P(a, x) = p.
  m.def("gammaincinv(Tensor a, Tensor p) -> Tensor");
  // Gamma(alpha, 1) samples (torch's sampler); autograd gives the exact implicit gradient.
  m.def("standard_gamma(Tensor alpha, Generator? generator=None) -> Tensor", {at::Tag::nondeterministic_seeded});
  // log of Gamma(alpha, 1) samples, drawn in log space for alpha < 1 (log Gamma(alpha + 1) + log(u) / alpha)
  // so that concentrations down to 1e-6 do not underflow to log(0).
  m.def("log_standard_gamma(Tensor alpha, Generator? generator=None) -> Tensor", {at::Tag::nondeterministic_seeded});

  // --- Beta family (csrc/core/ibeta.h) -----------------------------------------------------------
  // Regularized incomplete beta I_x(a, b) and 1 - I_x(a, b), each computed directly.
  m.def("betainc(Tensor a, Tensor b, Tensor x) -> Tensor");
  m.def("betaincc(Tensor a, Tensor b, Tensor x) -> Tensor");
  // (dI/da, dI/db) by forward-mode differentiation of the continued fraction.
  m.def("betainc_grads(Tensor a, Tensor b, Tensor x) -> (Tensor, Tensor)");
  // (dx/da, dx/db) at fixed I_x(a, b) for x ~ Beta(a, b): -(dI/da, dI/db) / q(x), the density fused.
  m.def("standard_beta_grad(Tensor a, Tensor b, Tensor x) -> (Tensor, Tensor)");
  // Second order (csrc/core/ibeta_d2.h: the fraction carried to second order in hyper-dual numbers):
  // (d2I/da2, d2I/(da db), d2I/db2), and (d g_a/da, d g_a/db, d g_b/da, d g_b/db) at fixed x for
  // (g_a, g_b) = standard_beta_grad(a, b, x).
  m.def("betainc_grads2(Tensor a, Tensor b, Tensor x) -> (Tensor, Tensor, Tensor)");
  m.def("standard_beta_grad_d2(Tensor a, Tensor b, Tensor x) -> (Tensor, Tensor, Tensor, Tensor)");
  // x with I_x(a, b) = p.
  m.def("betaincinv(Tensor a, Tensor b, Tensor p) -> Tensor");
  // Beta(concentration1, concentration0) samples (log-space Gamma draws), clamped into [tiny, 1 - eps/2];
  // autograd: the marginal implicit gradient standard_beta_grad (exact).
  m.def("standard_beta(Tensor concentration1, Tensor concentration0, Generator? generator=None) -> Tensor",
        {at::Tag::nondeterministic_seeded});
  // sigmoid(x - y) with bits independent of the thread count (the last step of Beta sampling from two
  // log-Gamma draws, standard_beta and the "gamma" reparameterization of beta_rsample).
  m.def("sigmoid_difference(Tensor x, Tensor y) -> Tensor");
  // Dirichlet(concentration) samples along the last dimension, clamped likewise; autograd: torch's
  // Dirichlet backward (each coordinate's marginal Beta gradient, dirichlet_grad), exact.
  m.def("standard_dirichlet(Tensor concentration, Generator? generator=None) -> Tensor", {at::Tag::nondeterministic_seeded});
  // torch._dirichlet_grad's contract: (dx/dalpha) / (1 - x) for x ~ Beta(alpha, total - alpha), exact.
  m.def("dirichlet_grad(Tensor x, Tensor alpha, Tensor total) -> Tensor");

  // --- von Mises (csrc/core/vonmises_cdf.h, vonmises_sampler.h) ----------------------------------------------------------
  // CDF of vonMises(0, kappa), eq. 14, wrapped so that F(x + 2 pi k) = F(x) + k.
  m.def("vonmises_cdf(Tensor x, Tensor concentration) -> Tensor");
  // dF/dkappa at fixed x (forward-mode through the series / large-kappa expansion).
  m.def("vonmises_cdf_grad_concentration(Tensor x, Tensor concentration) -> Tensor");
  // dx/dkappa at fixed quantile for x ~ vonMises(0, kappa): -(dF/dkappa) / q(x), fused.
  m.def("vonmises_grad(Tensor concentration, Tensor x) -> Tensor");
  // Second order (issue 15): d2F/dkappa2 at fixed x, and d/dkappa of vonmises_grad at fixed x.
  m.def("vonmises_cdf_grad_kk(Tensor x, Tensor concentration) -> Tensor");
  m.def("vonmises_grad_dconcentration(Tensor concentration, Tensor x) -> Tensor");
  // Samples of vonMises(0, kappa) in [-pi, pi), one per element of concentration.
  m.def("vonmises_sample(Tensor concentration, Generator? generator=None) -> Tensor", {at::Tag::nondeterministic_seeded});
  // (x + loc) wrapped into [-pi, pi) in one pass (the location shift of vonmises_rsample).
  m.def("vonmises_shift_wrap(Tensor x, Tensor loc) -> Tensor");

  // --- von Mises-Fisher on S^(d-1) (csrc/core/vmf.h) -----------------------------------------------
  // Everything in u = 1 - mu^T z in [0, 2] (w = mu^T z near 1 keeps its accuracy as u). d >= 2 is the
  // dimension of the space the sphere lies in.
  // u for z ~ vMF(mu, kappa), one per element of concentration (Wood's rejection sampler on Philox
  // streams); autograd: the exact implicit gradient vmf_grad_u.
  m.def("vmf_sample_u(Tensor concentration, int d, Generator? generator=None) -> Tensor",
        {at::Tag::nondeterministic_seeded});
  // like.shape + (d - 1,) standard normals (the tangent noise of vmf_direction) of like's dtype (float32 /
  // float64) and device, from Philox streams by Box-Muller (csrc/core/philox_normal.h); like gives the shape
  // only. No derivative.
  m.def("vmf_noise(Tensor like, int d, Generator? generator=None) -> Tensor", {at::Tag::nondeterministic_seeded});
  // du/dkappa at fixed P(U <= u) (eq. 8 with F the CDF of u; quadrature in the angle, no normaliser).
  m.def("vmf_grad_u(Tensor concentration, Tensor u, int d) -> Tensor");
  // d/dkappa of vmf_grad_u at fixed u (second order, issue 15).
  m.def("vmf_grad_u_dkappa(Tensor concentration, Tensor u, int d) -> Tensor");
  // P(1 - mu^T z <= u). A CDF takes its value first, as vonmises_cdf (x, concentration) and
  // Distribution.cdf(value); the gradient ops take the parameter first, as torch._standard_gamma_grad.
  m.def("vmf_cdf_u(Tensor u, Tensor concentration, int d) -> Tensor");
  // (log Z_u, E[u], Var[u]): Z_u = int_-1^1 e^(kappa (w - 1)) (1 - w^2)^((d-3)/2) dw, E[u] = 1 - A_d(kappa)
  // (A_d = I_(d/2) / I_(d/2-1), the mean resultant length), Var[u] = Var[w] = A_d'(kappa).
  m.def("vmf_moments(Tensor concentration, int d) -> (Tensor, Tensor, Tensor)");
  // z = H(loc) (1 - u, sqrt(u (2 - u)) noise / |noise|), H the Householder map sending e_1 to loc: the vMF
  // sample from u and d - 1 standard normals. loc (..., d), u (..., 1), noise (..., d - 1), broadcast over
  // the leading dimensions; float32 / float64. Differentiable in all three.
  m.def("vmf_direction(Tensor loc, Tensor u, Tensor noise) -> Tensor");
  // Its vector-Jacobian product in one fused pass: (grad_loc, grad_u, grad_noise) in the output's leading
  // shape (the autograd formula of vmf_direction when no higher derivative is being recorded).
  m.def("vmf_direction_backward(Tensor grad, Tensor loc, Tensor u, Tensor noise) -> (Tensor, Tensor, Tensor)");
  // E[(u - E[u])^k], 2 <= k <= 8 (the derivatives of the moments w.r.t. kappa).
  m.def("vmf_central_moment(Tensor concentration, int d, int k) -> Tensor");

  // --- Truncated Normal (csrc/core/truncnorm.h) --------------------------------------------------
  // The quantile function of Normal(loc, scale) truncated to [low, high] (low may be -inf, high inf), in
  // the oriented log-space-safe form that stays exact deep in either tail. Not differentiable (the
  // distribution's rsample attaches the implicit gradients; its icdf takes Newton steps for them).
  m.def("truncated_normal_icdf(Tensor p, Tensor loc, Tensor scale, Tensor low, Tensor high) -> Tensor");
  // grad * (dz/dloc, dz/dscale, dz/dlow, dz/dhigh) at fixed F(z) = p for samples z drawn at probabilities p
  // (eq. 8 with the truncated CDF; F and 1 - F exact from p), in the broadcast shape: the first-order
  // backward pass of TruncatedNormal.rsample in one pass.
  m.def("truncated_normal_backward(Tensor grad, Tensor z, Tensor p, Tensor loc, Tensor scale, Tensor low, Tensor high) "
        "-> (Tensor, Tensor, Tensor, Tensor)");

  // --- Gaussian mixtures (csrc/core/mixture.h) ---------------------------------------------------
  // Shapes: noise, z, grad (S, B, D); component (S, B) int64; locs (B, K, D); coord_scale (B, D), or
  // (B, K, D) for diag_normals; component_logits, component_scale (B, K). The *_rsample ops draw
  // z = locs[k] + component_scale[k] * coord_scale[k] * noise for the given components k; their autograd
  // formula is the matching *_backward op, the transport-equation pathwise gradient (eq. 12 for the
  // component parameters, eqs. 14/15 and 40-55 for the logits) summed over samples, fused per sample.
  m.def("mixture_shared_cov_rsample(Tensor noise, Tensor component, Tensor locs, Tensor coord_scale, "
        "Tensor component_logits) -> Tensor");
  m.def("mixture_shared_cov_backward(Tensor grad, Tensor z, Tensor locs, Tensor coord_scale, "
        "Tensor component_logits) -> (Tensor, Tensor, Tensor)");
  // velocity: the logit field of MixtureOfDiagNormals, "reference" (one common reference N(mu', s'),
  // eqs. 49-51, O(K D) per sample) or "pairwise" (per-component references and eq. 15, O(K^2 D)).
  m.def("mixture_diag_normals_rsample(Tensor noise, Tensor component, Tensor locs, Tensor coord_scale, "
        "Tensor component_logits, str velocity=\"reference\") -> Tensor");
  m.def("mixture_diag_normals_backward(Tensor grad, Tensor z, Tensor locs, Tensor coord_scale, "
        "Tensor component_logits, str velocity=\"reference\") -> (Tensor, Tensor, Tensor)");
  m.def("mixture_gaussian_scale_rsample(Tensor noise, Tensor component, Tensor coord_scale, Tensor component_logits, "
        "Tensor component_scale) -> Tensor");
  m.def("mixture_gaussian_scale_backward(Tensor grad, Tensor z, Tensor coord_scale, Tensor component_logits, "
        "Tensor component_scale) -> (Tensor, Tensor, Tensor)");
  m.def("mixture_discrete_gaussian_scale_rsample(Tensor noise, Tensor component, Tensor locs, Tensor coord_scale, "
        "Tensor component_logits, Tensor component_scale) -> Tensor");
  m.def("mixture_discrete_gaussian_scale_backward(Tensor grad, Tensor z, Tensor locs, Tensor coord_scale, "
        "Tensor component_logits, Tensor component_scale) -> (Tensor, Tensor, Tensor, Tensor)");
  // --- end Gaussian mixtures ---

  // --- ARMS copulas (csrc/core/copula.h) ---------------------------------------------------------
  // n mutually antithetic uniforms per element of `like` (only its shape, dtype and device are used):
  // returns u of shape (n, *like.shape), column u[:, j] one draw of Algorithm 1 (Dirichlet) or
  // Algorithm 2 (Gaussian, R_ij = -1/(n-1)). n >= 2.
  m.def("dirichlet_copula(Tensor like, int n, Generator? generator=None) -> Tensor", {at::Tag::nondeterministic_seeded});
  m.def("gaussian_copula(Tensor like, int n, Generator? generator=None) -> Tensor", {at::Tag::nondeterministic_seeded});
  // Common pairwise correlation of b_i = 1[u_i < p] (Theorem 4 / eq. 8); mode "oriented": the
  // orientation ARMS uses (u for p >= 1/2, 1 - u below), "direct": u, "reflected": 1 - u.
  m.def("dirichlet_copula_rho(Tensor p, int n, str mode=\"oriented\") -> Tensor");
  m.def("gaussian_copula_rho(Tensor p, int n) -> Tensor");
  // P(X < h, Y < k) for a standard bivariate normal with correlation r.
  m.def("bivariate_normal_cdf(Tensor h, Tensor k, Tensor r) -> Tensor");
  // --- end ARMS copulas ---

  // --- Antithetic Gaussian sampling (csrc/core/antithetic.h) -------------------------------------
  // method: "marsaglia" or "cheng" (the construction of k values with a given sample mean and std);
  // reflection: "exact" (S_a = F^-1(1 - F(S)) for chi2_{k-1}, from the table) or "hawkins-wixley"
  // (the 2019 reference code's approximation; table unused, may be empty).
  // Cubic Hermite table of log S -> log S_a for chi2 with 2a degrees of freedom: (coef (nodes - 1, 4)
  // float64, range (2,) float64 [u_lo, u_hi]) on the CPU, the u = log S range between the chi2
  // quantiles tail and 1 - tail.
  m.def("antithetic_reflection_table(float a, int nodes=4096, float tail=1e-7) -> (Tensor, Tensor)");
  // Elementwise S_a of chi2_df variates s, from the table of a = df / 2 (on the device of s).
  m.def("chi2_reflect(Tensor s, float df, Tensor table, float u_lo, float u_hi, str reflection=\"exact\") -> Tensor");
  // The construction alone: direction z (k - 1, *batch) of i.i.d. N(0, 1) -> (k, *batch) values with
  // sample mean 0 and unbiased sample std 1 (the caller forms mean + std * out).
  m.def("antithetic_construction(Tensor z, str method=\"marsaglia\") -> Tensor");
  // noise (2k - 1, *batch) of i.i.d. N(0, 1): rows 0..k-1 the i.i.d. half, rows k.. the antithetic
  // direction. Returns (2k, *batch): the i.i.d. half unchanged, then the antithetic half in standardized
  // form (sample mean -mean(eps), sample std sqrt(S_a / (k-1)), S_a the reflected chi2_{k-1} spread).
  // The caller forms loc + scale * out, which carries the pathwise gradients.
  m.def("antithetic_normal_standardized(Tensor noise, Tensor table, float u_lo, float u_hi, "
        "str method=\"marsaglia\", str reflection=\"exact\") -> Tensor");
  // --- end antithetic ---
}
