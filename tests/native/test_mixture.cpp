// Check of csrc/core/mixture.h against naive references. Plain C++17, no torch, no framework.
//
//   test_mixture [ignored]      (ctest passes a data-file path; this test needs none)
//
// 1. log_ndtr, log_ndtr_diff and log_gamma_pq_half against direct long-double formulas (erfcl, the
//    finite sums of eqs. 42-43 term by term) where those are accurate.
// 2. The per-sample backward against the transport equation (paper eq. 3): for each family and each
//    parameter element, dq/dtheta + div(q v^theta) = 0 with q formed naively (no log space) and both
//    derivatives by central differences, at random points, in double.
// 3. The component-parameter gradients (eq. 12) against a naive responsibility pi_j q_j / q.
// 4. D = 500, small scales, float: every accumulated gradient is finite.
// Exits non-zero on any failure.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "core/mixture.h"

using namespace gradkern::core;
using namespace gradkern::core::mixture;

namespace {

int failures = 0;
int checks = 0;

void expect(bool ok, const char* what, double got, double want) {
  ++checks;
  if (!ok) {
    ++failures;
    std::printf("FAIL %s: got %.17g want %.17g\n", what, got, want);
  }
}

double rel(double a, double b) { return std::fabs(a - b) / std::fmax(std::fabs(b), 1e-300); }

long double ref_log_ndtr(long double x) {
  const long double t = x / std::sqrt(2.0L);
  return x > 0 ? std::log1p(-0.5L * std::erfc(t)) : std::log(0.5L * std::erfc(-t));
}

// P(a, x) by its power series in long double (accurate where P is small).
long double ref_gamma_p(long double a, long double x) {
  long double term = 1, sum = 1;
  for (int n = 1; n < 100000 && term > 1e-22L * sum; ++n) {
    term *= x / (a + n);
    sum += term;
  }
  return std::exp(a * std::log(x) - x - std::lgamma(a + 1)) * sum;
}

// Q(D/2, x) term by term in long double (eqs. 42, 43).
long double ref_gamma_q_half(int D, long double x) {
  if (D % 2 == 0) {
    long double term = std::exp(-x), sum = 0;
    for (int k = 0; k < D / 2; ++k) {
      sum += term;
      term *= x / (k + 1);
    }
    return sum;
  }
  long double sum = std::erfc(std::sqrt(x));
  long double term = std::exp(-x) * std::sqrt(x) / std::tgamma(1.5L);
  for (int k = 1; k <= (D - 1) / 2; ++k) {
    sum += term;
    term *= x / (k + 0.5L);
  }
  return sum;
}

void check_special_functions() {
  for (double x : {-38.0, -25.0, -19.5, -12.0, -5.0, -1.0, -0.3, 0.0, 0.7, 3.0, 8.0}) {
    const double want = double(ref_log_ndtr(x));
    expect(rel(log_ndtr(x), want) < 1e-13, "log_ndtr<double>", log_ndtr(x), want);
    if (x > -13) expect(rel(log_ndtr(float(x)), want) < 2e-6, "log_ndtr<float>", log_ndtr(float(x)), want);
  }
  const double pairs[][2] = {{-30, -31}, {-3, -3.5}, {-0.2, -1}, {1, -1}, {2, 0.5}, {9, 8}, {30, 29}, {1e-3, 0}};
  for (auto& ab : pairs) {
    const long double a = ab[0], b = ab[1];
    // Exact difference in long double through the tail that is not 1 - tiny.
    const long double d = (a <= 0) ? 0.5L * (std::erfc(-a / std::sqrt(2.0L)) - std::erfc(-b / std::sqrt(2.0L)))
                                   : 0.5L * (std::erfc(b / std::sqrt(2.0L)) - std::erfc(a / std::sqrt(2.0L)));
    const double want = double(std::log(d));
    expect(rel(log_ndtr_diff(ab[0], ab[1]), want) < 1e-11, "log_ndtr_diff<double>", log_ndtr_diff(ab[0], ab[1]),
           want);
  }
  for (int D : {1, 2, 3, 4, 7, 10, 51, 500}) {
    for (double x : {1e-3, 0.4, 1.0, 3.0, 0.5 * D, 0.5 * D + 2, 2.0 * D + 10}) {
      double lp, lq;
      log_gamma_pq_half(D, x, &lp, &lq);
      const long double q = ref_gamma_q_half(D, x);
      if (q > 1e-300L && q < 0.999L) {
        expect(rel(lq, double(std::log(q))) < 1e-11, "log Q(D/2, x)", lq, double(std::log(q)));
      }
      const long double pr = ref_gamma_p(0.5L * D, x);
      if (pr > 1e-300L && pr < 0.5L) {
        expect(rel(lp, double(std::log(pr))) < 1e-11, "log P(D/2, x)", lp, double(std::log(pr)));
      }
      expect(std::fabs(std::exp(lp) + std::exp(lq) - 1.0) < 1e-13, "P + Q = 1", std::exp(lp) + std::exp(lq), 1.0);
    }
  }
}

// A mixture in the core's layout, owning its storage; finish() derives what Params needs, written
// independently of the ops' ATen version (csrc/ops/mixture.h).
template <typename T>
struct Owned {
  int family, K, D;
  std::vector<T> locs, coord_scale, component_scale, logits;
  std::vector<T> log_pi, inv_scale, log_norm, log_scale, ref, inv_ref, log_ref, locs_ref, ref_loc;
  T log_ref_sum = 0, lam0 = 1;
  bool common_reference = false;  // kDiagNormals: the O(K D) field, one reference N(mu', s')
  T scale(int j, int i) const {
    return (family == kDiagNormals ? coord_scale[j * D + i] : coord_scale[i]) * (component_scale.empty() ? T(1) : component_scale[j]);
  }
  T mean(int j, int i) const { return locs.empty() ? T(0) : locs[j * D + i]; }
  void finish() {
    T m = logits[0], s = 0;
    for (T l : logits) m = std::max(m, l);
    for (T l : logits) s += std::exp(l - m);
    log_pi.assign(K, 0);
    for (int j = 0; j < K; ++j) log_pi[j] = logits[j] - m - std::log(s);
    inv_scale.assign(K * D, 0);
    log_scale.assign(K * D, 0);
    log_norm.assign(K, 0);
    for (int j = 0; j < K; ++j) {
      log_norm[j] = -T(D) * T(0.5 * std::log(2 * M_PI));
      for (int i = 0; i < D; ++i) {
        inv_scale[j * D + i] = T(1) / scale(j, i);
        log_scale[j * D + i] = std::log(scale(j, i));
        log_norm[j] -= log_scale[j * D + i];
      }
    }
    lam0 = 1;
    if (!component_scale.empty()) lam0 = *std::min_element(component_scale.begin(), component_scale.end());
    ref.assign(D, 0);
    for (int i = 0; i < D; ++i) {
      ref[i] = coord_scale[i] * lam0;
      if (family == kDiagNormals)
        for (int j = 1; j < K; ++j) ref[i] = std::min(ref[i], coord_scale[j * D + i]);
    }
    inv_ref.assign(D, 0);
    log_ref.assign(D, 0);
    log_ref_sum = 0;
    for (int i = 0; i < D; ++i) {
      inv_ref[i] = T(1) / ref[i];
      log_ref[i] = std::log(ref[i]);
      log_ref_sum += log_ref[i];
    }
    locs_ref.assign(locs.size(), 0);
    for (size_t t = 0; t < locs.size(); ++t) locs_ref[t] = locs[t] * inv_ref[t % D];
    ref_loc.assign(D, 0);  // mu' = sum_j pi_j mu_j, as the ops choose it
    for (int j = 0; j < K && common_reference; ++j)
      for (int i = 0; i < D; ++i) ref_loc[i] += std::exp(log_pi[j]) * locs[j * D + i];
  }
  Params<T> params() const {
    Params<T> p;
    p.K = K;
    p.D = D;
    p.family = family;
    p.locs = locs.empty() ? nullptr : locs.data();
    p.coord_scale = coord_scale.data();
    p.component_scale = component_scale.empty() ? nullptr : component_scale.data();
    p.log_pi = log_pi.data();
    p.inv_scale = inv_scale.data();
    p.log_norm = log_norm.data();
    p.log_scale = family == kDiagNormals ? log_scale.data() : nullptr;
    p.ref = ref.data();
    p.inv_ref = inv_ref.data();
    p.log_ref = family == kDiagNormals ? log_ref.data() : nullptr;
    p.locs_ref = locs.empty() ? nullptr : locs_ref.data();
    p.ref_loc = common_reference ? ref_loc.data() : nullptr;
    p.log_ref_sum = log_ref_sum;
    p.lam0 = lam0;
    return p;
  }
  T component(int j, const T* z) const {  // naive q_j(z)
    T q = 1;
    for (int i = 0; i < D; ++i) {
      const T s = scale(j, i), e = (z[i] - mean(j, i)) / s;
      q *= std::exp(T(-0.5) * e * e) / (s * T(std::sqrt(2 * M_PI)));
    }
    return q;
  }
  T density(const T* z) const {
    T q = 0, s = 0;
    for (T l : logits) s += std::exp(l);
    for (int j = 0; j < K; ++j) q += std::exp(logits[j]) / s * component(j, z);
    return q;
  }
};
using Mix = Owned<double>;

Mix random_mix(int family, int K, int D, std::mt19937_64& rng, bool common_reference = false) {
  std::normal_distribution<double> n01;
  std::uniform_real_distribution<double> u(0.5, 1.5);
  Mix m;
  m.family = family;
  m.common_reference = common_reference;
  m.K = K;
  m.D = D;
  if (family != kGaussianScale) for (int t = 0; t < K * D; ++t) m.locs.push_back(n01(rng));
  for (int t = 0; t < (family == kDiagNormals ? K * D : D); ++t) m.coord_scale.push_back(u(rng));
  for (int j = 0; j < K; ++j) m.logits.push_back(0.5 * n01(rng));
  if (family == kGaussianScale || family == kDiscreteGaussianScale) for (int j = 0; j < K; ++j) m.component_scale.push_back(u(rng));
  m.finish();
  return m;
}

struct PlainAdd {
  template <typename T>
  void operator()(T* p, T v) const { *p += v; }
};

// All parameter gradients for one sample and upstream gradient g, logits finished as the ops do.
std::vector<double> grads(const Mix& m, const double* z, const double* g) {
  const int K = m.K, D = m.D;
  std::vector<double> logits(K), acc(K), locs(K * D), coord_scale(m.coord_scale.size()), component_scale(K);
  Grads<double> out{logits.data(), acc.data(), m.locs.empty() ? nullptr : locs.data(), coord_scale.data(),
                    m.component_scale.empty() ? nullptr : component_scale.data()};
  backward_sample(m.params(), z, g, out, PlainAdd{});
  double mean_acc = 0;
  for (int j = 0; j < K; ++j) mean_acc += std::exp(m.log_pi[j]) * acc[j];
  for (int j = 0; j < K; ++j) logits[j] += std::exp(m.log_pi[j]) * (acc[j] - mean_acc);
  std::vector<double> all;  // order: locs, coord_scale, logits, component_scale (the parameter vectors below)
  if (!m.locs.empty()) all.insert(all.end(), locs.begin(), locs.end());
  all.insert(all.end(), coord_scale.begin(), coord_scale.end());
  all.insert(all.end(), logits.begin(), logits.end());
  if (!m.component_scale.empty()) all.insert(all.end(), component_scale.begin(), component_scale.end());
  return all;
}

std::vector<double*> param_slots(Mix& m) {
  std::vector<double*> s;
  for (auto& v : m.locs) s.push_back(&v);
  for (auto& v : m.coord_scale) s.push_back(&v);
  for (auto& v : m.logits) s.push_back(&v);
  for (auto& v : m.component_scale) s.push_back(&v);
  return s;
}

void check_transport(int family, int K, int D, std::mt19937_64& rng, bool common_reference = false) {
  Mix m = random_mix(family, K, D, rng, common_reference);
  std::normal_distribution<double> n01;
  const double h = 1e-4;
  for (int point = 0; point < 3; ++point) {
    std::vector<double> z(D), e(D, 0.0);
    for (auto& v : z) v = 1.3 * n01(rng);
    // v^theta_i(z +- h e_i) for all theta: one backward per (i, sign).
    std::vector<std::vector<double>> vp(D), vm(D);
    std::vector<double> qp(D), qm(D);
    for (int i = 0; i < D; ++i) {
      e.assign(D, 0.0);
      e[i] = 1;
      std::vector<double> zp = z, zm = z;
      zp[i] += h;
      zm[i] -= h;
      vp[i] = grads(m, zp.data(), e.data());
      vm[i] = grads(m, zm.data(), e.data());
      qp[i] = m.density(zp.data());
      qm[i] = m.density(zm.data());
    }
    const double q0 = m.density(z.data());
    auto slots = param_slots(m);
    for (size_t t = 0; t < slots.size(); ++t) {
      const double keep = *slots[t];
      *slots[t] = keep + h;
      m.finish();
      const double q_plus = m.density(z.data());
      *slots[t] = keep - h;
      m.finish();
      const double q_minus = m.density(z.data());
      *slots[t] = keep;
      m.finish();
      const double dq = (q_plus - q_minus) / (2 * h);
      double div = 0;
      for (int i = 0; i < D; ++i) div += (qp[i] * vp[i][t] - qm[i] * vm[i][t]) / (2 * h);
      const double scale = std::fabs(dq) + std::fabs(div) + 1e-3 * q0;
      ++checks;
      if (!(std::fabs(dq + div) <= 1e-5 * scale)) {
        ++failures;
        std::printf("FAIL transport family=%d%s K=%d D=%d param %zu: dq/dtheta=%.10g -div(qv)=%.10g\n", family,
                    common_reference ? " (common reference)" : "", K, D, t, dq, -div);
      }
    }
  }
}

void check_responsibilities(std::mt19937_64& rng) {
  Mix m = random_mix(kDiagNormals, 4, 3, rng);
  const double z[3] = {0.3, -0.7, 1.1}, g[3] = {1.0, -2.0, 0.5};
  const auto all = grads(m, z, g);
  const double q = m.density(z);
  double s = 0;
  for (double l : m.logits) s += std::exp(l);
  for (int j = 0; j < 4; ++j) {
    const double w = std::exp(m.logits[j]) / s * m.component(j, z) / q;
    for (int i = 0; i < 3; ++i) {
      expect(rel(all[j * 3 + i], w * g[i]) < 1e-12, "eq. 12 locs gradient", all[j * 3 + i], w * g[i]);
      const double want = w * g[i] * (z[i] - m.mean(j, i)) / m.coord_scale[j * 3 + i];
      expect(rel(all[12 + j * 3 + i], want) < 1e-12, "eq. 12 scale gradient", all[12 + j * 3 + i], want);
    }
  }
}

void check_high_dimension_float(std::mt19937_64& rng) {
  const int K = 5, D = 500;
  std::normal_distribution<float> n01;
  std::uniform_real_distribution<float> u(0.025f, 0.075f);
  const int variants[] = {kSharedCovariance, kGaussianScale, kDiagNormals, kDiscreteGaussianScale, -1};
  for (int variant : variants) {
    const int family = variant < 0 ? kDiagNormals : variant;  // -1: kDiagNormals, common reference
    Owned<float> m;
    m.family = family;
    m.common_reference = variant < 0;
    m.K = K;
    m.D = D;
    if (family != kGaussianScale) for (int t = 0; t < K * D; ++t) m.locs.push_back(n01(rng));
    for (int t = 0; t < (family == kDiagNormals ? K * D : D); ++t) m.coord_scale.push_back(u(rng));
    for (int j = 0; j < K; ++j) m.logits.push_back(0.3f * n01(rng));
    if (family == kGaussianScale || family == kDiscreteGaussianScale)
      for (int j = 0; j < K; ++j) m.component_scale.push_back(0.5f + 0.25f * j);
    m.finish();
    std::vector<float> z(D), g(D);
    for (int i = 0; i < D; ++i) {  // a sample from component 2
      z[i] = m.mean(2, i) + m.scale(2, i) * n01(rng);
      g[i] = n01(rng);
    }
    std::vector<float> logits(K), acc(K), gl(K * D), gc(m.coord_scale.size()), glam(K);
    Grads<float> out{logits.data(), acc.data(), gl.data(), gc.data(), glam.data()};
    backward_sample(m.params(), z.data(), g.data(), out, PlainAdd{});
    bool finite = std::isfinite(log_density(m.params(), z.data()));
    for (auto* v : {&logits, &acc, &gl, &gc, &glam})
      for (float x : *v) finite = finite && std::isfinite(x);
    expect(finite, "D=500 float gradients finite", finite, 1);
  }
}

}  // namespace

// 6. The backward is linear in the upstream gradient, g -> -g negates every gradient (catches sign
//    handling that only holds for g_i > 0, e.g. |g_i| where g_i is meant).
void check_linearity(int family, int K, int D, std::mt19937_64& rng, bool common_reference = false) {
  Mix m = random_mix(family, K, D, rng, common_reference);
  std::normal_distribution<double> n01;
  std::vector<double> z(D), g(D), neg(D);
  for (int i = 0; i < D; ++i) {
    z[i] = 1.5 * n01(rng);
    g[i] = n01(rng);
    neg[i] = -g[i];
  }
  const std::vector<double> a = grads(m, z.data(), g.data()), b = grads(m, z.data(), neg.data());
  double scale = 0;
  for (double v : a) scale = std::fmax(scale, std::fabs(v));
  for (size_t t = 0; t < a.size(); ++t) {
    expect(std::fabs(a[t] + b[t]) <= 1e-12 * std::fmax(scale, 1.0), "backward(-g) = -backward(g)", b[t], -a[t]);
  }
}

// 5. split_ndtr_diff_scaled (the CPU kernel's batched evaluation) reassembled with erfc and exp gives
//    exactly ndtr_diff_scaled wherever it does not defer to it, for both signs, straddling pairs, zeros
//    and scales near the overflow guard.
template <typename T>
void check_split_ndtr() {
  const T xs[] = {T(-30), T(-12), T(-9.5), T(-3), T(-1), T(-0.25), T(0), T(0.25), T(1), T(3), T(9.5), T(12), T(30)};
  const T ls[] = {T(-50), T(-1), T(0), T(2), T(70), T(79), T(85)};
  for (T a : xs) {
    for (T b : xs) {
      if (!(a >= b)) continue;
      for (T l : ls) {
        T e1 = T(-1), e2 = T(-1);
        const int kind = split_ndtr_diff_scaled(a, b, l, &e1, &e2);
        const T want = ndtr_diff_scaled(a, b, l);
        if (kind == 0) continue;
        const T E1 = std::erfc(e1), E2 = std::erfc(e2), S = std::exp(l);
        const T got = kind == 1 ? T(0.5) * (E1 - E2) * S : (T(1) - T(0.5) * (E1 + E2)) * S;
        expect(got == want, "split_ndtr_diff_scaled", double(got), double(want));
      }
    }
  }
  T e1, e2;  // NaN and reversed arguments are left to ndtr_diff_scaled
  expect(split_ndtr_diff_scaled(gradkern::core::quiet_nan<T>(), T(-1), T(0), &e1, &e2) == 0, "split NaN", 0, 0);
  expect(split_ndtr_diff_scaled(T(-2), T(-1), T(0), &e1, &e2) == 0, "split a < b", 0, 0);
}

int main() {
  std::mt19937_64 rng(20240611);
  check_special_functions();
  for (int family : {kSharedCovariance, kGaussianScale, kDiagNormals, kDiscreteGaussianScale}) {
    check_transport(family, 1, 2, rng);
    check_transport(family, 3, 1, rng);
    check_transport(family, 3, 3, rng);
  }
  // MixtureOfDiagNormals' O(K D) field: one reference N(mu', s') for all components.
  check_transport(kDiagNormals, 1, 2, rng, true);
  check_transport(kDiagNormals, 3, 1, rng, true);
  check_transport(kDiagNormals, 3, 3, rng, true);
  check_transport(kDiagNormals, 5, 4, rng, true);
  check_responsibilities(rng);
  check_high_dimension_float(rng);
  for (int family : {kSharedCovariance, kGaussianScale, kDiagNormals, kDiscreteGaussianScale}) {
    check_linearity(family, 3, 4, rng);
  }
  check_linearity(kDiagNormals, 3, 4, rng, true);
  check_split_ndtr<float>();
  check_split_ndtr<double>();
  std::printf("test_mixture: %s (%d checks, %d failure%s)\n", failures ? "FAILED" : "ok", checks, failures,
              failures == 1 ? "" : "s");
  return failures ? 1 : 0;
}
