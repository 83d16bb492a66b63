// The autograd kernel of every gradkern operator, registered once (Autograd dispatch key) for all of them.
//
// Why C++ and not torch.library.register_autograd: in torch 2.13 register_autograd wraps the formula in an
// old-style autograd.Function, which has no forward mode (torch.func.jvp returned zero tangents: a wrong
// number without an error) and which functorch refuses (torch.func.grad / jacrev / vmap(grad)). A C++
// torch::autograd::Function is refused by functorch as well. A kernel at the Autograd key that builds its
// graph node by hand, as torch's generated VariableType kernels do, works with every mode: reverse mode
// (the node), forward mode (the output's tangent at level 0, which functorch's jvp also uses), the
// functorch transforms (they run autograd on wrapped tensors), torch.compile (AOTAutograd traces through
// it) and opcheck. The formulas are written with dispatcher calls, so the node's own computations are
// differentiable again: backward-of-backward and forward-over-backward work wherever the derivative ops
// have derivatives, and raise a clear error (naming the op and the argument) where they do not yet.
//
// One boxed kernel serves every op: it reads the tensor arguments off the stack, runs the op below
// autograd, then looks up the op's Spec (its derivatives) by name. Elementwise ops give their partial
// derivatives d out_j / d in_i (broadcast shape), from which both the vector-Jacobian product and the
// Jacobian-vector product follow; the others (Dirichlet, mixtures) give both products directly.
#include <ATen/ATen.h>
#include <ATen/ExpandUtils.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/autograd/saved_variable.h>
#include <torch/library.h>

#include "core/vmf.h"  // kVmfMaxMoment

#include <cmath>
#include <string>
#include <unordered_map>
#include <vector>

namespace gradkern {
namespace {

using at::Tensor;
using c10::IValue;
using torch::autograd::SavedVariable;
using torch::autograd::variable_list;

// The arguments a formula sees: the tensor inputs (primals), the outputs, and the other arguments in
// schema order (numbers, strings; generators are dropped).
struct Ctx {
  const char* op;
  const std::vector<Tensor>& in;
  const std::vector<Tensor>& out;
  const std::vector<IValue>& extra;
  const std::vector<const char*>& names;  // schema names of the tensor inputs, for error messages
};

// d out_j / d in_i for every i with need[i], the others left undefined. Broadcastable to out_j's shape.
using PartialsFn = std::vector<Tensor> (*)(const Ctx&, size_t j, const std::vector<bool>& need);
// Vector-Jacobian product: one gradient per tensor input (undefined where !need[i]), in the input's shape.
using VjpFn = variable_list (*)(const Ctx&, const variable_list& grads, const std::vector<bool>& need);
// Jacobian-vector product: one tangent per output (undefined: zero) from one per input (undefined: zero).
using JvpFn = variable_list (*)(const Ctx&, const variable_list& tangents);

struct Spec {
  PartialsFn partials = nullptr;  // elementwise ops: vjp and jvp derived from these
  VjpFn vjp = nullptr;
  JvpFn jvp = nullptr;
  // What the node keeps for the backward formulas: bit i of save_in for tensor input i, save_out for the
  // outputs. A formula reads only what its op saves (the others are undefined in the backward Ctx), so
  // that the graph does not hold tensors, such as a mixture's noise, that no derivative needs.
  uint32_t save_in = ~0u;
  bool save_out = true;
  bool constant = false;          // outputs do not depend on the input values (copulas: only `like`'s shape)
};

[[noreturn]] void no_derivative(const Ctx& c, size_t i, const char* what) {
  TORCH_CHECK(false, "gradkern.", c.op, ": the derivative w.r.t. ", c.names[i], " (", what,
              ") is not implemented; detach ", c.names[i], " or open an issue if you need it");
}

// --- dispatcher calls (differentiable: they go through this file's kernel again) ---------------------
using Bin = Tensor(const Tensor&, const Tensor&);
using Ter = Tensor(const Tensor&, const Tensor&, const Tensor&);
using TerPair = std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&);
using TerTriple = std::tuple<Tensor, Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&);
using TerQuad = std::tuple<Tensor, Tensor, Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&);

template <class Sig>
c10::TypedOperatorHandle<Sig> gk(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Sig>();
}

// One differentiable call per derivative op, its handle looked up once.
#define GK_CALL2(name)                                        \
  Tensor name(const Tensor& a, const Tensor& b) {             \
    static const auto op = gk<Bin>("gradkern::" #name);       \
    return op.call(a, b);                                     \
  }
#define GK_CALL3(name, Sig)                                               \
  auto name(const Tensor& a, const Tensor& b, const Tensor& c) {          \
    static const auto op = gk<Sig>("gradkern::" #name);                   \
    return op.call(a, b, c);                                              \
  }
GK_CALL2(gammainc_grad_a)
GK_CALL2(gammainc_grad_aa)
GK_CALL2(standard_gamma_grad_dalpha)
GK_CALL2(log_standard_gamma_grad_dalpha)
GK_CALL2(standard_gamma_grad)
GK_CALL2(log_standard_gamma_grad)
GK_CALL2(vonmises_cdf_grad_concentration)
GK_CALL2(vonmises_grad)
GK_CALL2(vonmises_cdf_grad_kk)
GK_CALL2(vonmises_grad_dconcentration)
GK_CALL3(betainc_grads, TerPair)
GK_CALL3(standard_beta_grad, TerPair)
GK_CALL3(dirichlet_grad, Ter)
GK_CALL3(betainc_grads2, TerTriple)
GK_CALL3(standard_beta_grad_d2, TerQuad)
#undef GK_CALL2
#undef GK_CALL3

// --- densities (log space; xlogy / xlog1py keep x = 0 or 1 exact where an exponent is 0) -------------
Tensor log_gamma_density(const Tensor& a, const Tensor& x) {
  return at::special_xlogy(a - 1, x) - x - at::lgamma(a);
}
Tensor log_beta_density(const Tensor& a, const Tensor& b, const Tensor& x) {
  return at::special_xlogy(a - 1, x) + at::special_xlog1py(b - 1, -x) -
         (at::lgamma(a) + at::lgamma(b) - at::lgamma(a + b));
}
// d log q / da = log x - psi(a) + psi(a + b) (j = 0) or d log q / db = log(1 - x) - psi(b) + psi(a + b) (j = 1)
// of the Beta(a, b) density.
Tensor beta_score(const Tensor& a, const Tensor& b, const Tensor& x, size_t j) {
  Tensor psi_ab = at::digamma(a + b);
  return j == 0 ? at::log(x) - at::digamma(a) + psi_ab : at::log1p(-x) - at::digamma(b) + psi_ab;
}
// log q(x) of vonMises(0, kappa) with the scaled Bessel function (kappa = 1e6 stays finite).
Tensor log_vonmises_density(const Tensor& x, const Tensor& kappa) {
  return kappa * (at::cos(x) - 1) - at::log(2 * M_PI * at::special_i0e(kappa));
}
// A(kappa) = I1(kappa) / I0(kappa) = E[cos x].
Tensor bessel_ratio(const Tensor& kappa) { return at::special_i1e(kappa) / at::special_i0e(kappa); }

// --- Gamma family --------------------------------------------------------------------------------------
// P(a, x): dP/da by the kernel (forward-mode through the series / continued fraction / Temme expansion),
// dP/dx = q(x). Q = 1 - P: the negatives.
template <int Sign>
std::vector<Tensor> gammainc_partials(const Ctx& c, size_t, const std::vector<bool>& need) {
  const Tensor &a = c.in[0], &x = c.in[1];
  std::vector<Tensor> p(2);
  if (need[0]) p[0] = Sign * gammainc_grad_a(a, x);
  if (need[1]) p[1] = Sign * at::exp(log_gamma_density(a, x));
  return p;
}

// dP/da (a, x): d/da = d2P/da2 (csrc/core/igamma_d2.h), d/dx = dq/da = q (log x - psi(a)) (xlogy: 0
// where q = 0 at x = 0).
std::vector<Tensor> gammainc_grad_a_partials(const Ctx& c, size_t, const std::vector<bool>& need) {
  const Tensor &a = c.in[0], &x = c.in[1];
  std::vector<Tensor> p(2);
  if (need[0]) p[0] = gammainc_grad_aa(a, x);
  if (need[1]) {
    Tensor q = at::exp(log_gamma_density(a, x));
    p[1] = at::special_xlogy(q, x) - q * at::digamma(a);
  }
  return p;
}

// d2P/da2 (a, x): d/dx = d2q/da2 = q ((log x - psi(a))^2 - psi'(a)) (0 where q = 0, at x = 0 for a > 1);
// d/da would be a third derivative.
std::vector<Tensor> gammainc_grad_aa_partials(const Ctx& c, size_t, const std::vector<bool>& need) {
  const Tensor &a = c.in[0], &x = c.in[1];
  if (need[0]) no_derivative(c, 0, "d3P/da3");
  std::vector<Tensor> p(2);
  if (need[1]) {
    Tensor q = at::exp(log_gamma_density(a, x));
    Tensor ell = at::log(x) - at::digamma(a);
    p[1] = at::where(q == 0, at::zeros({}, q.options()), q * (ell * ell - at::polygamma(1, a)));
  }
  return p;
}

// g = dx/dalpha = -(dP/dalpha) / q at fixed P. d g / dx = -(dq/dalpha) / q - g (dq/dx) / q
// = -(log x - psi(alpha)) - g ((alpha - 1) / x - 1).
std::vector<Tensor> standard_gamma_grad_partials(const Ctx& c, size_t, const std::vector<bool>& need) {
  const Tensor &a = c.in[0], &x = c.in[1], &g = c.out[0];
  std::vector<Tensor> p(2);
  if (need[0]) p[0] = standard_gamma_grad_dalpha(a, x);
  if (need[1]) p[1] = at::digamma(a) - at::log(x) - g * ((a - 1) / x - 1);
  return p;
}

// g_a = d g / dalpha at fixed x (igamma_d2.h). d g_a / dx = d/dalpha of d g / dx above
// = psi'(alpha) - g_a ((alpha - 1) / x - 1) - g / x; d g_a / dalpha would be a third derivative.
std::vector<Tensor> standard_gamma_grad_dalpha_partials(const Ctx& c, size_t, const std::vector<bool>& need) {
  const Tensor &a = c.in[0], &x = c.in[1], &ga = c.out[0];
  if (need[0]) no_derivative(c, 0, "a third derivative in alpha");
  std::vector<Tensor> p(2);
  if (need[1]) p[1] = at::polygamma(1, a) - ga * ((a - 1) / x - 1) - standard_gamma_grad(a, x) / x;
  return p;
}

// h = d(log x)/dalpha = g / x as a function of u = log x: dh/du = dg/dx - h
// = -(u - psi(alpha)) - h (alpha - e^u).
std::vector<Tensor> log_standard_gamma_grad_partials(const Ctx& c, size_t, const std::vector<bool>& need) {
  const Tensor &a = c.in[0], &u = c.in[1], &h = c.out[0];
  std::vector<Tensor> p(2);
  if (need[0]) p[0] = log_standard_gamma_grad_dalpha(a, u);
  if (need[1]) p[1] = at::digamma(a) - u - h * (a - at::exp(u));
  return p;
}

// h_a = d h / dalpha at fixed u = log x: d h_a / du = psi'(alpha) - h_a (alpha - e^u) - h.
std::vector<Tensor> log_standard_gamma_grad_dalpha_partials(const Ctx& c, size_t, const std::vector<bool>& need) {
  const Tensor &a = c.in[0], &u = c.in[1], &ha = c.out[0];
  if (need[0]) no_derivative(c, 0, "a third derivative in alpha");
  std::vector<Tensor> p(2);
  if (need[1]) p[1] = at::polygamma(1, a) - ha * (a - at::exp(u)) - log_standard_gamma_grad(a, u);
  return p;
}

// x = P^{-1}(a, p): dx/da = the implicit Gamma gradient at x, dx/dp = 1 / q(x).
std::vector<Tensor> gammaincinv_partials(const Ctx& c, size_t, const std::vector<bool>& need) {
  const Tensor &a = c.in[0], &x = c.out[0];
  std::vector<Tensor> p(2);
  if (need[0]) p[0] = standard_gamma_grad(a, x);
  if (need[1]) p[1] = at::exp(-log_gamma_density(a, x));
  return p;
}

// Samplers of one parameter: implicit reparameterization (eq. 8) at the returned sample, Grad(param, sample).
template <Tensor (*Grad)(const Tensor&, const Tensor&)>
std::vector<Tensor> sampler_partials(const Ctx& c, size_t, const std::vector<bool>& need) {
  std::vector<Tensor> p(1);
  if (need[0]) p[0] = Grad(c.in[0], c.out[0]);
  return p;
}

// --- Beta family ---------------------------------------------------------------------------------------
template <int Sign>
std::vector<Tensor> betainc_partials(const Ctx& c, size_t, const std::vector<bool>& need) {
  const Tensor &a = c.in[0], &b = c.in[1], &x = c.in[2];
  std::vector<Tensor> p(3);
  if (need[0] || need[1]) {
    auto [da, db] = betainc_grads(a, b, x);
    if (need[0]) p[0] = Sign * da;
    if (need[1]) p[1] = Sign * db;
  }
  if (need[2]) p[2] = Sign * at::exp(log_beta_density(a, b, x));
  return p;
}

// (dI/da, dI/db): d/d(a, b) = the second derivatives (csrc/core/ibeta_d2.h); d/dx = dq/da =
// q (log x - psi(a) + psi(a + b)), dq/db = q (log(1 - x) - psi(b) + psi(a + b)).
std::vector<Tensor> betainc_grads_partials(const Ctx& c, size_t j, const std::vector<bool>& need) {
  const Tensor &a = c.in[0], &b = c.in[1], &x = c.in[2];
  std::vector<Tensor> p(3);
  if (need[0] || need[1]) {
    auto [aa, ab, bb] = betainc_grads2(a, b, x);
    if (need[0]) p[0] = j == 0 ? aa : ab;
    if (need[1]) p[1] = j == 0 ? ab : bb;
  }
  if (need[2]) {
    Tensor q = at::exp(log_beta_density(a, b, x));
    Tensor psi_ab = at::digamma(a + b);
    p[2] = j == 0 ? at::special_xlogy(q, x) - q * (at::digamma(a) - psi_ab)
                  : at::special_xlog1py(q, -x) - q * (at::digamma(b) - psi_ab);
  }
  return p;
}

// (d2I/da2, d2I/(da db), d2I/db2): d/dx = d2q/(dtheta dtheta') = q (l_t l_t' + d l_t / dtheta') with
// l_a = log x - psi(a) + psi(a + b), l_b = log(1 - x) - psi(b) + psi(a + b) (0 where q = 0); d/d(a, b)
// would be third derivatives.
std::vector<Tensor> betainc_grads2_partials(const Ctx& c, size_t j, const std::vector<bool>& need) {
  const Tensor &a = c.in[0], &b = c.in[1], &x = c.in[2];
  if (need[0]) no_derivative(c, 0, "third derivatives of I_x(a, b) in the parameters");
  if (need[1]) no_derivative(c, 1, "third derivatives of I_x(a, b) in the parameters");
  std::vector<Tensor> p(3);
  if (need[2]) {
    Tensor q = at::exp(log_beta_density(a, b, x));
    Tensor t_ab = at::polygamma(1, a + b);
    Tensor la = beta_score(a, b, x, 0), lb = beta_score(a, b, x, 1);
    Tensor m = j == 0 ? la * la + t_ab - at::polygamma(1, a) : j == 1 ? la * lb + t_ab : lb * lb + t_ab - at::polygamma(1, b);
    p[2] = at::where(q == 0, at::zeros({}, q.options()), q * m);
  }
  return p;
}

// (g_a, g_b) = -(dI/da, dI/db) / q at fixed I. d/d(a, b) at fixed x: standard_beta_grad_d2
// (csrc/core/ibeta_d2.h); d g / dx = -(dq/dtheta) / q - g (dq/dx) / q with
// (dq/dx) / q = (a - 1) / x - (b - 1) / (1 - x).
std::vector<Tensor> standard_beta_grad_partials(const Ctx& c, size_t j, const std::vector<bool>& need) {
  const Tensor &a = c.in[0], &b = c.in[1], &x = c.in[2], &g = c.out[j];
  std::vector<Tensor> p(3);
  if (need[0] || need[1]) {
    auto [aa, ab, ba, bb] = standard_beta_grad_d2(a, b, x);
    if (need[0]) p[0] = j == 0 ? aa : ba;
    if (need[1]) p[1] = j == 0 ? ab : bb;
  }
  if (need[2]) {
    Tensor dlogq = (a - 1) / x - (b - 1) / (1 - x);
    p[2] = -beta_score(a, b, x, j) - g * dlogq;
  }
  return p;
}

// G = d g_i / dtheta_k at fixed x (output j = 2 i + k). d G / dx = d/dtheta_k of d g_i / dx above:
// -d l_i / dtheta_k - G (dq/dx) / q - g_i d((dq/dx) / q) / dtheta_k, with d l_a/da = psi'(a + b) - psi'(a),
// d l_a/db = d l_b/da = psi'(a + b), d l_b/db = psi'(a + b) - psi'(b), and d((dq/dx)/q)/da = 1/x,
// d/db = -1/(1 - x). d/d(a, b) would be third derivatives.
std::vector<Tensor> standard_beta_grad_d2_partials(const Ctx& c, size_t j, const std::vector<bool>& need) {
  const Tensor &a = c.in[0], &b = c.in[1], &x = c.in[2], &G = c.out[j];
  if (need[0]) no_derivative(c, 0, "a third derivative of the Beta sample in its parameters");
  if (need[1]) no_derivative(c, 1, "a third derivative of the Beta sample in its parameters");
  std::vector<Tensor> p(3);
  if (need[2]) {
    const size_t i = j / 2, k = j % 2;
    Tensor t_ab = at::polygamma(1, a + b);
    Tensor dl = i != k ? t_ab : t_ab - at::polygamma(1, i == 0 ? a : b);
    Tensor dlogq = (a - 1) / x - (b - 1) / (1 - x);
    auto g = standard_beta_grad(a, b, x);
    Tensor gi = i == 0 ? std::get<0>(g) : std::get<1>(g);
    Tensor ddlogq = k == 0 ? 1 / x : -1 / (1 - x);
    p[2] = -dl - G * dlogq - gi * ddlogq;
  }
  return p;
}

// x = I^{-1}(a, b, p): (dx/da, dx/db) the implicit Beta gradients at x, dx/dp = 1 / q(x).
std::vector<Tensor> betaincinv_partials(const Ctx& c, size_t, const std::vector<bool>& need) {
  const Tensor &a = c.in[0], &b = c.in[1], &x = c.out[0];
  std::vector<Tensor> p(3);
  if (need[0] || need[1]) {
    auto [ga, gb] = standard_beta_grad(a, b, x);
    if (need[0]) p[0] = ga;
    if (need[1]) p[1] = gb;
  }
  if (need[2]) p[2] = at::exp(-log_beta_density(a, b, x));
  return p;
}

// The marginal implicit gradient (eq. 8 with F = I_x(a, b)) at the returned (clamped) sample.
std::vector<Tensor> standard_beta_partials(const Ctx& c, size_t, const std::vector<bool>& need) {
  std::vector<Tensor> p(2);
  auto [ga, gb] = standard_beta_grad(c.in[0], c.in[1], c.out[0]);
  if (need[0]) p[0] = ga;
  if (need[1]) p[1] = gb;
  return p;
}

std::vector<Tensor> sigmoid_difference_partials(const Ctx& c, size_t, const std::vector<bool>& need) {
  const Tensor& s = c.out[0];
  Tensor d = s * (1 - s);
  std::vector<Tensor> p(2);
  if (need[0]) p[0] = d;
  if (need[1]) p[1] = -d;
  return p;
}

// Dirichlet (torch's backward, Jankowiak and Obermeyer 2018): coordinate i's marginal is
// Beta(alpha_i, total - alpha_i); with g_i = (dx_i/dalpha_i) / (1 - x_i) at fixed total - alpha_i,
// dx_j/dalpha_i = g_i (delta_ij - x_j), a velocity field that satisfies the transport equation.
Tensor dirichlet_g(const Ctx& c) {
  const Tensor &alpha = c.in[0], &x = c.out[0];
  return dirichlet_grad(x, alpha, alpha.sum(-1, true).expand_as(alpha));
}
variable_list standard_dirichlet_vjp(const Ctx& c, const variable_list& grads, const std::vector<bool>& need) {
  if (!need[0]) return {Tensor()};
  const Tensor &x = c.out[0], &v = grads[0];
  return {dirichlet_g(c) * (v - (x * v).sum(-1, true))};
}
variable_list standard_dirichlet_jvp(const Ctx& c, const variable_list& t) {
  Tensor tg = t[0] * dirichlet_g(c);
  return {tg - c.out[0] * tg.sum(-1, true)};
}

// D = dirichlet_grad(x, alpha, total) = g_a / (1 - x), g_a = standard_beta_grad(alpha, beta, x)[0] with
// beta = total - alpha. d/dalpha at fixed total = (dg_a/da - dg_a/db) / (1 - x), d/dtotal = (dg_a/db) /
// (1 - x) (standard_beta_grad_d2), d/dx = (dg_a/dx + D) / (1 - x) with dg_a/dx as in
// standard_beta_grad_partials. x = 1 exactly (a degenerate sample) gives a non-finite derivative there.
std::vector<Tensor> dirichlet_grad_partials(const Ctx& c, size_t, const std::vector<bool>& need) {
  const Tensor &x = c.in[0], &alpha = c.in[1], &total = c.in[2], &D = c.out[0];
  Tensor beta = total - alpha;
  Tensor inv1x = 1 / (1 - x);
  std::vector<Tensor> p(3);
  if (need[1] || need[2]) {
    auto [aa, ab, ba, bb] = standard_beta_grad_d2(alpha, beta, x);
    if (need[1]) p[1] = (aa - ab) * inv1x;
    if (need[2]) p[2] = ab * inv1x;
  }
  if (need[0]) {
    Tensor ga = D * (1 - x);
    Tensor dlogq = (alpha - 1) / x - (beta - 1) * inv1x;
    p[0] = (-beta_score(alpha, beta, x, 0) - ga * dlogq + D) * inv1x;
  }
  return p;
}

// Derivative ops without derivatives of their own yet (second order through them raises here).
std::vector<Tensor> second_order_missing(const Ctx& c, size_t, const std::vector<bool>& need) {
  for (size_t i = 0; i < need.size(); ++i)
    if (need[i]) no_derivative(c, i, "this op is itself a first derivative; its own derivatives are second order");
  return std::vector<Tensor>(need.size());
}
// Ops that map a sampler's noise (the pathwise gradients flow around them) or give a fixed quantity.
std::vector<Tensor> not_differentiable(const Ctx& c, size_t, const std::vector<bool>& need) {
  for (size_t i = 0; i < need.size(); ++i)
    if (need[i])
      TORCH_CHECK(false, "gradkern.", c.op, " is not differentiable w.r.t. ", c.names[i],
                  " (it maps a sampler's noise, or computes a fixed quantity); detach ", c.names[i]);
  return std::vector<Tensor>(need.size());
}

// --- von Mises -----------------------------------------------------------------------------------------
std::vector<Tensor> vonmises_cdf_partials(const Ctx& c, size_t, const std::vector<bool>& need) {
  const Tensor &x = c.in[0], &kappa = c.in[1];
  std::vector<Tensor> p(2);
  if (need[0]) p[0] = at::exp(log_vonmises_density(x, kappa));
  if (need[1]) p[1] = vonmises_cdf_grad_concentration(x, kappa);
  return p;
}
// dA/dkappa for A = I1/I0 (the Bessel-ratio Riccati equation A' = 1 - A/kappa - A^2). That difference cancels
// to A' ~ 1/(2 kappa^2): it loses ~log10(2 kappa^2) digits, 3.3 at kappa = 30 and 12 at 1e6. From kappa = 30 on
// A is instead taken from Hankel's expansion, 1 - A = e = 1/(2 kappa) + zr/kappa with zr = sum n a_n / sum a_n,
// a_n = a_(n-1) (2n-1)^2 / (8 n kappa) (the normaliser of vonmises_cdf.h's Gaussian expansion; its
// truncation error is below e^-60 there), where A' = 2 zr/kappa + e (1/2 - zr)/kappa has positive terms only.
Tensor bessel_ratio_grad(const Tensor& kappa) {
  Tensor A = bessel_ratio(kappa);
  Tensor direct = (1 - A) * (1 + A) - A / kappa;
  Tensor ik = 1 / at::clamp_min(kappa, 30.0);
  Tensor an = at::ones_like(ik), Z = at::ones_like(ik), Zn = at::zeros_like(ik);
  for (int n = 1; n <= 24; ++n) {  // a_24 < 1e-20 at kappa = 30
    an = an * ik * ((2.0 * n - 1) * (2.0 * n - 1) / (8.0 * n));
    Z = Z + an;
    Zn = Zn + n * an;
  }
  Tensor zr = Zn / Z;
  Tensor e = (0.5 + zr) * ik;
  return at::where(kappa >= 30, (2 * zr + e * (0.5 - zr)) * ik, direct);
}
// dF/dkappa (x, kappa): d/dx = dq/dkappa = q (cos x - A(kappa)), d/dkappa = d2F/dkappa2 (vonmises_cdf.h).
std::vector<Tensor> vonmises_cdf_grad_concentration_partials(const Ctx& c, size_t, const std::vector<bool>& need) {
  const Tensor &x = c.in[0], &kappa = c.in[1];
  std::vector<Tensor> p(2);
  if (need[0]) p[0] = at::exp(log_vonmises_density(x, kappa)) * (at::cos(x) - bessel_ratio(kappa));
  if (need[1]) p[1] = vonmises_cdf_grad_kk(x, kappa);
  return p;
}
// g = -(dF/dkappa) / q: d g / dx = -(cos x - A(kappa)) - g (dq/dx) / q, (dq/dx) / q = -kappa sin x;
// d g / dkappa at fixed x by the kernel (vonmises_grad_dconcentration).
std::vector<Tensor> vonmises_grad_partials(const Ctx& c, size_t, const std::vector<bool>& need) {
  const Tensor &kappa = c.in[0], &x = c.in[1], &g = c.out[0];
  std::vector<Tensor> p(2);
  if (need[0]) p[0] = vonmises_grad_dconcentration(kappa, x);
  if (need[1]) p[1] = bessel_ratio(kappa) - at::cos(x) + g * kappa * at::sin(x);
  return p;
}
// d2F/dkappa2 (x, kappa): d/dx = d2q/dkappa2 = q ((cos x - A)^2 - A'); d/dkappa would be a third derivative.
std::vector<Tensor> vonmises_cdf_grad_kk_partials(const Ctx& c, size_t, const std::vector<bool>& need) {
  const Tensor &x = c.in[0], &kappa = c.in[1];
  if (need[1]) no_derivative(c, 1, "a third derivative in kappa");
  std::vector<Tensor> p(2);
  if (need[0]) {
    Tensor m1 = at::cos(x) - bessel_ratio(kappa);
    p[0] = at::exp(log_vonmises_density(x, kappa)) * (m1 * m1 - bessel_ratio_grad(kappa));
  }
  return p;
}
// g1 = d g / dkappa at fixed x: d g1 / dx = d/dkappa of d g / dx above = A' + (g1 kappa + g) sin x.
std::vector<Tensor> vonmises_grad_dconcentration_partials(const Ctx& c, size_t, const std::vector<bool>& need) {
  const Tensor &kappa = c.in[0], &x = c.in[1], &g1 = c.out[0];
  if (need[0]) no_derivative(c, 0, "a third derivative in kappa");
  std::vector<Tensor> p(2);
  if (need[1]) p[1] = bessel_ratio_grad(kappa) + (g1 * kappa + vonmises_grad(kappa, x)) * at::sin(x);
  return p;
}
// The wrap into [-pi, pi) is piecewise a shift: d/dx = d/dloc = 1.
std::vector<Tensor> shift_wrap_partials(const Ctx& c, size_t, const std::vector<bool>& need) {
  Tensor one = at::ones({}, c.out[0].options());
  return {need[0] ? one : Tensor(), need[1] ? one : Tensor()};
}

// --- von Mises-Fisher (u = 1 - mu^T z; d is the op's int argument) -------------------------------------
int64_t vmf_d(const Ctx& c) { return c.extra[0].toInt(); }
Tensor vmf_grad_u_call(const Tensor& kappa, const Tensor& u, int64_t d) {
  static const auto op = gk<Tensor(const Tensor&, const Tensor&, int64_t)>("gradkern::vmf_grad_u");
  return op.call(kappa, u, d);
}
Tensor vmf_grad_u_dkappa_call(const Tensor& kappa, const Tensor& u, int64_t d) {
  static const auto op = gk<Tensor(const Tensor&, const Tensor&, int64_t)>("gradkern::vmf_grad_u_dkappa");
  return op.call(kappa, u, d);
}
std::tuple<Tensor, Tensor, Tensor> vmf_moments_call(const Tensor& kappa, int64_t d) {
  static const auto op = gk<std::tuple<Tensor, Tensor, Tensor>(const Tensor&, int64_t)>("gradkern::vmf_moments");
  return op.call(kappa, d);
}
Tensor vmf_central_moment_call(const Tensor& kappa, int64_t d, int64_t k) {
  static const auto op = gk<Tensor(const Tensor&, int64_t, int64_t)>("gradkern::vmf_central_moment");
  return op.call(kappa, d, k);
}
// d log g(u) / du for g(u) = e^(-kappa u) (u (2 - u))^nu, nu = (d - 3) / 2.
Tensor vmf_dlog_g(const Tensor& kappa, const Tensor& u, int64_t d) {
  const double nu = 0.5 * static_cast<double>(d - 3);
  return nu * (1 / u - 1 / (2 - u)) - kappa;
}
// log of the density of u: -kappa u + nu log(u (2 - u)) - log Z_u.
Tensor vmf_log_density(const Tensor& kappa, const Tensor& u, int64_t d, const Tensor& log_z) {
  const double nu = 0.5 * static_cast<double>(d - 3);
  return at::special_xlogy(nu, u * (2 - u)) - kappa * u - log_z;
}

std::vector<Tensor> vmf_sample_u_partials(const Ctx& c, size_t, const std::vector<bool>& need) {
  std::vector<Tensor> p(1);
  if (need[0]) p[0] = vmf_grad_u_call(c.in[0], c.out[0], vmf_d(c));
  return p;
}
// G = du/dkappa = int_0^u (s - m) g(s) ds / g(u): dG/du = (u - m) - G d log g / du; dG/dkappa by the kernel
// (vmf_grad_u_dkappa).
std::vector<Tensor> vmf_grad_u_partials(const Ctx& c, size_t, const std::vector<bool>& need) {
  const Tensor &kappa = c.in[0], &u = c.in[1], &g = c.out[0];
  const int64_t d = vmf_d(c);
  std::vector<Tensor> p(2);
  if (need[0]) p[0] = vmf_grad_u_dkappa_call(kappa, u, d);
  if (need[1]) p[1] = (u - std::get<1>(vmf_moments_call(kappa, d))) - g * vmf_dlog_g(kappa, u, d);
  return p;
}
// G1 = dG/dkappa at fixed u: dG1/du = d/dkappa of dG/du above = Var[u] + G - G1 d log g / du (dm/dkappa = -Var[u],
// d/dkappa of d log g / du = -1); dG1/dkappa would be a third derivative.
std::vector<Tensor> vmf_grad_u_dkappa_partials(const Ctx& c, size_t, const std::vector<bool>& need) {
  const Tensor &kappa = c.in[0], &u = c.in[1], &g1 = c.out[0];
  const int64_t d = vmf_d(c);
  if (need[0]) no_derivative(c, 0, "a third derivative in kappa");
  std::vector<Tensor> p(2);
  if (need[1]) p[1] = std::get<2>(vmf_moments_call(kappa, d)) + vmf_grad_u_call(kappa, u, d) - g1 * vmf_dlog_g(kappa, u, d);
  return p;
}
// F(u): dF/du = the density, dF/dkappa = -G f(u).
std::vector<Tensor> vmf_cdf_u_partials(const Ctx& c, size_t, const std::vector<bool>& need) {
  const Tensor &u = c.in[0], &kappa = c.in[1];
  const int64_t d = vmf_d(c);
  std::vector<Tensor> p(2);
  Tensor f = at::exp(vmf_log_density(kappa, u, d, std::get<0>(vmf_moments_call(kappa, d))));
  if (need[1]) p[1] = -vmf_grad_u_call(kappa, u, d) * f;
  if (need[0]) p[0] = f;
  return p;
}
// d log Z_u / dkappa = -E[u]; d E[u] / dkappa = -Var[u] (d/dkappa E[f] = -Cov(f, u)).
std::vector<Tensor> vmf_moments_partials(const Ctx& c, size_t j, const std::vector<bool>& need) {
  std::vector<Tensor> p(1);
  if (!need[0]) return p;
  if (j == 0) p[0] = -c.out[1];
  else if (j == 1) p[0] = -c.out[2];
  else p[0] = -vmf_central_moment_call(c.in[0], vmf_d(c), 3);
  return p;
}
// mu_k = E[(u - m)^k]: d mu_k / dkappa = -Cov((u - m)^k, u) - k mu_(k-1) dm/dkappa = -(mu_(k+1) - k mu_(k-1) mu_2)
// (mu_1 = 0), up to the op's largest order.
std::vector<Tensor> vmf_central_moment_partials(const Ctx& c, size_t, const std::vector<bool>& need) {
  std::vector<Tensor> p(1);
  if (!need[0]) return p;
  const int64_t d = vmf_d(c), k = c.extra[1].toInt();
  if (k >= core::vmf_detail::kVmfMaxMoment) no_derivative(c, 0, "the central moment of the next order is beyond the op's range");
  const Tensor& kappa = c.in[0];
  Tensor next = vmf_central_moment_call(kappa, d, k + 1);
  p[0] = k == 2 ? -next : -(next - k * vmf_central_moment_call(kappa, d, k - 1) * vmf_central_moment_call(kappa, d, 2));
  return p;
}

// vmf_direction(loc, u, noise): z = M x, M = -sigma (I - 2 h h^T / h^T h), h = e_1 + sigma loc (sigma = +-1,
// piecewise constant), x = (1 - u, s v), v = noise / |noise|, s = sqrt(u (2 - u)) floored at sqrt(tiny) as in
// the kernel. M is symmetric and its own inverse, so g^T M dx = (M g)^T dx. dx/du = (-1, (1 - u) / s^2 x_1..)
// (0 where s is floored), dx_1../dnoise = (s / |noise|) (I - v v^T); dz/dh at fixed x =
// 2 sigma [h (dh^T x) / q + c dh / q - 2 c h (h^T dh) / q^2], c = h^T x, q = h^T h, dh = sigma dloc.
struct VmfHouse {
  Tensor sigma, h, q;
  Tensor apply(const Tensor& y) const { return -sigma * (y - 2 * (h * y).sum(-1, true) / q * h); }
};
VmfHouse vmf_house(const Tensor& loc) {
  VmfHouse m;
  const auto opts = loc.options();
  m.sigma = at::where(loc.narrow(-1, 0, 1) >= 0, at::scalar_tensor(1.0, opts), at::scalar_tensor(-1.0, opts));
  Tensor e1 = at::zeros({loc.size(-1)}, opts);
  e1.narrow(0, 0, 1).fill_(1.0);
  m.h = loc * m.sigma + e1;
  m.q = (m.h * m.h).sum(-1, true);
  return m;
}
struct VmfX {
  Tensor x, v, s_over_n, coef;  // x; v; s / |noise|; (1 - u) / s^2 (0 where floored)
};
VmfX vmf_x(const Tensor& u, const Tensor& noise) {
  const double tiny = u.scalar_type() == at::kFloat ? 1.17549435e-38 : 2.2250738585072014e-308;
  VmfX r;
  const Tensor s2 = u * (2 - u);
  const Tensor s = at::sqrt(s2.clamp_min(tiny));
  const Tensor n = at::linalg_vector_norm(noise, 2, {-1}, true);
  r.v = noise / n;
  r.s_over_n = s / n;
  r.coef = at::where(s2 > tiny, (1 - u) / s2.clamp_min(tiny), at::zeros({}, u.options()));
  Tensor x1 = s * r.v;
  r.x = at::cat({(1 - u).expand_as(x1.narrow(-1, 0, 1)), x1}, -1);
  return r;
}
// the (d - 1)-vector y projected orthogonally to v, times s / |noise|
Tensor vmf_noise_map(const VmfX& r, const Tensor& y) { return r.s_over_n * (y - r.v * (r.v * y).sum(-1, true)); }

variable_list vmf_direction_vjp(const Ctx& c, const variable_list& grads, const std::vector<bool>& need) {
  const Tensor &loc = c.in[0], &u = c.in[1], &noise = c.in[2], &g = grads[0];
  const bool tangents = g._fw_grad(0).defined() || loc._fw_grad(0).defined() || u._fw_grad(0).defined() ||
                        noise._fw_grad(0).defined();
  if (!at::GradMode::is_enabled() && !tangents) {
    // first order only (no create_graph, no forward-over-reverse): the fused kernel; the ATen formulas
    // below are its differentiable twin, for higher derivatives
    static const auto op = gk<std::tuple<Tensor, Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&,
                                                                 const Tensor&)>("gradkern::vmf_direction_backward");
    auto [gl, gu, gn] = op.call(g, loc, u, noise);
    return {need[0] ? gl : Tensor(), need[1] ? gu : Tensor(), need[2] ? gn : Tensor()};
  }
  const VmfHouse m = vmf_house(loc);
  const VmfX r = vmf_x(u, noise);
  const int64_t d = g.size(-1);
  variable_list out(3);
  if (need[1] || need[2]) {
    const Tensor mg = m.apply(g);
    const Tensor mg1 = mg.narrow(-1, 1, d - 1);
    if (need[1]) out[1] = r.coef * (mg1 * r.x.narrow(-1, 1, d - 1)).sum(-1, true) - mg.narrow(-1, 0, 1);
    if (need[2]) out[2] = vmf_noise_map(r, mg1);
  }
  if (need[0]) {
    const Tensor cx = (m.h * r.x).sum(-1, true), gh = (g * m.h).sum(-1, true);
    out[0] = 2 * (g * cx / m.q + r.x * gh / m.q - 2 * m.h * gh * cx / (m.q * m.q));
  }
  return out;
}
variable_list vmf_direction_jvp(const Ctx& c, const variable_list& t) {
  const Tensor &loc = c.in[0], &u = c.in[1], &noise = c.in[2];
  const VmfHouse m = vmf_house(loc);
  const VmfX r = vmf_x(u, noise);
  const int64_t d = r.x.size(-1);
  Tensor dz;
  if (t[1].defined() || t[2].defined()) {
    Tensor dx0 = t[1].defined() ? -t[1] * at::ones_like(u) : at::zeros_like(u);
    Tensor dx1 = t[1].defined() ? r.x.narrow(-1, 1, d - 1) * (r.coef * t[1]) : Tensor();
    if (t[2].defined()) {
      Tensor dn = vmf_noise_map(r, t[2]);
      dx1 = dx1.defined() ? dx1 + dn : dn;
    }
    if (!dx1.defined()) dx1 = at::zeros_like(r.x.narrow(-1, 1, d - 1));
    auto shape = at::infer_size(dx0.sizes().slice(0, dx0.dim() - 1), dx1.sizes().slice(0, dx1.dim() - 1));
    std::vector<int64_t> s0(shape), s1(shape);
    s0.push_back(1);
    s1.push_back(d - 1);
    dz = m.apply(at::cat({dx0.expand(s0), dx1.expand(s1)}, -1));
  }
  if (t[0].defined()) {
    const Tensor cx = (m.h * r.x).sum(-1, true);
    const Tensor dm = 2 * ((t[0] * r.x).sum(-1, true) * m.h / m.q + cx * t[0] / m.q -
                           2 * cx * (m.h * t[0]).sum(-1, true) * m.h / (m.q * m.q));
    dz = dz.defined() ? dz + dm : dm;
  }
  return {dz};
}

// --- ARMS copulas --------------------------------------------------------------------------------------
// Phi2(h, k; r): dPhi2/dh = phi(h) Phi((k - r h) / sqrt(1 - r^2)), symmetric in k; dPhi2/dr = phi2(h, k; r)
// (Plackett).
std::vector<Tensor> bivariate_normal_cdf_partials(const Ctx& c, size_t, const std::vector<bool>& need) {
  const Tensor &h = c.in[0], &k = c.in[1], &r = c.in[2];
  Tensor one_m_r2 = (1 - r) * (1 + r);
  Tensor s = at::sqrt(one_m_r2);
  const double inv_sqrt_2pi = 0.3989422804014327;
  auto pdf = [&](const Tensor& v) { return at::exp(-0.5 * v * v) * inv_sqrt_2pi; };
  std::vector<Tensor> p(3);
  if (need[0]) p[0] = pdf(h) * at::special_ndtr((k - r * h) / s);
  if (need[1]) p[1] = pdf(k) * at::special_ndtr((h - r * k) / s);
  if (need[2]) p[2] = at::exp(-(h * h - 2 * r * h * k + k * k) / (2 * one_m_r2)) / (2 * M_PI * s);
  return p;
}

// --- antithetic sampling -------------------------------------------------------------------------------
// chi2_reflect(s, df, table, ...): S_a = F^{-1}(1 - F(S)), dS_a/dS = -f(S) / f(S_a) for the chi2 density f;
// with x = S / 2 that is -q(x) / q(x_a) for the Gamma(df / 2, 1) density q, formed in log space.
std::vector<Tensor> chi2_reflect_partials(const Ctx& c, size_t, const std::vector<bool>& need) {
  if (need[1]) no_derivative(c, 1, "a fixed lookup table");
  std::vector<Tensor> p(2);
  if (need[0]) {
    const double a = 0.5 * c.extra[0].toDouble();
    const Tensor &s = c.in[0], &s_a = c.out[0];
    Tensor at_a = at::scalar_tensor(a, s.options());
    p[0] = -at::exp(log_gamma_density(at_a, s / 2) - log_gamma_density(at_a, s_a / 2));
  }
  return p;
}

// --- Gaussian mixtures ---------------------------------------------------------------------------------
// Tensor inputs (noise, component, params...); the *_backward op gives the transport-equation gradients
// of the params (reverse mode only: the fused kernels form vector-Jacobian products).
variable_list mixture_vjp(const Ctx& c, const variable_list& grads, const std::vector<bool>& need) {
  // The *_backward op of each *_rsample op, looked up once (a static initialised before any use: no
  // mutation afterwards, so concurrent backward passes may read it).
  static const std::unordered_map<std::string, c10::OperatorHandle> handles = [] {
    std::unordered_map<std::string, c10::OperatorHandle> h;
    for (const char* stem : {"mixture_shared_cov", "mixture_diag_normals", "mixture_gaussian_scale",
                             "mixture_discrete_gaussian_scale"})
      h.emplace(std::string(stem) + "_rsample",
                c10::Dispatcher::singleton().findSchemaOrThrow(("gradkern::" + std::string(stem) + "_backward").c_str(), ""));
    return h;
  }();
  auto it = handles.find(c.op);
  TORCH_CHECK(it != handles.end(), "gradkern: no backward op for ", c.op);
  TORCH_CHECK(!need[0] && !need[1], "gradkern.", c.op, ": noise and component are not differentiable");
  std::vector<IValue> stack{grads[0].contiguous(), c.out[0]};
  for (size_t i = 2; i < c.in.size(); ++i) stack.emplace_back(c.in[i]);
  for (const auto& e : c.extra) stack.push_back(e);
  it->second.callBoxed(stack);
  variable_list out(c.in.size());
  for (size_t i = 2; i < c.in.size(); ++i)
    if (need[i]) out[i] = stack[i - 2].toTensor();
  return out;
}
variable_list mixture_jvp(const Ctx& c, const variable_list&) {
  TORCH_CHECK(false, "gradkern.", c.op, ": forward-mode differentiation (torch.func.jvp / jacfwd, "
              "torch.autograd.forward_ad) of the mixture samplers is not implemented: their fused kernels form "
              "vector-Jacobian products only; use reverse mode (backward, torch.func.grad / vjp / jacrev)");
}

// --- the table -----------------------------------------------------------------------------------------
const std::unordered_map<std::string, Spec>& specs() {
  static const std::unordered_map<std::string, Spec> table = [] {
    std::unordered_map<std::string, Spec> t;
    // elementwise(name, partials, inputs saved (bit mask), outputs saved): what each formula reads.
    auto elementwise = [&](const char* name, PartialsFn fn, uint32_t in = ~0u, bool out = true) {
      Spec& e = t[name];
      e.partials = fn;
      e.save_in = in;
      e.save_out = out;
    };
    constexpr uint32_t all = ~0u, none = 0u;
    elementwise("gammainc", gammainc_partials<1>, all, false);
    elementwise("gammaincc", gammainc_partials<-1>, all, false);
    elementwise("gammainc_grad_a", gammainc_grad_a_partials, all, false);
    elementwise("standard_gamma_grad", standard_gamma_grad_partials);
    elementwise("log_standard_gamma_grad", log_standard_gamma_grad_partials);
    elementwise("gammaincinv", gammaincinv_partials, 0b01);
    elementwise("gammainc_grad_aa", gammainc_grad_aa_partials, all, false);
    elementwise("standard_gamma_grad_dalpha", standard_gamma_grad_dalpha_partials);
    elementwise("log_standard_gamma_grad_dalpha", log_standard_gamma_grad_dalpha_partials);
    elementwise("standard_gamma", sampler_partials<standard_gamma_grad>);
    elementwise("log_standard_gamma", sampler_partials<log_standard_gamma_grad>);
    elementwise("betainc", betainc_partials<1>, all, false);
    elementwise("betaincc", betainc_partials<-1>, all, false);
    elementwise("betainc_grads", betainc_grads_partials, all, false);
    elementwise("standard_beta_grad", standard_beta_grad_partials);
    elementwise("betainc_grads2", betainc_grads2_partials, all, false);
    elementwise("standard_beta_grad_d2", standard_beta_grad_d2_partials);
    elementwise("betaincinv", betaincinv_partials, 0b011);
    elementwise("standard_beta", standard_beta_partials);
    elementwise("sigmoid_difference", sigmoid_difference_partials, none);
    elementwise("dirichlet_grad", dirichlet_grad_partials);
    t["standard_dirichlet"] = Spec{nullptr, standard_dirichlet_vjp, standard_dirichlet_jvp};
    elementwise("vonmises_cdf", vonmises_cdf_partials, all, false);
    elementwise("vonmises_cdf_grad_concentration", vonmises_cdf_grad_concentration_partials, all, false);
    elementwise("vonmises_grad", vonmises_grad_partials);
    elementwise("vonmises_cdf_grad_kk", vonmises_cdf_grad_kk_partials, all, false);
    elementwise("vonmises_grad_dconcentration", vonmises_grad_dconcentration_partials);
    elementwise("vonmises_sample", sampler_partials<vonmises_grad>);
    elementwise("vonmises_shift_wrap", shift_wrap_partials, none);  // reads only the output's options
    elementwise("vmf_sample_u", vmf_sample_u_partials);
    elementwise("vmf_grad_u", vmf_grad_u_partials);
    elementwise("vmf_grad_u_dkappa", vmf_grad_u_dkappa_partials);
    elementwise("vmf_cdf_u", vmf_cdf_u_partials, all, false);
    elementwise("vmf_moments", vmf_moments_partials);
    elementwise("vmf_central_moment", vmf_central_moment_partials, all, false);
    Spec direction{nullptr, vmf_direction_vjp, vmf_direction_jvp};
    direction.save_out = false;  // the formulas rebuild x from (u, noise)
    t["vmf_direction"] = direction;
    elementwise("vmf_direction_backward", second_order_missing, none, false);
    for (const char* stem : {"mixture_shared_cov", "mixture_diag_normals", "mixture_gaussian_scale",
                             "mixture_discrete_gaussian_scale"}) {
      Spec s{nullptr, mixture_vjp, mixture_jvp};
      s.save_in = ~0u << 2;  // the parameters and the sample, not the noise (as large as the sample) or component
      t[std::string(stem) + "_rsample"] = s;
      elementwise((std::string(stem) + "_backward").c_str(), second_order_missing, none, false);
    }
    Spec constant;
    constant.constant = true;
    t["dirichlet_copula"] = constant;
    t["gaussian_copula"] = constant;
    t["antithetic_reflection_table"] = constant;
    t["vmf_noise"] = constant;
    elementwise("dirichlet_copula_rho", second_order_missing, none, false);
    elementwise("gaussian_copula_rho", second_order_missing, none, false);
    elementwise("bivariate_normal_cdf", bivariate_normal_cdf_partials, all, false);
    elementwise("chi2_reflect", chi2_reflect_partials, 0b01);
    elementwise("antithetic_construction", not_differentiable, none, false);
    elementwise("antithetic_normal_standardized", not_differentiable, none, false);
    elementwise("truncated_normal_icdf", not_differentiable, none, false);
    elementwise("truncated_normal_backward", second_order_missing, none, false);
    return t;
  }();
  return table;
}

const Spec& spec_of(const std::string& name) {
  auto it = specs().find(name);
  TORCH_CHECK(it != specs().end(), "gradkern: no autograd formula is registered for gradkern::", name);
  return it->second;
}

Tensor reduce_to(const Tensor& g, c10::SymIntArrayRef shape) {
  if (!g.defined() || g.sym_sizes().equals(shape)) return g;
  return at::sum_to(g, shape);
}

variable_list elementwise_vjp(const Spec& s, const Ctx& c, const variable_list& grads, const std::vector<bool>& need) {
  variable_list out(c.in.size());
  for (size_t j = 0; j < c.out.size(); ++j) {
    if (!grads[j].defined()) continue;
    auto p = s.partials(c, j, need);
    for (size_t i = 0; i < c.in.size(); ++i) {
      if (!need[i] || !p[i].defined()) continue;
      Tensor g = grads[j] * p[i];
      out[i] = out[i].defined() ? out[i] + g : g;
    }
  }
  return out;
}

variable_list elementwise_jvp(const Spec& s, const Ctx& c, const variable_list& tangents) {
  std::vector<bool> need(tangents.size());
  for (size_t i = 0; i < tangents.size(); ++i) need[i] = tangents[i].defined();
  variable_list out(c.out.size());
  for (size_t j = 0; j < c.out.size(); ++j) {
    auto p = s.partials(c, j, need);
    for (size_t i = 0; i < tangents.size(); ++i) {
      if (!need[i] || !p[i].defined()) continue;
      Tensor t = tangents[i] * p[i];
      out[j] = out[j].defined() ? out[j] + t : t;
    }
  }
  return out;
}

struct GradkernBackward : torch::autograd::Node {
  std::string op;
  const Spec* spec = nullptr;
  std::vector<SavedVariable> in, out;
  std::vector<std::vector<c10::SymInt>> in_shapes;
  std::vector<IValue> extra;
  std::vector<const char*> names;

  variable_list apply(variable_list&& grads) override {
    std::vector<Tensor> ins, outs;
    for (auto& v : in) ins.push_back(v.unpack());
    for (auto& v : out) outs.push_back(v.unpack(getptr()));
    std::vector<bool> need(in_shapes.size());
    bool any = false;
    for (size_t i = 0; i < need.size(); ++i) any |= (need[i] = task_should_compute_output(i));
    bool any_grad = false;
    for (const auto& g : grads) any_grad |= g.defined();
    if (!any || !any_grad) return variable_list(need.size());
    Ctx c{op.c_str(), ins, outs, extra, names};
    variable_list g = spec->partials ? elementwise_vjp(*spec, c, grads, need) : spec->vjp(c, grads, need);
    for (size_t i = 0; i < g.size(); ++i) g[i] = need[i] ? reduce_to(g[i], in_shapes[i]) : Tensor();
    return g;
  }
  void release_variables() override {
    for (auto& v : in) v.reset_data();
    for (auto& v : out) v.reset_data();
  }
  std::string name() const override { return "gradkern::" + op + "Backward"; }
};

bool is_generator(const IValue& v) { return v.isGenerator(); }

void autograd_kernel(const c10::OperatorHandle& op, c10::DispatchKeySet ks, torch::jit::Stack* stack) {
  const auto& schema = op.schema();
  const size_t n_args = schema.arguments().size();
  std::vector<Tensor> inputs;
  std::vector<IValue> extra;
  std::vector<const char*> names;
  bool requires_grad = false, has_tangent = false;
  const bool grad_mode = at::GradMode::is_enabled();
  const size_t first = stack->size() - n_args;
  for (size_t i = first; i < stack->size(); ++i) {
    const IValue& v = (*stack)[i];
    if (v.isTensor()) {
      const Tensor& t = v.toTensor();
      inputs.push_back(t);
      names.push_back(schema.arguments()[i - first].name().c_str());
      requires_grad |= grad_mode && t.requires_grad();
      has_tangent |= t.defined() && t._fw_grad(0).defined();
    } else if (!v.isNone() && !is_generator(v)) {
      extra.push_back(v);
    }
  }
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    op.redispatchBoxed(ks & c10::after_autograd_keyset, stack);
  }
  if (!requires_grad && !has_tangent) return;
  const std::string name = schema.name().substr(schema.name().find("::") + 2);
  const Spec& spec = spec_of(name);
  if (spec.constant) return;  // the outputs carry no derivative (they depend on shapes only)
  const size_t n_out = schema.returns().size();
  std::vector<Tensor> outputs;
  for (size_t i = stack->size() - n_out; i < stack->size(); ++i) outputs.push_back((*stack)[i].toTensor());

  // Tangents first: the node saves the outputs with them (forward-over-reverse differentiates the
  // backward formulas, which read the saved outputs).
  if (has_tangent) {
    variable_list tangents, primals;
    for (const auto& t : inputs) {
      Tensor tan = t.defined() ? t._fw_grad(0) : Tensor();
      tangents.push_back(tan);
      primals.push_back(tan.defined() ? t._fw_primal(0) : t);
    }
    Ctx c{name.c_str(), primals, outputs, extra, names};
    variable_list out_t = spec.partials ? elementwise_jvp(spec, c, tangents) : spec.jvp(c, tangents);
    for (size_t j = 0; j < outputs.size(); ++j) {
      if (!out_t[j].defined()) continue;
      Tensor t = out_t[j];
      if (!t.sym_sizes().equals(outputs[j].sym_sizes())) t = t.expand_symint(outputs[j].sym_sizes());
      outputs[j]._set_fw_grad(t, /*level=*/0, /*is_inplace_op=*/false);
    }
  }
  if (requires_grad) {
    auto node = c10::make_intrusive<GradkernBackward>();
    node->op = name;
    node->spec = &spec;
    node->extra = extra;
    node->names = names;
    node->set_next_edges(torch::autograd::collect_next_edges(at::ArrayRef<Tensor>(inputs)));
    for (size_t i = 0; i < inputs.size(); ++i) {
      node->in_shapes.emplace_back(inputs[i].sym_sizes().vec());
      node->in.emplace_back(i < 32 && (spec.save_in >> i & 1u) ? inputs[i] : Tensor(), false);
    }
    for (const auto& t : outputs) torch::autograd::set_history(t, node);
    for (const auto& t : outputs) node->out.emplace_back(spec.save_out ? t : Tensor(), spec.save_out);
  }
}

}  // namespace

// Every op in specs(); tests/test_autodiff.py checks that every gradkern schema has this kernel.
TORCH_LIBRARY_IMPL(gradkern, Autograd, m) {
  for (const auto& entry : specs())
    m.impl(entry.first.c_str(), torch::CppFunction::makeFromBoxedFunction<&autograd_kernel>());
}

}  // namespace gradkern
