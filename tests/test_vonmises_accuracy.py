"""Accuracy of the von Mises ops against mpmath ground truth (tests/data/vonmises_ref.csv, generated once
by `python -m gradkern.reference.vonmises` and committed).

Goals are the acceptance criteria of the von Mises issue: on the paper's grid (kappa in {1e-2, 1e-1, 1,
10}, 1000 samples each) the mean absolute error of dx/dkappa is <= 3e-8 in float32 and <= 1e-14 in
float64; over the extended domain (kappa 1e-6..1e6, tail quantiles down to 1e-10) the max relative error
of F, dF/dkappa and dx/dkappa is <= 1e-5 / 1e-12; beyond the 1e-10 quantiles ('far') values are finite."""
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import DEVICES

OPS = torch.ops.gradkern
DATA = Path(__file__).parent / "data" / "vonmises_ref.csv"
GOALS = {torch.float32: dict(paper_mean_abs=3e-8, max_rel=1e-5),
         torch.float64: dict(paper_mean_abs=1e-14, max_rel=1e-12)}


@pytest.fixture(scope="module")
def ref():
    table = np.genfromtxt(DATA, delimiter=",", names=True, dtype=None, encoding="ascii")
    assert table.size > 5000
    return table


def _eval(rows, dtype, device):
    x = torch.tensor(rows["x"].astype(np.float64), dtype=dtype, device=device)
    k = torch.tensor(rows["kappa"].astype(np.float64), dtype=dtype, device=device)
    return {"F": OPS.vonmises_cdf(x, k), "dFdk": OPS.vonmises_cdf_grad_concentration(x, k),
            "dxdk": OPS.vonmises_grad(k, x)}


def _max_rel(got, want, dtype):
    got = got.double().cpu().numpy()
    err = np.abs(got - want)
    # Truths below the smallest normal number have no relative precision in this dtype.
    scale = np.maximum(np.abs(want), torch.finfo(dtype).tiny)
    return np.max(err / scale)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_paper_grid_mean_abs_error(ref, dtype, device):
    rows = ref[ref["set"] == "paper"]
    assert rows.size == 4000
    got = _eval(rows, dtype, device)["dxdk"].double().cpu().numpy()
    assert np.isfinite(got).all()
    assert np.mean(np.abs(got - rows["dxdk"])) <= GOALS[dtype]["paper_mean_abs"]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_extended_domain_max_relative_error(ref, dtype, device):
    rows = ref[(ref["set"] == "paper") | (ref["set"] == "ext")]
    out = _eval(rows, dtype, device)
    for col in ("F", "dFdk", "dxdk"):
        got = out[col]
        assert torch.isfinite(got).all(), col
        assert _max_rel(got, rows[col], dtype) <= GOALS[dtype]["max_rel"], col


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_far_tails_finite(ref, dtype):
    rows = ref[ref["set"] == "far"]
    assert rows.size > 0
    for col, got in _eval(rows, dtype, "cpu").items():
        assert torch.isfinite(got).all(), col
