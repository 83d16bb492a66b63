"""tools/gpu_check.sh on a machine without a CUDA device: it checks and reports the environment, then
stops before the build with its documented message and exit status 3 (docs/gpu.md), so that the
prepared device check keeps working between the runs that have a device."""
import os
import subprocess

import pytest
import torch

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools", "gpu_check.sh")


@pytest.mark.skipif(torch.cuda.is_available(), reason="with a device the script builds and runs everything")
@pytest.mark.skipif(not os.path.exists(SCRIPT), reason="tools/gpu_check.sh is not in this copy (installed package)")
def test_gpu_check_stops_cleanly_without_a_device(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "OUT"}
    run = subprocess.run(["bash", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=300, env=env)
    out = run.stdout
    assert run.returncode == 3, (run.returncode, out[-2000:], run.stderr[-2000:])
    assert "no CUDA device: stopping before the build/tests" in out
    for line in ("python: ", "torch: ", "nvcc: ", "package pytest: "):
        assert line in out, f"the environment report lacks {line!r}:\n{out}"
    last = out.strip().splitlines()[-1]
    assert last.startswith("gpu_check: NOT RUN") and str(tmp_path) in last, last
    assert (tmp_path / "summary.txt").read_text().strip().splitlines()[-1] == last
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.txt"], "nothing but the summary without a device"
