"""Package layout and import errors: the ImportError raised when the imported gradkern has no built
extension (a source checkout shadowing the installed package, or a genuinely missing build), and the
gradkern.distributions subpackage (every class importable from it, each with docstrings)."""
import inspect
import os
import shutil
import subprocess
import sys

import pytest

import gradkern
import gradkern.distributions as D

PKG = os.path.dirname(os.path.abspath(gradkern.__file__))


def _import_copy(tmp_path, with_setup_py):
    # The package's Python files only (no gradkern/_C*.so), as in a fresh checkout or after `pip install .`.
    pkg = tmp_path / "gradkern"
    shutil.copytree(PKG, pkg, ignore=shutil.ignore_patterns("_C*", "*.so", "*.pyd", "__pycache__"))
    assert not any(p.name.startswith("_C") for p in pkg.iterdir())
    if with_setup_py:
        (tmp_path / "setup.py").write_text("raise SystemExit('not to be run')\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", "import gradkern"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0, "importing gradkern without its extension should fail"
    return proc.stderr, str(pkg)


def test_source_tree_without_extension_says_so(tmp_path):
    err, pkg = _import_copy(tmp_path, with_setup_py=True)
    assert "ImportError: You are importing gradkern from the source tree at " + pkg in err, err
    assert "which has no built extension" in err, err
    assert "run from another directory" in err, err
    assert "python setup.py build_ext --inplace" in err, err


def test_missing_build_outside_a_checkout(tmp_path):
    err, _ = _import_copy(tmp_path, with_setup_py=False)
    assert "gradkern's native extension (gradkern._C) is not built" in err, err
    assert "source tree" not in err, err


def test_distributions_subpackage_exports():
    assert not os.path.exists(os.path.join(PKG, "distributions.py"))
    assert not os.path.exists(os.path.join(PKG, "distributions_mixtures.py"))
    assert sorted(D.__all__) == sorted(["Gamma", "Beta", "Dirichlet", "Chi2", "StudentT", "VonMises", "VonMisesFisher",
                                        "HypersphericalUniform", "TruncatedNormal",
                                        "Truncated", "MixtureSameFamily",
                                        "MixtureOfDiagNormalsSharedCovariance", "MixtureOfDiagNormals",
                                        "GaussianScaleMixture", "DiscreteGaussianScaleMixture"])
    for name in D.__all__:
        cls = getattr(D, name)
        assert inspect.isclass(cls) and cls.__module__.startswith("gradkern.distributions."), name
        assert getattr(sys.modules[cls.__module__], name) is cls


@pytest.mark.parametrize("name", D.__all__)
def test_distributions_have_docstrings(name):
    cls = getattr(D, name)
    assert cls.__doc__ and cls.__doc__.strip(), name
    # every public method or property that gradkern defines (not one inherited from torch) has its own
    for klass in cls.__mro__:
        if not klass.__module__.startswith("gradkern."):
            continue
        for attr, value in vars(klass).items():
            if attr.startswith("_") or attr in ("arg_constraints", "support", "has_rsample"):
                continue
            func = value.fget if isinstance(value, property) else value
            if callable(func):
                assert func.__doc__ and func.__doc__.strip(), f"{klass.__name__}.{attr} has no docstring"
    assert "gammainc" in (inspect.getdoc(D.Gamma.cdf) or "")
    assert inspect.getdoc(D.Chi2.icdf)
