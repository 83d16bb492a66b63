"""Throughput of every gradkern op and sampler against its nearest peer, in the same run.

    python bench/speed.py                     # CPU, 1 thread and all threads (+ CUDA when present)
    python bench/speed.py --n 1000000 --dtype float32,float64 --json speed.json
    python bench/speed.py --dtype float32,float64 --docs   # also rewrite its section of docs/performance.md

Pairs (gradkern vs peer): standard_gamma_grad vs torch._standard_gamma_grad; gammainc vs
torch.special.gammainc and scipy.special.gammainc; gamma/beta/dirichlet/student-t rsample vs
torch.distributions (forward, and forward+backward of the sum); vonmises_rsample vs
torch.distributions.VonMises.sample(); vonmises_grad vs vonmises_cdf and scipy.stats.vonmises.cdf.
The ratio column is peer time / gradkern time (> 1: gradkern is faster). Correctness is checked before
anything is timed; a failing check stops the script. Parameters: the paper's grid (Gamma alpha in
{1e-2..1e3}, von Mises kappa in {1e-2..10}) tiled to n elements.

CUDA (--device cuda or both): --cuda-n elements per launch (default 2**25), CUDA-event timing after
warm-up calls, the same pairs on the device plus JAX's random_gamma_grad on the GPU (when JAX's default
backend is one), and per row the throughput in elements per second and the fraction of the
memory-bandwidth limit: the op's compulsory traffic (each input read once, each output written once;
bytes/elem column) at that throughput, over the device-to-device copy bandwidth measured in the same run.
"""
from __future__ import annotations

import argparse
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

ALPHAS = [1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0]
KAPPAS = [1e-2, 1e-1, 1.0, 10.0]


fb = C.forward_backward


def tiled(vals, n, dtype, device):
    import torch

    reps = math.ceil(n / len(vals))
    return torch.tensor(vals, dtype=dtype).repeat(reps)[:n].to(device)


# --- correctness checks (run before any timing) ---------------------------------------------------------
def check_correctness(gk, dtype, device):
    """Quick checks that the timed ops compute the right thing; returns a list of (name, ok, detail)."""
    import numpy as np
    import torch
    from scipy import special, stats

    out = []
    g = torch.Generator(device=device).manual_seed(0)
    n = 20000
    a = tiled(ALPHAS, n, dtype, device)
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    # gammainc vs scipy
    x = torch.distributions.Gamma(a.double().cpu(), 1.0).sample().to(device=device, dtype=dtype)
    P = gk.gammainc(a, x).double().cpu().numpy()
    Ps = special.gammainc(a.double().cpu().numpy(), x.double().cpu().numpy())
    err = float(np.max(np.abs(P - Ps)))
    out.append(("gammainc vs scipy.special.gammainc (max abs diff)", err < tol * 10, f"{err:.1e}"))
    # standard_gamma_grad: Appendix A, mean of dz/dalpha = 1
    for alpha in (0.5, 5.0):
        al = torch.full((n * 5,), alpha, dtype=dtype, device=device, requires_grad=True)
        z = gk.gamma_rsample(al, generator=g)
        z.sum().backward()
        gr = al.grad.double()
        m, se = float(gr.mean()), float(gr.std() / math.sqrt(gr.numel()))
        out.append((f"gamma_rsample: mean dz/dalpha = 1 at alpha={alpha}", abs(m - 1) < 5 * se, f"{m:.4f} ± {se:.4f}"))
    # von Mises: KS of the sampler, appendix-A check of the gradient
    for kappa in (0.5, 10.0):
        k = torch.full((n,), kappa, dtype=dtype, device=device, requires_grad=True)
        z = gk.vonmises_rsample(torch.zeros((), dtype=dtype, device=device), k, generator=g)
        zs = z.detach().double().cpu().numpy()
        p = float(stats.kstest(zs, lambda v: stats.vonmises.cdf(v, kappa)).pvalue)
        out.append((f"vonmises_rsample KS p-value at kappa={kappa}", p > 1e-3, f"p={p:.3f}"))
        f = torch.cos(z)
        f.sum().backward()
        gr = k.grad.double()
        i0, i1 = special.i0e(kappa), special.i1e(kappa)
        truth = 1 - i1 / (kappa * i0) - (i1 / i0) ** 2
        m, se = float(gr.mean()), float(gr.std() / math.sqrt(gr.numel()))
        out.append((f"vonmises_rsample: mean d cos z/dkappa at kappa={kappa}", abs(m - truth) < 5 * se + 1e-6,
                    f"{m:.4f} vs {truth:.4f} ± {se:.4f}"))
    # vonmises_cdf vs scipy
    k = tiled(KAPPAS, n, dtype, device)
    xv = (torch.rand(n, generator=g, device=device, dtype=dtype) * 2 - 1) * math.pi
    F = gk.vonmises_cdf(xv, 0.0, k).double().cpu().numpy()
    Fs = stats.vonmises.cdf(xv.double().cpu().numpy(), k.double().cpu().numpy())
    err = float(np.max(np.abs(F - Fs)))
    out.append(("vonmises_cdf vs scipy.stats.vonmises.cdf (max abs diff)", err < max(tol * 10, 1e-7), f"{err:.1e}"))
    # Beta / Dirichlet / Student-t means
    for name, fn, mean in [
        ("beta_rsample mean (2, 3)", lambda: gk.beta_rsample(torch.tensor(2.0, dtype=dtype, device=device),
                                                             torch.tensor(3.0, dtype=dtype, device=device),
                                                             (n * 5,), generator=g), 0.4),
        ("dirichlet_rsample mean of first component (1, 2, 3)",
         lambda: gk.dirichlet_rsample(torch.tensor([1.0, 2.0, 3.0], dtype=dtype, device=device), (n * 5,),
                                      generator=g)[..., 0], 1 / 6),
        ("student_t_rsample mean (df=5, loc=1)", lambda: gk.student_t_rsample(
            torch.tensor(5.0, dtype=dtype, device=device), 1.0, 1.0, (n * 5,), generator=g), 1.0),
    ]:
        s = fn().double()
        m, se = float(s.mean()), float(s.std() / math.sqrt(s.numel()))
        out.append((name, abs(m - mean) < 5 * se, f"{m:.4f} vs {mean:.4f} ± {se:.4f}"))
    return out


# --- benchmark cases ----------------------------------------------------------------------------------
def cases(gk, n, dtype, device):
    """Yield (op, peer name, gradkern fn, peer fn) with inputs prepared."""
    import numpy as np
    import torch
    import torch.distributions as D

    a = tiled(ALPHAS, n, dtype, device)
    k = tiled(KAPPAS, n, dtype, device)
    x = D.Gamma(a.double().cpu(), 1.0).sample().to(device=device, dtype=dtype)
    xv = torch.from_numpy(np.random.default_rng(0).vonmises(0.0, np.resize(np.array(KAPPAS), n))).to(
        device=device, dtype=dtype)
    g = torch.Generator(device=device).manual_seed(1)
    ops = torch.ops.gradkern

    yield ("standard_gamma_grad", "torch._standard_gamma_grad", lambda: ops.standard_gamma_grad(a, x),
           lambda: torch._standard_gamma_grad(a, x))
    yield ("gammainc", "torch.special.gammainc", lambda: ops.gammainc(a, x), lambda: torch.special.gammainc(a, x))
    if device == "cpu":
        from scipy import special

        an, xn = a.numpy(), x.numpy()
        yield ("gammainc", "scipy.special.gammainc", lambda: ops.gammainc(a, x), lambda: special.gammainc(an, xn))

    # samplers, forward only
    yield ("gamma_rsample", "Gamma.rsample", lambda: gk.gamma_rsample(a, generator=g),
           lambda: D.Gamma(a, 1.0).rsample())
    b = a.flip(0)
    yield ("beta_rsample", "Beta.rsample", lambda: gk.beta_rsample(a, b, generator=g), lambda: D.Beta(a, b).rsample())
    cd = a.reshape(-1, 10) if n % 10 == 0 else a[: n - n % 10].reshape(-1, 10)
    yield ("dirichlet_rsample (rows of 10)", "Dirichlet.rsample", lambda: gk.dirichlet_rsample(cd, generator=g),
           lambda: D.Dirichlet(cd).rsample())
    yield ("student_t_rsample", "StudentT.rsample", lambda: gk.student_t_rsample(a, generator=g),
           lambda: D.StudentT(a).rsample())

    # samplers, forward + backward

    yield ("gamma_rsample fwd+bwd", "Gamma.rsample fwd+bwd", fb(lambda p: gk.gamma_rsample(p, generator=g), a),
           fb(lambda p: D.Gamma(p, 1.0).rsample(), a))
    yield ("beta_rsample fwd+bwd", "Beta.rsample fwd+bwd", fb(lambda p, q: gk.beta_rsample(p, q, generator=g), a, b),
           fb(lambda p, q: D.Beta(p, q).rsample(), a, b))
    yield ("dirichlet_rsample fwd+bwd", "Dirichlet.rsample fwd+bwd",
           fb(lambda p: gk.dirichlet_rsample(p, generator=g), cd), fb(lambda p: D.Dirichlet(p).rsample(), cd))
    yield ("student_t_rsample fwd+bwd", "StudentT.rsample fwd+bwd",
           fb(lambda p: gk.student_t_rsample(p, generator=g), a), fb(lambda p: D.StudentT(p).rsample(), a))

    # von Mises
    zero = torch.zeros((), dtype=dtype, device=device)
    yield ("vonmises_rsample", "VonMises.sample", lambda: gk.vonmises_rsample(zero, k, generator=g),
           lambda: D.VonMises(zero, k).sample())
    yield ("vonmises_rsample fwd+bwd", None, fb(lambda p: gk.vonmises_rsample(zero, p, generator=g), k), None)
    yield ("vonmises_grad", "gradkern vonmises_cdf", lambda: ops.vonmises_grad(k, xv), lambda: ops.vonmises_cdf(xv, k))
    if device == "cpu":
        from scipy import stats

        kn, xn = k.double().numpy(), xv.double().numpy()
        yield ("vonmises_grad", "scipy.stats.vonmises.cdf (float64)", lambda: ops.vonmises_grad(k, xv),
               lambda: stats.vonmises.cdf(xn, kn))


# --- CUDA ---------------------------------------------------------------------------------------------------
def cuda_cases(gk, n, dtype):
    """Yield (op, peer name, gradkern fn, peer fn, compulsory bytes per element) on the device, inputs
    made there: the same pairs as cases() (SciPy has no GPU) and JAX's random_gamma_grad on the GPU."""
    import torch
    import torch.distributions as D

    dev = "cuda"
    item = torch.empty((), dtype=dtype).element_size()
    a = tiled(ALPHAS, n, dtype, dev)
    k = tiled(KAPPAS, n, dtype, dev)
    torch.manual_seed(0)
    x = torch._standard_gamma(a)  # Gamma(a, 1) points, drawn on the device
    xv = torch.ops.gradkern.vonmises_sample(k)  # vonMises(0, k) points
    g = torch.Generator(device=dev).manual_seed(1)
    ops = torch.ops.gradkern

    yield ("standard_gamma_grad", "torch._standard_gamma_grad", lambda: ops.standard_gamma_grad(a, x),
           lambda: torch._standard_gamma_grad(a, x), 3 * item)
    jax = C.jax_on_gpu()
    if jax is not None:
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        ja, jx = jnp.asarray(a.cpu().numpy()), jnp.asarray(x.cpu().numpy())
        f = jax.jit(jax.lax.random_gamma_grad)
        yield ("standard_gamma_grad", f"JAX random_gamma_grad (jax {jax.__version__}, GPU)",
               lambda: ops.standard_gamma_grad(a, x), ("jax", lambda: f(ja, jx)), 3 * item)
    yield ("gammainc", "torch.special.gammainc", lambda: ops.gammainc(a, x), lambda: torch.special.gammainc(a, x),
           3 * item)

    yield ("gamma_rsample", "Gamma.rsample", lambda: gk.gamma_rsample(a, generator=g),
           lambda: D.Gamma(a, 1.0).rsample(), 2 * item)
    b = a.flip(0)
    yield ("beta_rsample", "Beta.rsample", lambda: gk.beta_rsample(a, b, generator=g), lambda: D.Beta(a, b).rsample(),
           3 * item)
    cd = a[: n - n % 10].reshape(-1, 10)
    yield ("dirichlet_rsample (rows of 10)", "Dirichlet.rsample", lambda: gk.dirichlet_rsample(cd, generator=g),
           lambda: D.Dirichlet(cd).rsample(), 2 * item)
    yield ("student_t_rsample", "StudentT.rsample", lambda: gk.student_t_rsample(a, generator=g),
           lambda: D.StudentT(a).rsample(), 2 * item)


    # forward + backward: the parameters read, the sample and one gradient per parameter written
    yield ("gamma_rsample fwd+bwd", "Gamma.rsample fwd+bwd", fb(lambda p: gk.gamma_rsample(p, generator=g), a),
           fb(lambda p: D.Gamma(p, 1.0).rsample(), a), 3 * item)
    yield ("beta_rsample fwd+bwd", "Beta.rsample fwd+bwd", fb(lambda p, q: gk.beta_rsample(p, q, generator=g), a, b),
           fb(lambda p, q: D.Beta(p, q).rsample(), a, b), 5 * item)
    yield ("dirichlet_rsample fwd+bwd", "Dirichlet.rsample fwd+bwd",
           fb(lambda p: gk.dirichlet_rsample(p, generator=g), cd), fb(lambda p: D.Dirichlet(p).rsample(), cd), 3 * item)
    yield ("student_t_rsample fwd+bwd", "StudentT.rsample fwd+bwd",
           fb(lambda p: gk.student_t_rsample(p, generator=g), a), fb(lambda p: D.StudentT(p).rsample(), a), 3 * item)

    zero = torch.zeros((), dtype=dtype, device=dev)
    yield ("vonmises_rsample", "VonMises.sample", lambda: gk.vonmises_rsample(zero, k, generator=g),
           lambda: D.VonMises(zero, k).sample(), 2 * item)
    yield ("vonmises_rsample fwd+bwd", None, fb(lambda p: gk.vonmises_rsample(zero, p, generator=g), k), None,
           3 * item)
    yield ("vonmises_grad", "gradkern vonmises_cdf", lambda: ops.vonmises_grad(k, xv), lambda: ops.vonmises_cdf(xv, k),
           3 * item)


def _cuda_time(fn, n, repeats):
    if isinstance(fn, tuple):  # ("jax", fn): JAX's own stream, waited for with block_until_ready
        return C.wall_time_blocked(fn[1], n, lambda r: r.block_until_ready(), repeats=repeats)
    return C.cuda_event_time(fn, n, repeats=repeats)


def cuda_tables(gk, n, dtypes, repeats, results):
    """Markdown lines of the CUDA tables; fills results["cuda"] and appends to results["runs"]."""
    import torch

    copy_bw = C.cuda_copy_bandwidth()
    key, nominal = C.nominal_bandwidth()
    results["cuda"] = {"device": torch.cuda.get_device_name(), "elements_per_launch": n,
                       "copy_bandwidth_Bps": copy_bw, "nominal_bandwidth_Bps": nominal, "timing": "CUDA events"}
    lines = ["", f"CUDA: {n:,} elements per launch, CUDA-event time, median of {repeats} calls after 2 warm-up "
             f"calls (JAX: wall time to block_until_ready); {C.bandwidth_note(copy_bw)}. % of copy = the op's "
             "compulsory bytes (bytes/elem) at its throughput over that copy bandwidth."]
    for dt in dtypes:
        rows = []
        for op, peer, f_gk, f_peer, nbytes in cuda_cases(gk, n, dt):
            tg = _cuda_time(f_gk, n, repeats)
            tp = _cuda_time(f_peer, n, repeats) if f_peer is not None else None
            frac = lambda t: nbytes / t / copy_bw  # noqa: E731
            rows.append([op, peer or C.DASH, str(nbytes), f"{1 / tg:.2e}", f"{frac(tg):.1%}",
                         f"{1 / tp:.2e}" if tp else C.DASH, f"{frac(tp):.1%}" if tp else C.DASH,
                         f"{tp / tg:.2f}x" if tp else C.DASH])
            results["runs"].append({"device": "cuda", "threads": None, "dtype": str(dt), "op": op, "peer": peer,
                                    "gradkern_s": tg * n, "peer_s": tp * n if tp else None,
                                    "ratio": tp / tg if tp else None, "elements": n, "bytes_per_element": nbytes,
                                    "gradkern_elements_per_s": 1 / tg, "peer_elements_per_s": 1 / tp if tp else None,
                                    "gradkern_copy_fraction": frac(tg), "peer_copy_fraction": frac(tp) if tp else None})
        lines += ["", f"### cuda ({torch.cuda.get_device_name()}), {str(dt)[6:]}", "",
                  C.markdown_table(["gradkern op", "peer", "bytes/elem", "gradkern (elem/s)", "gradkern % of copy",
                                    "peer (elem/s)", "peer % of copy", "ratio"], rows,
                                   align=["l", "l", "r", "r", "r", "r", "r", "r"])]
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10 ** 6, help="elements per call (default 1e6)")
    ap.add_argument("--dtype", default="float32", help="comma-separated: float32,float64")
    ap.add_argument("--threads", default=None,
                    help="comma-separated thread counts for CPU (default: 1 and all cores)")
    ap.add_argument("--device", default=None, help="cpu, cuda or both (default: cpu, plus cuda if present)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cuda-n", type=int, default=C.CUDA_ELEMENTS,
                    help=f"elements per launch on CUDA (default {C.CUDA_ELEMENTS:,})")
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--docs", action="store_true", help="write the tables into docs/performance.md (section speed)")
    args = ap.parse_args(argv)

    import torch

    gk, note = C.import_gradkern()
    if gk is None:
        print(note, file=sys.stderr)
        return 2
    all_threads = os.cpu_count() or 1
    thread_list = [int(t) for t in args.threads.split(",")] if args.threads else sorted({1, all_threads})
    if args.device:
        devices = ["cpu", "cuda"] if args.device == "both" else [args.device]
    else:
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    dtypes = [getattr(torch, d) for d in args.dtype.split(",")]
    if "cuda" in devices and not torch.cuda.is_available():
        print("--device cuda requested but torch.cuda.is_available() is False", file=sys.stderr)
        return 2

    results = {"machine": C.machine_description("cuda" if "cuda" in devices else "cpu"), "n": args.n, "runs": []}
    lines = [f"Machine: {results['machine']}; {args.n:g} elements per call, median of {args.repeats} repeats "
             "after warm-up. Ratio = peer time / gradkern time (> 1 means gradkern is faster)."]

    # correctness first
    for device in devices:
        for dt in dtypes:
            checks = check_correctness(gk, dt, device)
            failed = [c for c in checks if not c[1]]
            results.setdefault("checks", []).extend(
                [{"device": device, "dtype": str(dt), "check": c, "pass": ok, "detail": d} for c, ok, d in checks])
            for c, ok, d in checks:
                print(f"[check {device} {str(dt)[6:]}] {'ok  ' if ok else 'FAIL'} {c}: {d}", file=sys.stderr)
            if failed:
                print("correctness check failed; not timing", file=sys.stderr)
                if args.json:
                    C.write_json(args.json, results)
                return 1

    configs = [("cpu", t) for t in thread_list if "cpu" in devices]
    for device, threads in configs:
        if threads is not None:
            torch.set_num_threads(threads)
        for dt in dtypes:
            rows = []
            label = f"{device}, {threads} thread(s)" if device == "cpu" else f"{device} ({torch.cuda.get_device_name()})"
            for op, peer, f_gk, f_peer in cases(gk, args.n, dt, device):
                tg = C.time_per_element(f_gk, args.n, repeats=args.repeats, device=device, min_total_elements=0)
                tp = None
                if f_peer is not None:
                    slow = peer.startswith("VonMises")  # torch's Python rejection loop
                    tp = C.time_per_element(f_peer, args.n, repeats=3 if slow else args.repeats, device=device,
                                            min_total_elements=0)
                ratio = f"{tp / tg:.2f}x" if tp else C.DASH
                rows.append([op, peer or C.DASH, C.sci(tg * args.n, 2), C.sci(tp * args.n, 2) if tp else C.DASH, ratio])
                results["runs"].append({"device": device, "threads": threads, "dtype": str(dt), "op": op, "peer": peer,
                                        "gradkern_s": tg * args.n, "peer_s": tp * args.n if tp else None,
                                        "ratio": tp / tg if tp else None})
            lines.append("")
            lines.append(f"### {label}, {str(dt)[6:]}")
            lines.append("")
            lines.append(C.markdown_table(["gradkern op", "peer", "gradkern (s/call)", "peer (s/call)", "ratio"], rows,
                                           align=["l", "l", "r", "r", "r"]))
    if "cuda" in devices:
        lines += cuda_tables(gk, args.cuda_n, dtypes, args.repeats, results)
    print("\n".join(lines))
    if args.json:
        C.write_json(args.json, results)
    if args.docs:
        given = sys.argv[1:] if argv is None else argv
        cmd = " ".join(["python bench/speed.py"] + [a for a in given if a != "--docs"])
        print("wrote", C.write_doc_section("performance.md", "speed", "\n".join(lines), command=cmd,
                                           device="cuda" if "cuda" in devices else "cpu"), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
