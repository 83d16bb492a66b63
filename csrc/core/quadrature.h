// Pieces shared by the core's Gauss-Legendre quadratures of log-concave integrands (von Mises-Fisher,
// csrc/core/vmf.h; the incomplete beta for large parameters, csrc/core/ibeta_quad.h): the panel boundary
// where log F has dropped by a given amount from a peak, and the rules' nodes and weights. Host and device,
// double; no allocation, every loop capped.
#pragma once

#include "common.h"

namespace gradkern {
namespace core {
namespace quad {

static constexpr int kBoundarySteps = 8;  // Newton steps per panel boundary

// The next panel boundary from a (where E = Ea, slope dEa, curvature d2Ea) in direction dir, where E
// reaches `target` < Ea, clipped to [lo, hi]. The first step is the root of the local quadratic model
// (exact for a Gaussian, the tangent step for a straight line, well defined at a peak); then Newton,
// safeguarded to stay on the far side of a. Only the panel sizes depend on these roots' accuracy.
template <class F>
GK_HD double next_boundary(const F& f, double a, double Ea, double dEa, double d2Ea, double target, double dir,
                           double lo, double hi) {
  const double need = Ea - target;                       // > 0
  const double slope = dir * dEa < 0.0 ? -dir * dEa : 0.0;  // |E'| in the descending direction
  const double curv = d2Ea < 0.0 ? -d2Ea : 0.0;
  const double den = slope + ::sqrt(slope * slope + 2.0 * curv * need);
  double b = den > 0.0 ? a + dir * (2.0 * need / den) : (dir > 0.0 ? hi : lo);
  for (int it = 0; it < kBoundarySteps; ++it) {
    if (b <= lo) return lo;
    if (b >= hi) return hi;
    double E, dE, d2E, delta;
    f.at(b, E, dE, d2E, delta);
    const double err = E - target;
    if (err < 2.0 && err > -2.0) break;
    double nb = dE != 0.0 ? b - err / dE : b;
    if (!((nb - a) * dir > 0.0) || !(nb == nb)) nb = a + 0.5 * (b - a);  // stay beyond a, on its side
    b = nb;
  }
  return b < lo ? lo : (b > hi ? hi : b);
}

// Add int_lo^hi e^(E(r) - Eref) |delta|^k dr, k = 0..K-1, over one panel: Gauss-Legendre with 24, 20 or
// 12 nodes (tools/gen_gauss_legendre.py). A panel spans the rule's drop from a peak (42, 34, 20: e^-42 to
// e^-20), over which a log-concave (or exponential) integrand is integrated to ~2e-15, ~2e-14 and ~4e-10
// relative (measured on e^(-D x) and e^(-D x^2) on [0, 1]); tests/test_vmf.py checks the composite.
template <int N> struct GaussLegendre;
template <> struct GaussLegendre<24> {
  // nodes in [-1, 1] (the negative half first) and weights
  static GK_HD double x(int j) {
    static constexpr double v[24] = {
        -0.99518721999702136018, -0.9747285559713094982, -0.93827455200273275852,
        -0.88641552700440103421, -0.82000198597390292195, -0.74012419157855436424,
        -0.64809365193697556925, -0.54542147138883953566, -0.43379350762604513849,
        -0.31504267969616337439, -0.19111886747361630916, -0.064056892862605626085,
        0.99518721999702136018, 0.9747285559713094982, 0.93827455200273275852,
        0.88641552700440103421, 0.82000198597390292195, 0.74012419157855436424,
        0.64809365193697556925, 0.54542147138883953566, 0.43379350762604513849,
        0.31504267969616337439, 0.19111886747361630916, 0.064056892862605626085,
    };
    return v[j];
  }
  static GK_HD double w(int j) {
    static constexpr double v[24] = {
        0.012341229799987199547, 0.028531388628933663181, 0.044277438817419806169,
        0.059298584915436780746, 0.073346481411080305734, 0.086190161531953275917,
        0.09761865210411388827, 0.10744427011596563478, 0.11550566805372560135,
        0.1216704729278033912, 0.12583745634682829612, 0.12793819534675215697,
        0.012341229799987199547, 0.028531388628933663181, 0.044277438817419806169,
        0.059298584915436780746, 0.073346481411080305734, 0.086190161531953275917,
        0.09761865210411388827, 0.10744427011596563478, 0.11550566805372560135,
        0.1216704729278033912, 0.12583745634682829612, 0.12793819534675215697,
    };
    return v[j];
  }
  static constexpr double drop = 42.0;
};
template <> struct GaussLegendre<20> {
  // nodes in [-1, 1] (the negative half first) and weights
  static GK_HD double x(int j) {
    static constexpr double v[20] = {
        -0.99312859918509492479, -0.96397192727791379127, -0.91223442825132590587,
        -0.83911697182221882339, -0.74633190646015079261, -0.63605368072651502545,
        -0.510867001950827098, -0.37370608871541956067, -0.22778585114164507808,
        -0.076526521133497333755, 0.99312859918509492479, 0.96397192727791379127,
        0.91223442825132590587, 0.83911697182221882339, 0.74633190646015079261,
        0.63605368072651502545, 0.510867001950827098, 0.37370608871541956067,
        0.22778585114164507808, 0.076526521133497333755,
    };
    return v[j];
  }
  static GK_HD double w(int j) {
    static constexpr double v[20] = {
        0.017614007139152118312, 0.040601429800386941331, 0.06267204833410906357,
        0.083276741576704748725, 0.10193011981724043504, 0.11819453196151841731,
        0.1316886384491766269, 0.14209610931838205133, 0.14917298647260374679,
        0.1527533871307258507, 0.017614007139152118312, 0.040601429800386941331,
        0.06267204833410906357, 0.083276741576704748725, 0.10193011981724043504,
        0.11819453196151841731, 0.1316886384491766269, 0.14209610931838205133,
        0.14917298647260374679, 0.1527533871307258507,
    };
    return v[j];
  }
  static constexpr double drop = 34.0;
};
template <> struct GaussLegendre<12> {
  // nodes in [-1, 1] (the negative half first) and weights
  static GK_HD double x(int j) {
    static constexpr double v[12] = {
        -0.98156063424671925069, -0.90411725637047485668, -0.76990267419430468704,
        -0.5873179542866174473, -0.36783149899818019375, -0.12523340851146891547,
        0.98156063424671925069, 0.90411725637047485668, 0.76990267419430468704,
        0.5873179542866174473, 0.36783149899818019375, 0.12523340851146891547,
    };
    return v[j];
  }
  static GK_HD double w(int j) {
    static constexpr double v[12] = {
        0.047175336386511827195, 0.10693932599531843096, 0.16007832854334622633,
        0.20316742672306592175, 0.23349253653835480876, 0.249147045813402785,
        0.047175336386511827195, 0.10693932599531843096, 0.16007832854334622633,
        0.20316742672306592175, 0.23349253653835480876, 0.249147045813402785,
    };
    return v[j];
  }
  static constexpr double drop = 20.0;
};

}  // namespace quad
}  // namespace core
}  // namespace gradkern
