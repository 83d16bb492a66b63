"""Per-call cost of gradkern's public functions and distributions against torch's, from 10 to 1e6 elements.

    python bench/overhead.py                       # float32 and float64, 1 thread
    python bench/overhead.py --sizes 10,640 --docs # also rewrite its section of docs/performance.md
    python bench/overhead.py --profile --sizes 10 --dtype float64  # where each call's time goes

Each row times one call (microseconds, median of --rounds rounds of a fixed number of calls, the pair
interleaved in the same process, one thread): gradkern's call and the torch call it replaces. The ratio
is gradkern / torch (< 1: gradkern is cheaper). Issue 21's goals: op rows within 1.5x of torch at 10
elements, distribution rows (rsample + backward) within 1.3x; issue 16's: TruncatedNormal rsample + backward within
3x of a plain Normal's. The crossover column gives the smallest
measured size from which the ratio stays <= 1. Parameters: Gamma concentrations in [0.5, 5], von Mises
concentrations in [0.5, 5], arguments in the bulk of each distribution (Beta(a, b) with a, b those two sets of concentrations).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402


def _timer(fn, calls):
    def run():
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        return (time.perf_counter() - t) / calls * 1e6
    return run


def _calls_for(fn, budget=0.02):
    t = time.perf_counter()
    fn()
    dt = max(time.perf_counter() - t, 1e-7)
    return max(1, min(2000, int(budget / dt)))


def _torch_beta_grad(torch, x, a, b):
    """(dx/da, dx/db) for x ~ Beta(a, b) from torch's kernel, as torch's Beta backward forms them."""
    s = a + b
    return torch._dirichlet_grad(x, a, s) * (1 - x), -x * torch._dirichlet_grad(1 - x, b, s)


def pairs(torch, gk, n, dtype):
    """(row name, kind, gradkern call, torch call); kind "op" or "dist" (its goal)."""
    g = torch.Generator().manual_seed(0)
    alpha = torch.rand(n, generator=g, dtype=dtype) * 4.5 + 0.5
    x = torch._standard_gamma(alpha)
    kappa = torch.rand(n, generator=g, dtype=dtype) * 4.5 + 0.5
    xb = torch.distributions.Beta(alpha, kappa).sample()
    ops = torch.ops.gradkern
    D, TD = gk.distributions, torch.distributions

    def fb(make):
        return C.forward_backward(make, alpha)

    rows = [
        ("torch.ops.gradkern.standard_gamma_grad / torch._standard_gamma_grad", "op",
         lambda: ops.standard_gamma_grad(alpha, x), lambda: torch._standard_gamma_grad(alpha, x)),
        # The same route for both: torch's op called through torch.ops pays the same Python OpOverloadPacket
        # frame and schema-driven parsing (about 0.8 us at 10 elements) as gradkern's.
        ("torch.ops.gradkern.standard_gamma_grad / torch.ops.aten._standard_gamma_grad", "op",
         lambda: ops.standard_gamma_grad(alpha, x), lambda: torch.ops.aten._standard_gamma_grad(alpha, x)),
        ("gradkern.standard_gamma_grad / torch._standard_gamma_grad", "op",
         lambda: gk.standard_gamma_grad(alpha, x), lambda: torch._standard_gamma_grad(alpha, x)),
        ("gradkern.gammainc / torch.special.gammainc", "op",
         lambda: gk.gammainc(alpha, x), lambda: torch.special.gammainc(alpha, x)),
        ("gradkern.gammaincc / torch.special.gammaincc", "op",
         lambda: gk.gammaincc(alpha, x), lambda: torch.special.gammaincc(alpha, x)),
        ("gradkern.gamma_rsample / torch._standard_gamma (forward)", "op",
         lambda: gk.gamma_rsample(alpha), lambda: torch._standard_gamma(alpha)),
        ("gradkern.gamma_rsample / torch._standard_gamma (forward + backward)", "op",
         fb(gk.gamma_rsample), fb(torch._standard_gamma)),
        ("gradkern.standard_beta_grad / torch: 2 x torch._dirichlet_grad + formulas", "op",
         lambda: gk.standard_beta_grad(alpha, kappa, xb), lambda: _torch_beta_grad(torch, xb, alpha, kappa)),
        ("gradkern.dirichlet_rsample / torch._sample_dirichlet (forward)", "op",
         lambda: gk.dirichlet_rsample(alpha.view(-1, 2)), lambda: torch._sample_dirichlet(alpha.view(-1, 2))),
        ("gradkern.vonmises_rsample / torch VonMises.sample (forward)", "op",
         lambda: gk.vonmises_rsample(torch.zeros((), dtype=dtype), kappa),
         lambda: TD.VonMises(torch.zeros((), dtype=dtype), kappa).sample()),
    ]
    for name, ours, theirs in (
            ("Gamma(a, 1.)", lambda a: D.Gamma(a, 1.0), lambda a: TD.Gamma(a, 1.0)),
            ("Beta(a, a)", lambda a: D.Beta(a, a), lambda a: TD.Beta(a, a)),
            ("Chi2(a)", lambda a: D.Chi2(a), lambda a: TD.Chi2(a)),
            ("StudentT(a)", lambda a: D.StudentT(a), lambda a: TD.StudentT(a)),
            ("Dirichlet(a.view(-1, 2))", lambda a: D.Dirichlet(a.view(-1, 2)), lambda a: TD.Dirichlet(a.view(-1, 2)))):
        rows.append((f"distributions.{name}.rsample() + backward", "dist",
                     fb(lambda a, ours=ours: ours(a).rsample()), fb(lambda a, theirs=theirs: theirs(a).rsample())))
    # Issue 16's goal for the truncated Normal: rsample + backward within 3x of a plain Normal's.
    rows.append(("distributions.TruncatedNormal(a, 1., -1., 2.) / torch Normal(a, 1.), rsample() + backward", "trunc",
                 fb(lambda a: D.TruncatedNormal(a, 1.0, -1.0, 2.0).rsample()), fb(lambda a: TD.Normal(a, 1.0).rsample())))
    return rows


def profile(torch, gk, n, dtype, calls=200, rows=8):
    """Where the time of each row's two calls goes: torch.profiler over `calls` calls of each, the operators
    with the most self CPU time (dispatcher entries, kernels, autograd nodes); what the table lacks against the
    call's wall time is Python (wrappers, argument checks, Function.apply)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as run_profiler

    for name, _, ours, theirs in pairs(torch, gk, n, dtype):
        for side, fn in (("gradkern", ours), ("torch", theirs)):
            fn()
            with run_profiler(activities=[ProfilerActivity.CPU]) as prof:
                for _ in range(calls):
                    fn()
            print(f"== {name}: {side}, {n} elements, {dtype}, {calls} calls (us per call = total / {calls})")
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10,640,10000,1000000")
    ap.add_argument("--dtype", default="float32,float64")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--json", default=os.path.join(C.REPO, "bench", "out", "overhead.json"))
    ap.add_argument("--docs", action="store_true", help="rewrite the overhead section of docs/performance.md")
    ap.add_argument("--profile", action="store_true",
                    help="instead of timing: where each call's time goes (torch.profiler, first size and dtype)")
    args = ap.parse_args(argv)

    import torch
    from tqdm import tqdm

    gk, note = C.import_gradkern()
    if gk is None:
        sys.exit(note)
    torch.set_num_threads(1)
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    dtypes = [getattr(torch, d) for d in args.dtype.split(",")]
    if args.profile:
        return profile(torch, gk, sizes[0], dtypes[0])
    results = {}
    jobs = [(d, n) for d in dtypes for n in sizes]
    for dtype, n in tqdm(jobs, desc="overhead", unit="size"):
        for name, kind, ours, theirs in pairs(torch, gk, n, dtype):
            ours(), theirs()  # warm-up (and the first call's lazy initialisation)
            t_ours = _timer(ours, _calls_for(ours))
            t_theirs = _timer(theirs, _calls_for(theirs))
            a, b = [], []
            for _ in range(args.rounds):
                a.append(t_ours())
                b.append(t_theirs())
            results.setdefault((str(dtype).split(".")[1], name, kind), {})[n] = (statistics.median(a), statistics.median(b))

    md = []
    for dt in [str(d).split(".")[1] for d in dtypes]:
        headers = ["call (gradkern / torch)", "goal"] + [f"{n:g} el." for n in sizes] + ["ratio <= 1 from"]
        table = []
        for (dtn, name, kind), by_n in results.items():
            if dtn != dt:
                continue
            cells = []
            for n in sizes:
                ours, theirs = by_n[n]
                cells.append(f"{ours:.1f} / {theirs:.1f} = {ours / theirs:.2f}x")
            ok = [n for n in sizes if by_n[n][0] / by_n[n][1] <= 1.0]
            cross = next((n for i, n in enumerate(sizes) if all(by_n[m][0] <= by_n[m][1] for m in sizes[i:])), None)
            table.append([name, {"op": "1.5x", "dist": "1.3x", "trunc": "3x"}[kind]] + cells + [f"{cross:g}" if cross else ("–" if not ok else "not monotone")])
        md.append(f"**{dt}**, microseconds per call, 1 thread:\n\n" + C.markdown_table(headers, table))
        print(md[-1] + "\n")
    C.write_json(args.json, {f"{k[0]}|{k[1]}": {str(n): v for n, v in by.items()} for k, by in results.items()})
    if args.docs:
        cmd = " ".join(["python bench/overhead.py"] + list(argv if argv is not None else sys.argv[1:]))
        C.write_doc_section("performance.md", "overhead", "\n\n".join(md), command=cmd)


if __name__ == "__main__":
    main()
