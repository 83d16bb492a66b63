"""Smoke tests of the runnable examples (examples/): each runs for a few steps, from the installed package
(the scripts use the source tree only when its extension is built in place), so that they cannot rot.

The VAE example (section 6.3 of Figurnov et al. 2018) trains every latent family for one epoch and must
produce a finite test ELBO and importance-weighted log-likelihood per family, with the IWAE bound at or
above the ELBO (up to Monte Carlo noise), and write its results table.
"""
import json
import math
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_vae_example_smoke(tmp_path):
    pytest.importorskip("sklearn", reason="the VAE example's data ship with scikit-learn (pip install '.[test]')")
    out = tmp_path / "vae"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "vae.py"), "--epochs", "1", "--dims", "2",
                           "--seeds", "1", "--no-plots", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((out / "vae_results.json").read_text())
    for family in ("normal", "vonmises", "beta", "gamma", "vmf",
                   "gamma-rsvi5", "gamma-rsvi20", "beta-rsvi5", "beta-rsvi20", "vonmises-rsvi"):
        (elbo, iwae), = results[f"{family}-2"]
        assert math.isfinite(elbo) and math.isfinite(iwae), family
        assert -200 < elbo < 0 and iwae > elbo - 1.0, (family, elbo, iwae)
    md = (out / "vae_results.md").read_text()
    assert "| Beta / uniform | 2 |" in md and "| von Mises / uniform (circle), RSVI | 2 |" in md


def test_antithetic_elbo_example_smoke(tmp_path):
    # The antithetic ELBO example (docs/antithetic.md), with few repetitions: it runs from an installed
    # package and prints its table.
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "antithetic_elbo.py"), "--reps", "20"],
                          capture_output=True, text=True, timeout=300, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| logistic | 8 |" in proc.stdout


def test_lda_example_smoke(tmp_path):
    # Two epochs on 200 documents: a finite perplexity bound and a topic recovery in (0, 1] for both posterior
    # families; the Dirichlet one already below the vocabulary size's (the uniform model's).
    out = tmp_path / "lda"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "lda.py"), "--epochs", "2", "--seeds", "1",
                           "--docs", "200", "--no-plots", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((out / "lda_results.json").read_text())["results"]
    for method in ("dirichlet", "rsvi1", "rsvi10", "rsvi20", "logistic-normal"):
        (perplexity, recovery), = results[method]
        assert math.isfinite(perplexity) and perplexity > 1, (method, perplexity)
        assert method != "dirichlet" or perplexity < 2000, perplexity
        assert 0 < recovery <= 1, (method, recovery)
