"""Shared fixtures: devices to test on (CUDA skipped cleanly without a GPU) and RNG hygiene."""
import pytest
import torch

import gradkern  # noqa: F401  (loads the extension once for the whole session)

CUDA = torch.cuda.is_available()
DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.cuda,
                                                pytest.mark.skipif(not CUDA, reason="needs a CUDA device")])]
FLOAT_DTYPES = [torch.float32, torch.float64]


def pytest_collection_modifyitems(config, items):
    # Every test that runs on CUDA carries the `cuda` marker, so that `pytest -m cuda` (tools/gpu_check.sh)
    # selects them all: the DEVICES parameter above, the test files' own "cuda" parameters, and tests
    # named for CUDA (test_cuda.py marks its own).
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = callspec.params.values() if callspec is not None else ()
        if "cuda" in item.name.lower() or any(isinstance(v, str) and v.startswith("cuda") for v in params):
            item.add_marker(pytest.mark.cuda)


@pytest.fixture(autouse=True)
def _restore_rng_state():
    # Tests seed the global generators; keep them from leaking state into each other.
    cpu_state = torch.random.get_rng_state()
    cuda_state = torch.cuda.get_rng_state_all() if CUDA else None
    yield
    torch.random.set_rng_state(cpu_state)
    if CUDA:
        torch.cuda.set_rng_state_all(cuda_state)


def mc_check(samples, expected, n_se=4.0, what="mean", max_se=None):
    """Assert the Monte Carlo mean of `samples` (1-D, i.i.d.) is within n_se standard errors of
    `expected`. The tolerance comes from the data, so a biased estimator fails. With `max_se`, also assert
    that the standard error is at most that (the check has power: its error bar is small against the
    value)."""
    samples = samples.double().flatten()
    n = samples.numel()
    mean = samples.mean().item()
    se = samples.std().item() / n ** 0.5
    if max_se is not None:
        assert se < max_se, f"{what}: standard error {se:.3g} is not below {max_se:.3g} (n={n}): no power"
    assert abs(mean - expected) <= n_se * se, (
        f"{what}: Monte Carlo mean {mean:.6g} vs exact {expected:.6g} differs by "
        f"{abs(mean - expected) / se:.2f} standard errors (se={se:.3g}, n={n})")
