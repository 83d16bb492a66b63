"""The mpmath ground truth is itself checked: against independent high-precision finite differences of
mpmath's own functions, and the sign of the 2F2 term of eq. 15 (Figurnov et al. 2018, appendix C), which
is printed with the wrong sign."""
import pytest

mp = pytest.importorskip("mpmath")

from gradkern.reference import gamma as ref_gamma  # noqa: E402
from gradkern.reference import vonmises as ref_vonmises  # noqa: E402


def test_eq15_sign_is_minus():
    plus, minus, fd = ref_gamma._check_sign()
    assert abs(minus - fd) < mp.mpf("1e-30") * abs(fd)
    assert abs(plus - fd) > mp.mpf("0.1") * abs(fd)


@pytest.mark.parametrize("a, x", [(0.01, 1e-40), (0.3, 0.05), (2.0, 1.7), (17.0, 25.0), (500.0, 470.0),
                                  (3e4, 3.03e4)])
def test_gamma_dpda_matches_finite_difference(a, x):
    with mp.workdps(60):
        fd = mp.diff(lambda s: mp.gammainc(s, 0, mp.mpf(x), regularized=True), mp.mpf(a))
    got = ref_gamma.dpda(a, x, dps=40)
    assert abs(got - fd) <= mp.mpf("1e-25") * abs(fd)


def _vm_cdf_quad(x, kappa):
    # F(x) = int_{-pi}^{x} exp(kappa (cos t - 1)) dt / int_{-pi}^{pi} (same): independent of the series.
    f = lambda t: mp.exp(kappa * (mp.cos(t) - 1))  # noqa: E731
    return mp.quad(f, [-mp.pi, 0, x]) / mp.quad(f, [-mp.pi, 0, mp.pi])


@pytest.mark.parametrize("x, kappa", [(-2.5, 0.01), (0.3, 1.0), (2.9, 4.0), (-0.2, 40.0)])
def test_vonmises_reference_matches_quadrature(x, kappa):
    with mp.workdps(40):
        F = _vm_cdf_quad(mp.mpf(x), mp.mpf(kappa))
        dF = mp.diff(lambda k: _vm_cdf_quad(mp.mpf(x), k), mp.mpf(kappa))
    assert abs(ref_vonmises.cdf(x, kappa) - F) <= mp.mpf("1e-25")
    assert abs(ref_vonmises.cdf_dkappa(x, kappa) - dF) <= mp.mpf("1e-20") * max(abs(dF), mp.mpf(1e-30))
