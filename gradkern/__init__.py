"""gradkern: exact, low-variance gradients through random variables for PyTorch.

Importing the package loads the native extension (gradkern._C), which registers the ``torch.ops.gradkern``
operators, then registers their fake kernels and autograd formulas.
"""
import torch

try:
    from . import _C  # noqa: F401
except ImportError as e:  # pragma: no cover
    raise ImportError(
        "gradkern's native extension (gradkern._C) is not built. Install with "
        "`pip install --no-build-isolation .`, or for development "
        "`python setup.py build_ext --inplace`. Original error: " + str(e)) from e

from .special import gammainc, gammaincc, gammaincinv, log_standard_gamma_grad, standard_gamma_grad
from .gamma import (beta_rsample, chi2_rsample, dirichlet_rsample, gamma_rsample, log_gamma_rsample,
                    student_t_rsample)
from .vonmises import vonmises_cdf, vonmises_grad, vonmises_rsample
from . import antithetic, copulas, distributions, estimators

__version__ = "0.1.0"

__all__ = [
    "gammainc", "gammaincc", "gammaincinv", "standard_gamma_grad", "log_standard_gamma_grad",
    "gamma_rsample", "log_gamma_rsample", "beta_rsample", "dirichlet_rsample", "chi2_rsample",
    "student_t_rsample", "vonmises_cdf", "vonmises_grad", "vonmises_rsample", "distributions", "antithetic",
    "copulas", "estimators",
]
