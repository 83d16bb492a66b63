"""Autodiff modes gradkern does not support yet raise a clear error instead of returning wrong numbers.

Forward mode (torch.func.jvp / jacfwd, torch.autograd.forward_ad) used to give zero tangents through every
gradkern op without an error: the worst kind of defect. Until forward-mode formulas exist, the public
functions and distributions refuse it; reverse mode and vmap keep working.
"""
import pytest
import torch
import torch.autograd.forward_ad as fwAD
from torch.func import jacfwd, jvp, vmap

import gradkern

D = gradkern.distributions
CALLS = {
    "gammainc": lambda x: gradkern.gammainc(torch.tensor(2.0), x),
    "gammaincinv": lambda x: gradkern.gammaincinv(x, torch.tensor(0.3)),
    "gamma_rsample": lambda x: gradkern.gamma_rsample(x, generator=torch.Generator().manual_seed(0)),
    "beta_rsample": lambda x: gradkern.beta_rsample(x, x),
    "vonmises_cdf": lambda x: gradkern.vonmises_cdf(torch.tensor(0.3), torch.tensor(0.0), x),
    "vonmises_rsample": lambda x: gradkern.vonmises_rsample(torch.tensor(0.0), x),
    "Dirichlet.rsample": lambda x: D.Dirichlet(torch.stack([x, x + 1])).rsample(),
    "StudentT.rsample": lambda x: D.StudentT(x).rsample(),
    "MixtureOfDiagNormals.rsample": lambda x: D.MixtureOfDiagNormals(
        torch.zeros(2, 3), x.expand(2, 3), torch.zeros(2)).rsample(),
    "antithetic.normal_rsample": lambda x: gradkern.antithetic.normal_rsample(torch.tensor(0.0), x, 2),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_jvp_raises(name):
    x = torch.tensor(1.5)
    with pytest.raises(NotImplementedError, match="forward-mode differentiation"):
        jvp(CALLS[name], (x,), (torch.ones(()),))


@pytest.mark.parametrize("name", ["gammainc", "gamma_rsample", "vonmises_rsample"])
def test_jacfwd_and_forward_ad_raise(name):
    x = torch.tensor([1.5, 2.5])
    with pytest.raises(NotImplementedError, match="forward-mode"):
        jacfwd(CALLS[name])(x)
    with fwAD.dual_level():
        dual = fwAD.make_dual(x, torch.ones(2))
        with pytest.raises(NotImplementedError, match="forward-mode"):
            CALLS[name](dual)
        CALLS[name](x)  # no tangent attached: nothing to refuse


def test_reverse_mode_and_vmap_still_work():
    x = torch.tensor([1.5, 2.5], requires_grad=True)
    (g,) = torch.autograd.grad(gradkern.gammainc(torch.tensor(2.0), x).sum(), x)
    torch.testing.assert_close(g, torch.exp(-x.detach()) * x.detach())  # Gamma(2, 1) density
    out = vmap(lambda t: gradkern.gammainc(torch.tensor(2.0), t))(torch.tensor([0.5, 1.0]))
    torch.testing.assert_close(out, torch.special.gammainc(torch.tensor(2.0), torch.tensor([0.5, 1.0])))
