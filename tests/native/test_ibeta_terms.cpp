// Native test of the incomplete beta's log terms (csrc/core/ibeta.h digamma_diff, csrc/core/special.h log1p_fast
// and log_fast): plain C++17, no torch. Exits non-zero on failure; runs in < 1 s.
//   g++ -O2 -std=c++17 -I csrc tests/native/test_ibeta_terms.cpp -o /tmp/t && /tmp/t
// Reference values: mpmath psi(z + d) - psi(z) at 40 digits, printed to 20 (the script is in the comment at
// the table). The table reaches d = 1e300: digamma_diff's paired shift terms multiply two denominators, which
// overflow unscaled from d ~ 1e154 (a valid concentration); the power-of-two scaling must keep them finite.
#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <limits>

#include "core/ibeta.h"

using namespace gradkern::core;

namespace {

int failures = 0;

void expect_rel(const char* what, double x, double got, double want, double rtol) {
  const double err = std::fabs(got - want);
  if (!(err <= rtol * std::fabs(want) || (want == 0 && got == 0))) {
    ++failures;
    std::printf("FAIL %s(%.17g): got %.17g want %.17g (rel %.3g > %.3g)\n", what, x, got, want,
                err / std::fabs(want), rtol);
  }
}

// {z, d, psi(z + d) - psi(z)}: for z in [1e-6, 0.5, 1.5, 3, 9.9, 10, 250], d in [0, 1e-12, 1e-3, 0.7, 5, 1e3, 1e8,
// 1e20, 1e160, 1e300]: mp.mp.dps = 40; mp.psi(0, mp.mpf(z) + mp.mpf(d)) - mp.psi(0, mp.mpf(z)), mp.nstr(v, 20)
const double kDigammaDiff[][3] = {
    {1e-06, 0, 0.0},
    {1e-06, 1e-12, 0.99999900000264500105},
    {1e-06, 0.001, 999001.00064472973664},
    {1e-06, 0.7, 999999.35719330036192},
    {1e-06, 5, 1000002.0833319097687},
    {1e-06, 1000.0, 1000007.4844692166632},
    {1e-06, 100000000.0, 1000018.9978947589663},
    {1e-06, 1e+20, 1000046.6289158798948},
    {1e-06, 1e+160, 1000368.9908288990612},
    {1e-06, 1e+300, 1000691.3527419182276},
    {0.5, 0, 0.0},
    {0.5, 1e-12, 4.9348022005362648118e-12},
    {0.5, 0.001, 0.0049264040049902723175},
    {0.5, 0.7, 1.6744701294292351276},
    {0.5, 5, 3.5746031746031746032},
    {0.5, 1000.0, 8.8712653466702199065},
    {0.5, 100000000.0, 20.384190769973788956},
    {0.5, 1e+20, 48.01521188590233716},
    {0.5, 1e+160, 370.37712490506873293},
    {0.5, 1e+300, 692.73903792423512874},
    {1.5, 0, 0.0},
    {1.5, 1e-12, 9.3480220054426489229e-13},
    {1.5, 0.001, 0.00093438803692639997908},
    {1.5, 0.7, 0.50780346276256849178},
    {1.5, 5, 1.7564213564213564214},
    {1.5, 1000.0, 6.872264846920094969},
    {1.5, 100000000.0, 18.384190779973788906},
    {1.5, 1e+20, 46.01521188590233716},
    {1.5, 1e+160, 368.37712490506873293},
    {1.5, 1e+300, 690.73903792423512874},
    {3, 0, 0.0},
    {3, 1e-12, 3.9493406684814937163e-13},
    {3, 0.001, 0.00039485702976262452393},
    {3, 0.7, 0.24436920426304423271},
    {3, 5, 1.0928571428571428571},
    {3, 1000.0, 5.9874678655413618797},
    {3, 100000000.0, 17.497896433853898024},
    {3, 1e+20, 45.128917524782446541},
    {3, 1e+160, 367.49083054394884231},
    {3, 1e+300, 689.85274356311523812},
    {9.9, 0, 0.0},
    {9.9, 1e-12, 1.0628304162873494703e-13},
    {9.9, 0.001, 0.00010627739926457223123},
    {9.9, 0.7, 0.071762866797192992574},
    {9.9, 5, 0.42624865960966090207},
    {9.9, 1000.0, 4.6759310981940150574},
    {9.9, 100000000.0, 16.179500521345979622},
    {9.9, 1e+20, 43.810521543274532244},
    {9.9, 1e+160, 366.17243456244092801},
    {9.9, 1e+300, 688.53434758160732382},
    {10, 0, 0.0},
    {10, 1e-12, 1.0516633568168021909e-13},
    {10, 0.001, 0.00010516081115082015341},
    {10, 0.7, 0.071034947957297400263},
    {10, 5, 0.42259407259407259407},
    {10, 1000.0, 4.6654578895723040898},
    {10, 100000000.0, 16.168928249885639856},
    {10, 1e+20, 43.799949270814192573},
    {10, 1e+160, 366.16186228998058834},
    {10, 1e+300, 688.52377530914698415},
    {250, 0, 0.0},
    {250, 1e-12, 4.0080106666325256107e-15},
    {250, 0.001, 4.0080026345899957583e-6},
    {250, 0.7, 0.0028016791011822946754},
    {250, 5, 0.019841894757250110912},
    {250, 1000.0, 1.6110391924319704709},
    {250, 100000000.0, 12.901223654418206552},
    {250, 1e+20, 40.532242275349867266},
    {250, 1e+160, 362.89415529451626303},
    {250, 1e+300, 685.25606831368265884},
};

}  // namespace

int main() {
  double worst = 0;
  for (const auto& r : kDigammaDiff) {
    const double got = ibeta_detail::digamma_diff(r[0], r[1]);
    expect_rel("digamma_diff", r[1], got, r[2], 2e-15);
    if (r[2] != 0) worst = std::fmax(worst, std::fabs(got - r[2]) / std::fabs(r[2]));
  }
  // log1p_fast and log_fast against libm over a logarithmic sweep of t in (-1, 1e300] (both signs below 1)
  // and x in [min_normal / 4, 1e300]: within 4 ulp (libm is within 1).
  const double eps = std::numeric_limits<double>::epsilon();
  for (double m = 1e-300; m < 1e300; m *= 1.37) {
    for (double t : {m, -m}) {
      if (!(t > -1)) continue;
      expect_rel("log1p_fast", t, log1p_fast(t), std::log1p(t), 4 * eps);
    }
    expect_rel("log_fast", m, log_fast(m), std::log(m), 4 * eps);
  }
  for (double t = -0.999999; t < 1; t += 1.3e-3) expect_rel("log1p_fast", t, log1p_fast(t), std::log1p(t), 4 * eps);
  const double sub = std::numeric_limits<double>::denorm_min() * 7;
  expect_rel("log_fast", sub, log_fast(sub), std::log(sub), eps);  // subnormal: libm's log
  // the special values as libm's log1p returns them
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  if (!(log1p_fast(-1.0) == -inf) || !(log1p_fast(inf) == inf) || !std::isnan(log1p_fast(-2.0)) ||
      !std::isnan(log1p_fast(nan)) || !(log_fast(0.0) == -inf) || !std::isnan(log_fast(-1.0))) {
    ++failures;
    std::printf("FAIL special values of log1p_fast / log_fast\n");
  }
  std::printf("digamma_diff: worst relative error %.3g over %zu points\n", worst,
              sizeof(kDigammaDiff) / sizeof(kDigammaDiff[0]));
  if (failures) std::printf("%d failures\n", failures);
  return failures ? 1 : 0;
}
