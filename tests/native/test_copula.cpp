// Native test of csrc/core/copula.h: plain C++17, no torch. Exits non-zero on failure; runs in < 1 s.
//   g++ -O2 -std=c++17 -I csrc tests/native/test_copula.cpp -o /tmp/test_copula && /tmp/test_copula
// Reference tables: tools/gen_copula_ref.py (mpmath, from definitions independent of the code under test).
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <initializer_list>

#include "core/copula.h"
#include "core/philox.h"

using namespace gradkern::core;

namespace {

int failures = 0;

void expect(bool ok, const char* what, double got, double want, double tol) {
  if (!ok) {
    ++failures;
    std::printf("FAIL %s: got %.17g want %.17g (tol %.3g)\n", what, got, want, tol);
  }
}

void expect_rel(const char* what, double got, double want, double rtol) {
  const double err = std::fabs(got - want);
  expect(err <= rtol * std::fabs(want) || (want == 0 && got == 0), what, got, want, rtol);
}

void expect_abs(const char* what, double got, double want, double atol) {
  expect(std::fabs(got - want) <= atol, what, got, want, atol);
}

// tools/gen_copula_ref.py: {h, k, r, Phi2(h, k; r)}
const double kBvn[][4] = {
    {0.3, -0.2, 0.5, 0.33619843701551876546},
    {-1.5, 2.0, -0.7, 0.053560188678917705569},
    {1.0, 1.0, 0.999, 0.83702768807235625647},
    {-3.0, -3.0, 0.95, 0.0008091633464359356871},
    {2.0, -1.0, -0.95, 0.13591372101894965578},
    {0.5, 0.5000001, 0.99, 0.67158688645955402086},
    {-2.0, 1.0, 0.0, 0.019140703986966681369},
    {4.0, 3.5, -0.3, 0.99973569968878051729},
    {0.7, -0.5, -0.999999, 0.066573886502913867746},
    {0.0, 0.0, -0.5, 0.16666666666666666667},
    {1.2, -0.4, 1.0, 0.34457825838967582509},
    {1.2, -0.4, -1.0, 0.22950858816796754844},
};
// {p, n, mode, rho}
const double kDirichletRho[][4] = {
    {1e-300, 2, 0, -1.0000000000000000251e-300},
    {1e-300, 2, 1, -1.0000000000000000251e-300},
    {1e-300, 2, 2, -1.0000000000000000251e-300},
    {1e-300, 3, 0, -1.0000000000000000251e-300},
    {1e-300, 3, 1, -5.0000000000000001253e-301},
    {1e-300, 3, 2, -1.0000000000000000251e-300},
    {1e-300, 10, 0, -1.0000000000000000251e-300},
    {1e-300, 10, 1, -1.111111111111111139e-301},
    {1e-300, 10, 2, -1.0000000000000000251e-300},
    {1e-300, 1000000, 0, -3.7966844178604803855e-301},
    {1e-300, 1000000, 1, -1.0000010000010000261e-306},
    {1e-300, 1000000, 2, -3.7966844178604803855e-301},
    {1e-08, 2, 0, -1.0000000100000001209e-8},
    {1e-08, 2, 1, -1.0000000100000001209e-8},
    {1e-08, 2, 2, -1.0000000100000001209e-8},
    {1e-08, 3, 0, -1.0000000100000001209e-8},
    {1e-08, 3, 1, -5.0000000250000001984e-9},
    {1e-08, 3, 2, -1.0000000100000001209e-8},
    {1e-08, 10, 0, -1.0000000100000001209e-8},
    {1e-08, 10, 1, -1.1111111123456790278e-9},
    {1e-08, 10, 2, -1.0000000100000001209e-8},
    {1e-08, 1000000, 0, -3.3927050719714116983e-12},
    {1e-08, 1000000, 1, -1.0000010000010100136e-14},
    {1e-08, 1000000, 2, -3.3927050719714116983e-12},
    {0.01, 2, 0, -0.010101010101010101222},
    {0.01, 2, 1, -0.010101010101010101222},
    {0.01, 2, 2, -0.010101010101010101222},
    {0.01, 3, 0, -0.010101010101010101222},
    {0.01, 3, 1, -0.0050250935838200948445},
    {0.01, 3, 2, -0.010101010101010101222},
    {0.01, 10, 0, -0.010051644577076985717},
    {0.01, 10, 1, -0.0011123377841727487746},
    {0.01, 10, 2, -0.010051644577076985717},
    {0.01, 1000000, 0, -2.1421703467537766052e-7},
    {0.01, 1000000, 1, -9.9999259259729754985e-9},
    {0.01, 1000000, 2, -2.1421703467537766052e-7},
    {0.3, 2, 0, -0.42857142857142854877},
    {0.3, 2, 1, -0.42857142857142854877},
    {0.3, 2, 2, -0.42857142857142854877},
    {0.3, 3, 0, -0.38519157152697358451},
    {0.3, 3, 1, -0.17447669588715328743},
    {0.3, 3, 2, -0.38519157152697358451},
    {0.3, 10, 0, -0.072848223663294282804},
    {0.3, 10, 1, -0.034096527509459247582},
    {0.3, 10, 2, -0.072848223663294282804},
    {0.3, 1000000, 0, -6.2123685331333551908e-7},
    {0.3, 1000000, 1, -2.968400869792511701e-7},
    {0.3, 1000000, 2, -6.2123685331333551908e-7},
    {0.5, 2, 0, -1.0},
    {0.5, 2, 1, -1.0},
    {0.5, 2, 2, -1.0},
    {0.5, 3, 0, -0.31370849898476039041},
    {0.5, 3, 1, -0.31370849898476039041},
    {0.5, 3, 2, -0.31370849898476039041},
    {0.5, 10, 0, -0.056228994396363478163},
    {0.5, 10, 1, -0.056228994396363478163},
    {0.5, 10, 2, -0.056228994396363478163},
    {0.5, 1000000, 0, -4.8045371197934226189e-7},
    {0.5, 1000000, 1, -4.8045371197934226189e-7},
    {0.5, 1000000, 2, -4.8045371197934226189e-7},
    {0.9, 2, 0, -0.1111111111111110837},
    {0.9, 2, 1, -0.1111111111111110837},
    {0.9, 2, 2, -0.1111111111111110837},
    {0.9, 3, 0, -0.1111111111111110837},
    {0.9, 3, 1, -0.1111111111111110837},
    {0.9, 3, 2, -0.052591024467279969935},
    {0.9, 10, 0, -0.061160341906265381101},
    {0.9, 10, 1, -0.061160341906265381101},
    {0.9, 10, 2, -0.011225456977282881196},
    {0.9, 1000000, 0, -5.89100173930938786e-7},
    {0.9, 1000000, 1, -5.89100173930938786e-7},
    {0.9, 1000000, 2, -9.9907654216594447789e-8},
    {0.99999999, 2, 0, -1.0000000150247594758e-8},
    {0.99999999, 2, 1, -1.0000000150247594758e-8},
    {0.99999999, 2, 2, -1.0000000150247594758e-8},
    {0.99999999, 3, 0, -1.0000000150247594758e-8},
    {0.99999999, 3, 1, -1.0000000150247594758e-8},
    {0.99999999, 3, 2, -5.0000000501237967216e-9},
    {0.99999999, 10, 0, -1.0000000150247594758e-8},
    {0.99999999, 10, 1, -1.0000000150247594758e-8},
    {0.99999999, 10, 2, -1.1111111179287448785e-9},
    {0.99999999, 1000000, 0, -3.3927050871683234021e-12},
    {0.99999999, 1000000, 1, -3.3927050871683234021e-12},
    {0.99999999, 1000000, 2, -1.0000010050257742928e-14},
};
// {p, n, rho}
const double kGaussianRho[][3] = {
    {1e-30, 3, -1.0000000000000000833e-30},
    {1e-30, 4, -1.0000000000000000833e-30},
    {1e-30, 10, -9.9999994154759669972e-31},
    {1e-30, 100, -7.4361965429427993805e-31},
    {1e-06, 3, -1.000000999954544128e-6},
    {1e-06, 4, -9.9999496516589965741e-7},
    {1e-06, 10, -9.5227335205574861719e-7},
    {1e-06, 100, -2.2098100208848720907e-7},
    {1e-06, 100000, -2.448349984400179217e-10},
    {0.05, 3, -0.051372404839656532074},
    {0.05, 4, -0.045223294329276199388},
    {0.05, 10, -0.021291512816030456407},
    {0.05, 100, -0.0022311832303388406207},
    {0.05, 100000, -2.2393521663475379312e-6},
    {0.3, 3, -0.27097070889220522018},
    {0.3, 4, -0.1843485928944510052},
    {0.3, 10, -0.063047661431293300399},
    {0.3, 100, -0.0058067976654889562367},
    {0.3, 100000, -5.7567236504363180263e-6},
    {0.5, 3, -0.33333333333333333333},
    {0.5, 4, -0.21634689593878545966},
    {0.5, 10, -0.070881891204920042981},
    {0.5, 100, -0.0064306121073421164174},
    {0.5, 100000, -6.3662613863957828061e-6},
    {0.8, 3, -0.19726388060433000763},
    {0.8, 4, -0.14329699227823583218},
    {0.8, 10, -0.052285682134826350708},
    {0.8, 100, -0.0049304536259952305225},
    {0.8, 100000, -4.8986989424501698542e-6},
};

void test_reference_tables() {
  for (const auto& c : kBvn) {
    expect_abs("bvn_cdf<double>", bvn_cdf(c[0], c[1], c[2]), c[3], 4e-16);
    expect_abs("bvn_cdf<float>", bvn_cdf(float(c[0]), float(c[1]), float(c[2])), c[3], 2e-6);
  }
  for (const auto& c : kDirichletRho) {
    const auto mode = static_cast<DirichletMode>(int(c[2]));
    expect_rel("dirichlet_copula_rho<double>", dirichlet_copula_rho(c[0], int64_t(c[1]), mode), c[3], 1e-14);
    // float: p itself rounds (1e-300 underflows, 1 - 1e-8 rounds to 1); compare where p is representable.
    if (c[0] > 1e-30 && c[0] < 0.99) {
      const double pf = double(float(c[0]));
      const double rf = dirichlet_copula_rho(float(c[0]), int64_t(c[1]), mode);
      const double rd = dirichlet_copula_rho(pf, int64_t(c[1]), mode);
      expect_rel("dirichlet_copula_rho<float>", rf, rd, 5e-5);
    }
  }
  for (const auto& c : kGaussianRho) {
    expect_rel("gaussian_copula_rho<double>", gaussian_copula_rho(c[0], int64_t(c[1])), c[2], 1e-12);
    expect_rel("gaussian_copula_rho symmetric", gaussian_copula_rho(1.0 - c[0], int64_t(c[1])),
               gaussian_copula_rho(c[0], int64_t(c[1])), c[0] < 1e-15 ? 1.0 : 1e-9);
  }
}

void test_special_values() {
  // n = 2: both copulas are the pair (u, 1 - u): rho = -min(p, 1-p) / max(p, 1-p) (Theorem 2).
  for (double p : {0.05, 0.3, 0.5, 0.77}) {
    const double want = -std::fmin(p, 1 - p) / std::fmax(p, 1 - p);
    expect_rel("dirichlet rho n=2", dirichlet_copula_rho(p, 2), want, 1e-15);
    expect_rel("gaussian rho n=2", gaussian_copula_rho(p, 2), want, 1e-15);
  }
  // p = 1/2, Gaussian: the orthant formula rho = (2 / pi) asin(-1/(n-1)).
  for (int64_t n : {3, 5, 50}) {
    expect_rel("gaussian rho p=1/2", gaussian_copula_rho(0.5, n), 2.0 / M_PI * std::asin(-1.0 / double(n - 1)), 1e-15);
  }
  // Orientation: the oriented rho is the lower of rho and rho', and rho'(p) = rho(1 - p).
  for (double p : {0.1, 0.35, 0.6, 0.95}) {
    const double d = dirichlet_copula_rho(p, 6, DirichletMode::direct);
    const double r = dirichlet_copula_rho(p, 6, DirichletMode::reflected);
    expect_rel("oriented = min", dirichlet_copula_rho(p, 6), std::fmin(d, r), 1e-15);
    expect_rel("reflected = direct(1-p)", r, dirichlet_copula_rho(1 - p, 6, DirichletMode::direct), 1e-13);
    expect(d >= -1.0 / 5 - 1e-15 && r >= -1.0 / 5 - 1e-15, "rho >= -1/(n-1)", d, r, 0);
  }
  // Domain: NaN outside [0, 1] and for n < 2; 0 (the limit) at p in {0, 1}.
  expect(std::isnan(dirichlet_copula_rho(-0.1, 4)), "dirichlet p<0", 0, 0, 0);
  expect(std::isnan(dirichlet_copula_rho(0.5, 1)), "dirichlet n<2", 0, 0, 0);
  expect(std::isnan(gaussian_copula_rho(1.5, 4)), "gaussian p>1", 0, 0, 0);
  expect(std::isnan(gaussian_copula_rho(NAN, 4)), "gaussian NaN", 0, 0, 0);
  expect(dirichlet_copula_rho(0.0, 4) == 0 && dirichlet_copula_rho(1.0, 4) == 0, "dirichlet endpoints", 0, 0, 0);
  expect(gaussian_copula_rho(0.0, 4) == 0 && gaussian_copula_rho(1.0, 4) == 0, "gaussian endpoints", 0, 0, 0);
  expect(std::isnan(bvn_cdf(0.0, 0.0, 1.5)), "bvn |r|>1", 0, 0, 0);
  // Phi^-1 round trip across the range, both tails.
  for (double p : {1e-300, 1e-100, 1e-20, 1e-5, 0.01, 0.3, 0.5, 0.7, 0.99, 1 - 1e-12}) {
    const double x = std_normal_icdf(p);
    const double back = p < 0.5 ? std_normal_cdf(x) : 1 - std_normal_ccdf(x);
    // Phi has relative condition ~x^2 (x ~ -37 at 1e-300), hence the looser tail tolerance.
    expect_rel("icdf round trip", back, p, p < 1e-50 ? 5e-13 : 1e-14);
  }
}

// Monte Carlo: marginals uniform (mean 1/2, variance 1/12) and the Bernoulli correlation matches rho.
template <bool Gaussian>
void test_sampler(const char* name, int64_t n, double p) {
  const int64_t draws = 200000;
  double u[16];
  double sum_u = 0, sum_u2 = 0, sum_b = 0, sum_bb = 0;
  for (int64_t j = 0; j < draws; ++j) {
    Philox src(12345, static_cast<uint64_t>(j), 0);
    if (Gaussian) gaussian_copula_sample<double>(n, src, u, 1);
    else dirichlet_copula_sample<double>(n, src, u, 1);
    int ones = 0;
    for (int64_t i = 0; i < n; ++i) {
      sum_u += u[i];
      sum_u2 += u[i] * u[i];
      // The orientation the estimators use for the Dirichlet copula: 1 - u below p = 1/2.
      const double v = (!Gaussian && p < 0.5) ? 1 - u[i] : u[i];
      ones += v < p;
    }
    sum_b += ones;
    sum_bb += double(ones) * (ones - 1);  // sum over ordered pairs i != j of b_i b_j
  }
  const double total = double(draws) * n;
  const double mean = sum_u / total, var = sum_u2 / total - mean * mean;
  expect_abs(name, mean, 0.5, 5 * std::sqrt(1.0 / 12 / draws));  // columns are independent; within, corr < 0
  expect_abs(name, var, 1.0 / 12, 0.002);
  const double pb = sum_b / total;
  expect_abs(name, pb, p, 5 * std::sqrt(p * (1 - p) / draws));
  const double e_bb = sum_bb / (double(draws) * n * (n - 1));
  const double rho_mc = (e_bb - p * p) / (p * (1 - p));
  const double rho = Gaussian ? gaussian_copula_rho(p, n) : dirichlet_copula_rho(p, n);
  expect_abs(name, rho_mc, rho, 0.02);
}

}  // namespace

int main() {
  test_reference_tables();
  test_special_values();
  test_sampler<false>("dirichlet sampler n=5 p=0.3", 5, 0.3);
  test_sampler<false>("dirichlet sampler n=10 p=0.8", 10, 0.8);
  test_sampler<true>("gaussian sampler n=5 p=0.3", 5, 0.3);
  test_sampler<true>("gaussian sampler n=3 p=0.6", 3, 0.6);
  if (failures) {
    std::printf("test_copula: %d failure(s)\n", failures);
    return 1;
  }
  std::printf("test_copula: all passed\n");
  return 0;
}
