"""gradkern: exact, low-variance gradients through random variables for PyTorch.

Importing the package loads the native extension (gradkern._C), which registers the ``torch.ops.gradkern``
operators, then registers their fake kernels and autograd formulas. The namespace holds only the API
(``__all__``); the implementation modules are private (``gradkern._special``, ``gradkern._gamma``, ...).
"""
import torch  # noqa: F401  (loads libtorch before the extension; removed from the namespace below)


def _source_tree_without_extension():
    """True when this package is a source checkout (setup.py one level up) with no gradkern._C built for
    this Python next to this file: typically `import gradkern` from the repository root after
    `pip install .`, where the source tree's gradkern/ shadows the installed package."""
    import importlib.machinery
    import os

    here = os.path.dirname(os.path.abspath(__file__))
    if not os.path.isfile(os.path.join(os.path.dirname(here), "setup.py")):
        return False
    return not any(os.path.exists(os.path.join(here, "_C" + suffix))
                   for suffix in importlib.machinery.EXTENSION_SUFFIXES)


try:
    from . import _C  # noqa: F401
except ImportError as e:  # pragma: no cover - exercised in a subprocess by tests/test_import.py
    import os as _os

    if _source_tree_without_extension():
        raise ImportError(
            f"You are importing gradkern from the source tree at {_os.path.dirname(_os.path.abspath(__file__))}, "
            "which has no built extension (gradkern._C). If gradkern is installed (`pip install .`), run "
            "from another directory so that the installed package is imported instead of this one; or build "
            "in place with `python setup.py build_ext --inplace`. Original error: " + str(e)) from e
    raise ImportError(
        "gradkern's native extension (gradkern._C) is not built. Install with "
        "`pip install --no-build-isolation .`, or for development "
        "`python setup.py build_ext --inplace`. Original error: " + str(e)) from e

from ._special import gammainc, gammaincc, gammaincinv, log_standard_gamma_grad, standard_gamma_grad
from ._beta import betainc, betaincc, betaincinv, standard_beta_grad
from ._gamma import (beta_rsample, chi2_rsample, dirichlet_rsample, gamma_rsample, log_dirichlet_rsample,
                    log_gamma_rsample, student_t_rsample)
from ._vonmises import vonmises_cdf, vonmises_grad, vonmises_rsample
from ._vmf import vmf_rsample
from ._implicit import implicit_rsample
from . import _vmap  # noqa: F401  (batching rules)
from . import antithetic, copulas, distributions, estimators, rsvi

__version__ = "0.1.0"

# Only the API in the namespace: torch and the private helpers were bound by the imports above.
del torch

__all__ = [
    "gammainc", "gammaincc", "gammaincinv", "standard_gamma_grad", "log_standard_gamma_grad",
    "betainc", "betaincc", "betaincinv", "standard_beta_grad",
    "gamma_rsample", "log_gamma_rsample", "beta_rsample", "dirichlet_rsample", "log_dirichlet_rsample", "chi2_rsample",
    "student_t_rsample", "vonmises_cdf", "vonmises_grad", "vonmises_rsample", "vmf_rsample", "implicit_rsample", "distributions", "antithetic",
    "copulas", "estimators", "rsvi",
]
