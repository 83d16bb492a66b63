"""Peak memory of every sampler, as a multiple of its output's size, gradkern against torch.distributions.

Each measurement runs in a fresh process (so no allocator cache from an earlier case): the parameters
are made, a small warm-up call runs, the peak-RSS counter is reset (/proc/self/clear_refs), then one call
draws `--elements` samples under torch.no_grad(); peak = VmHWM - the RSS before the call. An output of
n float32 values is 4n bytes. Also checks that an impossible request (1e10 elements) raises at once
(time to the error and the RSS it touched).

    python bench/memory.py [--elements 4000000] [--docs]
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

CASES = {
    # name: (gradkern call, torch call); `a` and `b` are concentration tensors of shape (n,)
    "Gamma": ("gradkern.gamma_rsample(a)", "td.Gamma(a, 1.0).rsample()"),
    "log-Gamma": ("gradkern.log_gamma_rsample(a)", None),
    "Beta": ("gradkern.beta_rsample(a, b)", "td.Beta(a, b).rsample()"),
    "Dirichlet (rows of 10)": ("gradkern.dirichlet_rsample(a.view(-1, 10))", "td.Dirichlet(a.view(-1, 10)).rsample()"),
    "Chi2": ("gradkern.chi2_rsample(a)", "td.Chi2(a).rsample()"),
    "StudentT": ("gradkern.student_t_rsample(a)", "td.StudentT(a).rsample()"),
    "VonMises": ("gradkern.vonmises_rsample(0.0, a)", "td.VonMises(torch.zeros(()), a).sample()"),
}

CHILD = r'''
import os, sys, time, json
sys.path.insert(0, {bench!r})
import _common as C
gradkern, _ = C.import_gradkern()
import torch, torch.distributions as td
torch.set_num_threads(1)
n = {n}
def rss(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
g = torch.Generator().manual_seed(0)
a = torch.rand(n, generator=g) * 4 + 0.1
b = torch.rand(n, generator=g) * 4 + 0.1
with torch.no_grad():
    small_a, small_b = a[:1000].clone(), b[:1000].clone()
    aa, bb = a, b
    a, b = small_a, small_b
    eval({expr!r})
    a, b = aa, bb
    base = rss("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    out = eval({expr!r})
    peak = rss("VmHWM")
print(json.dumps({{"peak": peak - base, "out": out.numel() * out.element_size()}}))
'''

IMPOSSIBLE = r'''
import sys, time, json
sys.path.insert(0, {bench!r})
import _common as C
gradkern, _ = C.import_gradkern()
import torch
def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) * 1024
a = torch.ones(1)
base = rss()
t0 = time.time()
try:
    {expr}
    ok = False
except (RuntimeError, MemoryError) as e:
    ok = True
print(json.dumps({{"raised": ok, "seconds": time.time() - t0, "rss": rss() - base}}))
'''


def run_child(code):
    # A fixed mmap threshold: every large block is mapped on allocation and unmapped on free, so RSS
    # follows the live tensors (glibc's dynamic threshold would serve them from a heap that keeps freed
    # pages resident, hiding part of the peak).
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=env)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--elements", type=int, default=4_000_000)
    ap.add_argument("--docs", action="store_true", help="write the table into docs/performance.md")
    ap.add_argument("--json", help="write every number to this file")
    args = ap.parse_args()
    from tqdm import tqdm

    bench = C.HERE
    rows, res = [], {}
    for name, (gk, peer) in tqdm(CASES.items(), desc="peak memory"):
        g = run_child(CHILD.format(bench=bench, n=args.elements, expr=gk))
        p = run_child(CHILD.format(bench=bench, n=args.elements, expr=peer)) if peer else None
        res[name] = {"gradkern": g, "torch": p}
        fmt = lambda r: (f"{r['peak'] / r['out']:.1f}x" if r and "peak" in r else ("–" if r is None else r["error"]))  # noqa: E731
        rows.append([name, fmt(g), fmt(p)])
    imp = run_child(IMPOSSIBLE.format(bench=bench, expr="gradkern.gamma_rsample(a, sample_shape=(10_000_000_000,))"))
    res["impossible"] = imp
    table = C.markdown_table(["sampler (float32, 1 thread)", "gradkern peak / output", "torch peak / output"], rows)
    text = (f"{table}\n\nPeak = growth of the process's peak RSS (glibc mmap threshold fixed at 128 KiB) during one call of {args.elements:.0e} samples under "
            f"torch.no_grad(), in a fresh process per cell. Impossible request (`gamma_rsample` of 1e10 float32 "
            f"elements): raised {imp.get('raised')}, after {imp.get('seconds', float('nan')):.3f} s, touching "
            f"{imp.get('rss', 0) / 2**20:.0f} MiB.")
    print(text)
    if args.json:
        C.write_json(args.json, res)
    if args.docs:
        C.write_doc_section("performance.md", "memory", "### Peak memory of the samplers (`bench/memory.py`)\n\n" + text,
                            command="python bench/memory.py --docs")


if __name__ == "__main__":
    main()
