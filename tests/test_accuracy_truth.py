"""The ground truth that bench/accuracy.py ships (bench/data/accuracy_truth.npz) belongs to the inputs the
script generates, and agrees with mpmath: so that a change to the grid, the seed or the sample generation
fails here, not silently in the main job's table."""
import importlib.util
import os
import sys

import numpy as np
import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench")


@pytest.fixture(scope="module")
def acc():
    if BENCH not in sys.path:
        sys.path.insert(0, BENCH)
    spec = importlib.util.spec_from_file_location("_gk_bench_accuracy", os.path.join(BENCH, "accuracy.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_table_has_its_shipped_truth(acc):
    meta, arrays = acc.read_shipped()
    tables = acc.all_tables()
    assert len(tables) == len(meta["tables"])
    for t in tables:
        truth = acc.shipped_truth(t, meta, arrays)
        assert truth.shape == t.x.shape and truth.dtype == np.float64


def test_changed_inputs_are_refused(acc):
    meta, arrays = acc.read_shipped()
    t = acc.all_tables()[0]
    bad = dict(arrays)
    x = bad[f"{t.name}__x"].copy()
    x.flat[0] = np.nextafter(x.flat[0], np.inf)
    bad[f"{t.name}__x"] = x
    with pytest.raises(acc.TruthError, match="regenerate"):
        acc.shipped_truth(t, meta, bad)


def test_shipped_points_agree_with_mpmath(acc):
    meta, arrays = acc.read_shipped()
    tables = acc.all_tables()
    truths = {t.name: acc.shipped_truth(t, meta, arrays) for t in tables}
    assert acc.verify_truth(tables, truths, n=len(tables), seed=1, processes=1) == len(tables)
    # A wrong shipped value is caught.
    t = tables[0]
    wrong = dict(truths)
    wrong[t.name] = truths[t.name] * (1 + 1e-9)
    with pytest.raises(acc.TruthError, match="disagree"):
        acc.verify_truth([t], wrong, n=4, seed=1, processes=1)
