"""Accuracy and speed of implicit reparameterization gradients: the analogue of Table 2 of
Figurnov, Mohamed & Mnih (2018), for gradkern and the methods people would otherwise use, measured in
the same run on the same inputs.

    python bench/accuracy.py                      # both tables (float32, float64), markdown on stdout
    python bench/accuracy.py --extended           # + stress grid: max relative error, NaN/inf counts
    python bench/accuracy.py --json out.json      # also write the numbers
    python bench/accuracy.py --threads 2 --device cuda

Protocol (paper, appendix C): Gamma alpha in {1e-2, 1e-1, 1, 10, 100, 1000}, von Mises kappa in
{1e-2, 1e-1, 1, 10}, 1000 samples per parameter value from a fixed seed (NumPy's generator, drawn in
float64 and rounded to the dtype under test). The ground truth of dz/dparam at every rounded sample comes
from mpmath (gradkern/reference/) and is cached in bench/.cache/ keyed by grid, seed, dtype and the
reference module's source. Error = mean absolute error over all samples of the grid. Time = seconds
per element, median of repeats over >= 1e6 elements (the grid tiled), after a warm-up, single-threaded
by default.

Rows: gradkern (forward-mode differentiation of the CDF, density fused), central finite difference of
gradkern's own CDF op with the relative steps of Table 5, torch._standard_gamma_grad (Jankowiak &
Obermeyer 2018), JAX's random_gamma_grad, TensorFlow Probability's von Mises sample gradient (JAX
substrate). Rows marked "CDF only" time the CDF alone, for reference. Optional peers that are not
installed are skipped with a note (``pip install .[bench]`` brings them).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

GAMMA_ALPHAS = [1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0]
VM_KAPPAS = [1e-2, 1e-1, 1.0, 10.0]
N_PER_PARAM = 1000
SEED = 20180702
# mpmath working precision of the ground truth. On the paper's grid 20 digits agree with 30 digits to
# 3e-18 relative (measured) at 30% less CPU, which keeps the cold cache under the 5-minute budget; the
# stress grid (small, extreme arguments) and von Mises (whose reference adds digits itself) use 30.
DPS = {"paper": {"gamma": 20, "vonmises": 30}, "extended": {"gamma": 30, "gamma_log": 30, "vonmises": 30}}
ROW_LOG = "gradkern log_standard_gamma_grad (d log z/dalpha from log z)"

# Table 5 of the paper: relative finite-difference step.
FD_STEP = {"gamma": {"float32": 1e-3, "float64": 1e-5}, "vonmises": {"float32": 1e-1, "float64": 1e-4}}

# Acceptance targets of issues 2 and 3.
TARGET_MAE = {("gamma", "float32"): 5e-7, ("gamma", "float64"): 5e-15,
              ("vonmises", "float32"): 3e-8, ("vonmises", "float64"): 1e-14}
TARGET_MAXREL = {"float32": 1e-5, "float64": 1e-12}

EXT_ALPHAS = [10.0 ** k for k in range(-6, 9)]
EXT_KAPPAS = [10.0 ** k for k in range(-6, 7)]
EXT_QUANTILES = [1e-10, 1e-6, 1e-3, 0.1, 0.5, 0.9, 1 - 1e-3, 1 - 1e-6, 1 - 1e-10]

DTYPES = ("float32", "float64")
ROW_FD = "Finite difference of gradkern's CDF"
ROW_ORDER = ["gradkern (forward-mode)", "gradkern log_standard_gamma_grad", ROW_FD, "torch._standard_gamma_grad (Jankowiak-Obermeyer)",
             "JAX random_gamma_grad", "TFP von Mises gradient", "CDF only: gradkern.gammainc",
             "CDF only: gradkern.vonmises_cdf", "CDF only: torch.special.gammainc",
             "CDF only: scipy.stats.vonmises.cdf (float64)"]


def _row_rank(name):
    for i, r in enumerate(ROW_ORDER):
        if name.startswith(r):
            return i
    return len(ROW_ORDER)


# --- ground truth (pure NumPy + mpmath; runs before torch/JAX are imported, in worker processes) -------
_REF = {}


def _ref(name):
    if name not in _REF:
        mod, err = C.import_reference(name)
        if mod is None:
            raise RuntimeError(err)
        _REF[name] = mod
    return _REF[name]


def _vm_grad_fn(ref):
    for name in ("grad", "vonmises_grad", "dxdkappa", "dx_dkappa"):
        if hasattr(ref, name):
            return getattr(ref, name)
    raise RuntimeError("gradkern/reference/vonmises.py has no grad(kappa, x)")


def _nan_on_error(fn):
    """fn() as a float (the ground truth at one point), NaN where mpmath fails (the point is then left
    out)."""
    try:
        return float(fn())
    except Exception:
        return float("nan")


def _gt_gamma_item(item):
    a, x, dps = item
    if not (x > 0) or not math.isfinite(x):
        return 0.0 if x == 0 else float("nan")
    return _nan_on_error(lambda: _ref("gamma").standard_gamma_grad(a, x, dps=dps))


def _gt_gamma_log_item(item):
    a, logx, dps = item
    return _nan_on_error(lambda: _ref("gamma").log_standard_gamma_grad(a, logx, dps=dps))


def _gt_vm_item(item):
    k, x, dps = item
    return _nan_on_error(lambda: _vm_grad_fn(_ref("vonmises"))(k, x, dps=dps))


def _ref_source_hash(name):
    import hashlib

    p = os.path.join(C.REPO, "gradkern", "reference", f"{name}.py")
    with open(p, "rb") as f:
        return hashlib.sha1(f.read()).hexdigest()[:12]


def np_dtype(name):
    import numpy as np

    return {"float32": np.float32, "float64": np.float64}[name]


def paper_grid(kind, dtype, seed):
    """(params, samples) arrays of shape (n_params, N) in the given dtype."""
    import numpy as np

    rng = np.random.default_rng(seed)
    dt = np_dtype(dtype)
    if kind == "gamma":
        params = GAMMA_ALPHAS
        x = np.stack([rng.gamma(a, size=N_PER_PARAM) for a in params])
    else:
        params = VM_KAPPAS
        x = np.stack([rng.vonmises(0.0, k, size=N_PER_PARAM) for k in params])
    x = x.astype(dt)
    if kind == "vonmises":
        # float32(pi) > pi: keep rounded samples inside [-pi, pi].
        lim = np.nextafter(dt(math.pi), dt(0)) if dt(math.pi) > math.pi else dt(math.pi)
        x = np.clip(x, -lim, lim)
    p = np.repeat(np.asarray(params, dtype=dt)[:, None], N_PER_PARAM, axis=1)
    return p, x


def _vm_quantile(k, u):
    """Approximate vonMises(0, k) quantile in float64 (any point is fine: the ground truth is computed at
    the point we get). Normal approximation for large k, bisection on SciPy's CDF otherwise."""
    from scipy import special, stats

    if k >= 50:
        return float(min(max(special.ndtri(u) / math.sqrt(k), -math.pi), math.pi))
    lo, hi = -math.pi, math.pi
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if stats.vonmises.cdf(mid, k) < u:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def extended_grid(kind, dtype):
    """Stress grid (params, points) as flat arrays in the given dtype, and the number of grid points
    dropped because the quantile is not representable (underflows to 0 or is subnormal)."""
    import numpy as np
    from scipy import special

    dt = np_dtype(dtype)
    tiny = np.finfo(dt).tiny
    ps, xs = [], []
    dropped = 0
    if kind == "gamma_log":
        # every grid point in log space, including the quantiles whose x underflows: there
        # P(a, x) ~ x^a / Gamma(a + 1), so log x = (log u + lgamma(a + 1)) / a.
        for a in EXT_ALPHAS:
            for u in EXT_QUANTILES:
                x = special.gammaincinv(a, u) if u <= 0.5 else special.gammainccinv(a, 1 - u)
                if np.isfinite(x) and x >= np.finfo(np.float64).tiny:
                    lx = math.log(x)
                else:
                    lx = (math.log(u) + math.lgamma(a + 1)) / a
                ps.append(dt(a)); xs.append(dt(lx))
    elif kind == "gamma":
        for a in EXT_ALPHAS:
            for u in EXT_QUANTILES:
                x = special.gammaincinv(a, u) if u <= 0.5 else special.gammainccinv(a, 1 - u)
                x = dt(x)
                if not (np.isfinite(x) and x >= tiny):
                    dropped += 1
                    continue
                ps.append(dt(a)); xs.append(x)
    else:
        extra = [1e-6, -1e-6, math.pi - 1e-3, -(math.pi - 1e-3), math.pi - 1e-6]
        for k in EXT_KAPPAS:
            pts = [_vm_quantile(k, u) for u in EXT_QUANTILES] + extra
            for x in pts:
                x = dt(x)
                if abs(x) > math.pi:
                    x = np.nextafter(dt(math.pi), dt(0)) * np.sign(x)
                ps.append(dt(k)); xs.append(x)
    return np.asarray(ps, dtype=dt), np.asarray(xs, dtype=dt), dropped


def ground_truth(kind, params, xs, key, processes, desc):
    import numpy as np

    def compute():
        items = [(a, x, key["dps"]) for a, x in zip(params.astype(np.float64).ravel().tolist(),
                                                     xs.astype(np.float64).ravel().tolist())]
        fn = {"gamma": _gt_gamma_item, "gamma_log": _gt_gamma_log_item, "vonmises": _gt_vm_item}[kind]
        t0 = time.time()
        vals = C.parallel_map(fn, items, processes=processes, desc=desc, chunksize=4)
        print(f"  [ground truth] {desc}: {len(items)} points in {time.time() - t0:.1f} s", file=sys.stderr)
        return {"truth": np.asarray(vals, dtype=np.float64).reshape(xs.shape)}

    arrays, hit = C.cached_arrays(f"truth-{kind}", key, compute)
    return arrays["truth"]


# --- methods -------------------------------------------------------------------------------------------
class Method:
    """A gradient (or CDF-only) method: ``build(p, x)`` takes NumPy arrays and returns a zero-argument
    callable computing the result on prepared inputs; ``to_numpy`` converts that result."""

    def __init__(self, name, kind, build, to_numpy, block=None, error=True, note=None, device="cpu"):
        self.name, self.kind, self.build, self.to_numpy = name, kind, build, to_numpy
        self.block, self.error, self.note, self.device = block, error, note, device


def torch_methods(gk, dtype, device):
    import numpy as np
    import torch

    tdt = getattr(torch, dtype)
    ops = torch.ops.gradkern

    def T(a):
        return torch.from_numpy(np.ascontiguousarray(a)).to(device=device, dtype=tdt)

    def to_np(r):
        return r.detach().cpu().double().numpy()

    def inv_gamma_density(a, x):
        # 1 / q(x) for Gamma(a, 1), in log space.
        return torch.exp(torch.lgamma(a) + x - torch.special.xlogy(a - 1, x))

    def inv_vm_density(k, x):
        return torch.exp(-k * (torch.cos(x) - 1)) * (2 * math.pi) * torch.special.i0e(k)

    def central_fd(cdf, inv_density, d):
        """Table 5's finite difference: dz/dp = -(dF/dp) / q(z), dF/dp by a central difference with
        relative step d; cdf(p, z) is the CDF at parameter p."""
        def make(p, x):
            p, z = T(p), T(x)
            pp, pm, den = p * (1 + d), p * (1 - d), 2 * p * d

            def f():
                return -(cdf(pp, z) - cdf(pm, z)) / den * inv_density(p, z)
            return f
        return make

    ms = []
    if gk is not None:
        ms.append(Method("gradkern (forward-mode)", "gamma",
                         lambda p, x: (lambda a=T(p), z=T(x): ops.standard_gamma_grad(a, z)), to_np))
        ms.append(Method(ROW_FD, "gamma", central_fd(lambda a, z: ops.gammainc(a, z), inv_gamma_density,
                                                      FD_STEP["gamma"][dtype]), to_np))
    ms.append(Method("torch._standard_gamma_grad (Jankowiak-Obermeyer)", "gamma",
                     lambda p, x: (lambda a=T(p), z=T(x): torch._standard_gamma_grad(a, z)), to_np))
    if gk is not None:
        ms.append(Method("gradkern (forward-mode)", "vonmises",
                         lambda p, x: (lambda k=T(p), z=T(x): ops.vonmises_grad(k, z)), to_np))
        ms.append(Method(ROW_FD, "vonmises", central_fd(lambda k, z: ops.vonmises_cdf(z, k), inv_vm_density,
                                                         FD_STEP["vonmises"][dtype]), to_np))
    # CDF-only reference timings.
    if gk is not None:
        ms.append(Method("CDF only: gradkern.gammainc", "gamma",
                         lambda p, x: (lambda a=T(p), z=T(x): ops.gammainc(a, z)), to_np, error=False))
    ms.append(Method("CDF only: torch.special.gammainc", "gamma",
                     lambda p, x: (lambda a=T(p), z=T(x): torch.special.gammainc(a, z)), to_np, error=False))
    if gk is not None:
        ms.append(Method("CDF only: gradkern.vonmises_cdf", "vonmises",
                         lambda p, x: (lambda k=T(p), z=T(x): ops.vonmises_cdf(z, k)), to_np, error=False))
    for m in ms:
        m.device = device
    return ms


def scipy_methods():
    import numpy as np
    from scipy import stats

    return [Method("CDF only: scipy.stats.vonmises.cdf (float64)", "vonmises",
                   lambda p, x: (lambda k=p.astype(np.float64), z=x.astype(np.float64): stats.vonmises.cdf(z, k)),
                   lambda r: np.asarray(r, dtype=np.float64), error=False)]


def jax_methods(dtype, notes):
    """JAX random_gamma_grad and TFP's von Mises gradient; each skipped with a note if missing."""
    import numpy as np

    ms = []
    try:
        import jax

        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
    except Exception as e:
        notes.append(f"JAX random_gamma_grad and TFP von Mises gradient skipped: jax not importable "
                     f"({type(e).__name__}: {e}); `pip install .[bench]`")
        return ms

    def J(a):
        return jnp.asarray(np.ascontiguousarray(a))

    def to_np(r):
        return np.asarray(r, dtype=np.float64)

    def block(r):
        r.block_until_ready()

    rgg = getattr(jax.lax, "random_gamma_grad", None)
    if rgg is None:
        notes.append("JAX random_gamma_grad skipped: jax.lax.random_gamma_grad not found in jax "
                     f"{jax.__version__}")
    else:
        f = jax.jit(rgg)
        ms.append(Method(f"JAX random_gamma_grad (jax {jax.__version__})", "gamma",
                         lambda p, x: (lambda a=J(p), z=J(x): f(a, z)), to_np, block=block))
    try:
        from tensorflow_probability.substrates.jax.distributions import von_mises as tfp_vm
        import tensorflow_probability.substrates.jax as tfp
    except Exception as e:
        notes.append(f"TFP von Mises gradient skipped: tensorflow_probability.substrates.jax not importable "
                     f"({type(e).__name__}: {e}); `pip install .[bench]`")
        return ms

    def tfp_grad(k, x):
        # Exactly what TFP's von Mises sampler does in its backward pass (_von_mises_sample_bwd):
        # dcdf/dconcentration from von_mises_cdf's custom gradient, times 1/prob.
        dcdf = jax.grad(lambda kk: jnp.sum(tfp_vm.von_mises_cdf(x, kk)))(k)
        inv_prob = jnp.exp(-k * tfp_vm.cosxm1(x)) * (2.0 * np.pi) * jax.scipy.special.i0e(k)
        return -dcdf * inv_prob

    g = jax.jit(tfp_grad)
    ms.append(Method(f"TFP von Mises gradient (tfp {tfp.__version__})", "vonmises",
                     lambda p, x: (lambda k=J(p), z=J(x): g(k, z)), to_np, block=block))
    return ms


def time_method(m, p, x, device):
    """Seconds per element over >= 1e6 elements (grid tiled), median of repeats after warm-up."""
    import numpy as np

    n0 = x.size
    f1 = m.build(p.ravel(), x.ravel())
    r = f1()  # warm-up / compile at the grid's shape
    if m.block:
        m.block(r)
    t0 = time.perf_counter()
    r = f1()
    if m.block:
        m.block(r)
    C.sync(device)
    est = (time.perf_counter() - t0) / n0
    target = 10 ** 6
    if est * target < 0.4:
        # fast: whole calls of >= 1e6 elements (the grid tiled), median of 5 after a warm-up call
        tiles = math.ceil(target / n0)
        pt, xt = np.tile(p.ravel(), tiles), np.tile(x.ravel(), tiles)
        f = m.build(pt, xt)
        return C.time_per_element(f, pt.size, repeats=5, warmup=1, device=device, block=m.block)
    # slow peer (JAX): median over >= 1e6 / n0 calls on the grid itself (already warm and compiled);
    # per-call overhead is negligible at these speeds, and no second compile or large warm-up is needed.
    return C.time_per_element(f1, n0, repeats=math.ceil(target / n0), warmup=0, device=device, block=m.block)


def errors(m, p, x, truth):
    import numpy as np

    with np.errstate(all="ignore"):
        est = m.to_numpy(m.build(p.ravel(), x.ravel())()).reshape(x.shape)
        finite = np.isfinite(est)
        err = np.abs(est - truth)
        denom = np.maximum(np.abs(truth), np.finfo(np.float64).tiny)
        rel = np.where(truth == est, 0.0, err / denom)
    return est, err, rel, int(np.isnan(est).sum()), int(np.isinf(est).sum()), finite


# --- main ------------------------------------------------------------------------------------------------
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1, help="CPU threads for timing (default 1)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (gradkern and torch rows; JAX/TFP run on "
                                                    "their default backend)")
    ap.add_argument("--extended", action="store_true", help="add the stress grid")
    ap.add_argument("--json", metavar="PATH", help="write all numbers to PATH")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--processes", type=int, default=min(2, os.cpu_count() or 1),
                    help="processes for the mpmath ground truth (default: min(2, cores))")
    ap.add_argument("--no-time", action="store_true", help="errors only")
    ap.add_argument("--dtypes", default="float32,float64")
    args = ap.parse_args(argv)
    dtypes = [d for d in args.dtypes.split(",") if d]

    C.limit_threads_env(args.threads)
    import numpy as np

    t_start = time.time()
    notes = []
    have_vm_ref = os.path.exists(os.path.join(C.REPO, "gradkern", "reference", "vonmises.py"))
    if not have_vm_ref:
        notes.append("von Mises errors skipped: gradkern/reference/vonmises.py (mpmath ground truth) missing")

    # 1. ground truth first (process pool forks before torch/JAX start their threads)
    grids, truths = {}, {}
    for dtype in dtypes:
        for kind in ("gamma", "vonmises"):
            p, x = paper_grid(kind, dtype, args.seed)
            grids[(kind, dtype)] = (p, x)
            if kind == "vonmises" and not have_vm_ref:
                continue
            key = {"grid": "paper", "kind": kind, "params": GAMMA_ALPHAS if kind == "gamma" else VM_KAPPAS,
                   "n": N_PER_PARAM, "seed": args.seed, "dtype": dtype, "dps": DPS["paper"][kind],
                   "ref": _ref_source_hash(kind)}
            truths[(kind, dtype)] = ground_truth(kind, p, x, key, args.processes, f"{kind} {dtype}")
    ext_grids, ext_truths = {}, {}
    if args.extended:
        for dtype in dtypes:
            for kind in ("gamma", "gamma_log", "vonmises"):
                if kind == "vonmises" and not have_vm_ref:
                    continue
                p, x, dropped = extended_grid(kind, dtype)
                ext_grids[(kind, dtype)] = (p, x, dropped)
                ref = "vonmises" if kind == "vonmises" else "gamma"
                key = {"grid": "extended", "kind": kind, "params": EXT_KAPPAS if kind == "vonmises" else EXT_ALPHAS,
                       "q": EXT_QUANTILES, "dtype": dtype, "dps": DPS["extended"][kind], "ref": _ref_source_hash(ref),
                       "x": x.astype(np.float64).tolist()}
                ext_truths[(kind, dtype)] = ground_truth(kind, p, x, key, args.processes,
                                                         f"extended {kind} {dtype}")
    t_truth = time.time() - t_start

    # 2. methods
    import torch

    nthreads = C.set_torch_threads(args.threads)
    gk, gk_note = C.import_gradkern()
    if gk is None:
        notes.append(f"gradkern rows skipped: {gk_note} (build with `pip install --no-build-isolation .` or "
                     "`python setup.py build_ext --inplace`)")
    device = args.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        print("--device cuda requested but torch.cuda.is_available() is False", file=sys.stderr)
        return 2

    notes.append("Finite difference: central difference of gradkern's own CDF op (gammainc / vonmises_cdf) "
                 "with the relative steps of the paper's Table 5 (Gamma 1e-3 / 1e-5, von Mises 1e-1 / 1e-4 in "
                 "float32 / float64), divided by the density: dz/dp = -dF/dp / q(z).")
    results = {"machine": C.machine_description(device), "threads": nthreads, "device": device,
               "seed": args.seed, "n_per_param": N_PER_PARAM, "grid": {"gamma": GAMMA_ALPHAS, "vonmises": VM_KAPPAS},
               "tables": {}, "extended": {}, "notes": notes}
    out_lines = []
    jax_notes = []
    for dtype in dtypes:
        methods = torch_methods(gk, dtype, device) + jax_methods(dtype, jax_notes if dtype == dtypes[0] else [])
        if dtype in ("float32", "float64"):
            methods += scipy_methods()
        table = {}
        for m in methods:
            key = m.name
            entry = table.setdefault(key, {"error": True})
            entry["error"] = entry["error"] and m.error
            p, x = grids[(m.kind, dtype)]
            mdev = m.device
            rec = {}
            if m.error and (m.kind, dtype) in truths:
                truth = truths[(m.kind, dtype)]
                try:
                    est, err, rel, nnan, ninf, finite = errors(m, p, x, truth)
                    ok = np.isfinite(truth)
                    rec["mae"] = float(np.mean(err[ok]))
                    rec["mae_per_param"] = [float(np.mean(err[i][ok[i]])) for i in range(x.shape[0])]
                    rec["max_rel"] = float(np.max(rel[ok & finite])) if (ok & finite).any() else float("nan")
                    rec["nan"], rec["inf"] = nnan, ninf
                    rec["truth_nan"] = int((~ok).sum())
                except Exception as e:
                    rec["error_failed"] = f"{type(e).__name__}: {e}"
            if not args.no_time:
                try:
                    rec["time"] = time_method(m, p, x, mdev)
                except Exception as e:
                    rec["time_failed"] = f"{type(e).__name__}: {e}"
            entry[m.kind] = rec
        results["tables"][dtype] = table
    notes.extend(jax_notes)

    # 3. extended grid
    if args.extended:
        for dtype in dtypes:
            methods = [m for m in torch_methods(gk, dtype, device) + jax_methods(dtype, []) if m.error]
            if gk is not None:
                import torch as _t

                tdt = getattr(_t, dtype)
                methods.append(Method(ROW_LOG, "gamma_log", lambda p, x: (
                    lambda a=_t.from_numpy(p).to(device, tdt), lx=_t.from_numpy(x).to(device, tdt):
                    _t.ops.gradkern.log_standard_gamma_grad(a, lx)),
                    lambda r: r.detach().cpu().double().numpy()))
            ext = {}
            for m in methods:
                if (m.kind, dtype) not in ext_grids:
                    continue
                p, x, dropped = ext_grids[(m.kind, dtype)]
                truth = ext_truths[(m.kind, dtype)]
                col = "gamma" if m.kind == "gamma_log" else m.kind
                try:
                    est, err, rel, nnan, ninf, finite = errors(m, p, x, truth)
                except Exception as e:
                    ext.setdefault(m.name, {})[col] = {"failed": f"{type(e).__name__}: {e}"}
                    continue
                ok = np.isfinite(truth)
                good = ok & finite
                worst = int(np.argmax(np.where(good, rel, -1))) if good.any() else -1
                ext.setdefault(m.name, {})[col] = {
                    "max_rel": float(rel[good].max()) if good.any() else float("nan"),
                    "worst_at": ([float(p[worst]), float(x[worst])] if worst >= 0 else None),
                    "nan": nnan, "inf": ninf, "points": int(ok.sum()), "dropped": dropped,
                    "truth_nan": int((~ok).sum())}
            results["extended"][dtype] = ext

    # 4. print
    def cell(rec, field):
        if rec is None:
            return C.DASH
        if field == "time":
            if "time_failed" in rec:
                return "failed"
            return C.sci(rec.get("time"))
        if "error_failed" in rec:
            return "failed"
        v = rec.get("mae")
        if v is None:
            return C.DASH
        s = C.sci(v)
        bad = rec.get("nan", 0) + rec.get("inf", 0)
        return s + (f" ({bad} nan/inf)" if bad else "")

    out_lines.append(f"Machine: {results['machine']}; {nthreads} thread(s), device {device}; "
                     f"{len(GAMMA_ALPHAS)}x{N_PER_PARAM} Gamma and {len(VM_KAPPAS)}x{N_PER_PARAM} von Mises "
                     f"samples, seed {args.seed}.")
    for dtype in dtypes:
        rows = []
        table = dict(results["tables"][dtype])
        # optional peers that are not installed still get a row, so the table itself says so
        for peer, kind in (("JAX random_gamma_grad", "gamma"), ("TFP von Mises gradient", "vonmises")):
            if not any(n.startswith(peer) for n in table):
                table[f"{peer} (not installed, see notes)"] = {"error": True, "missing": kind}
        for name, entry in sorted(table.items(), key=lambda kv: _row_rank(kv[0])):
            if entry.get("missing"):
                na = "not installed"
                rows.append([name] + ([na, na, C.DASH, C.DASH] if entry["missing"] == "gamma"
                                      else [C.DASH, C.DASH, na, na]))
                continue
            g, v = entry.get("gamma"), entry.get("vonmises")
            rows.append([name, cell(g, "mae") if entry["error"] else C.DASH, cell(g, "time"),
                         cell(v, "mae") if entry["error"] else C.DASH, cell(v, "time")])
        out_lines.append("")
        out_lines.append(f"### {dtype}")
        out_lines.append("")
        out_lines.append(C.markdown_table(["Method", "Gamma mean abs. error", "Gamma time (s/elem)",
                                           "von Mises mean abs. error", "von Mises time (s/elem)"], rows))
    if args.extended:
        for dtype in dtypes:
            rows = []
            for name, entry in sorted(results["extended"][dtype].items(), key=lambda kv: _row_rank(kv[0])):
                r = [name]
                for kind in ("gamma", "vonmises"):
                    rec = entry.get(kind)
                    if rec is None:
                        r += [C.DASH, C.DASH]
                    elif "failed" in rec:
                        r += ["failed", C.DASH]
                    else:
                        r += [C.sci(rec["max_rel"]), f"{rec['nan']}/{rec['inf']}"]
                rows.append(r)
            eg, ev = ext_grids.get(("gamma", dtype)), ext_grids.get(("vonmises", dtype))
            out_lines.append("")
            out_lines.append(f"### Extended grid, {dtype}: max relative error, NaN/inf counts")
            out_lines.append("")
            desc = (f"alpha 1e-6..1e8 ({len(EXT_ALPHAS)} values) x quantiles {EXT_QUANTILES[0]:g}..1-1e-10 "
                    f"({len(EXT_QUANTILES)}): {eg[1].size if eg else 0} points"
                    + (f" ({eg[2]} quantiles that underflow to 0 or a subnormal in {dtype} left out)" if eg else ""))
            el = ext_grids.get(("gamma_log", dtype))
            out_lines.append(desc + (f"; the log-space row takes log z at all {el[1].size} of them" if el else "")
                             + "; kappa 1e-6..1e6 "
                             f"({len(EXT_KAPPAS)} values) x the same quantiles plus x near 0 and +-pi: "
                             f"{ev[1].size if ev else 0} points.")
            out_lines.append("")
            out_lines.append(C.markdown_table(["Method", "Gamma max rel. error", "Gamma NaN/inf",
                                               "von Mises max rel. error", "von Mises NaN/inf"], rows))

    # acceptance checks (issues 2 and 3)
    checks = []
    gkname = "gradkern (forward-mode)"
    for dtype in dtypes:
        t = results["tables"][dtype]
        g = t.get(gkname, {})
        for kind in ("gamma", "vonmises"):
            rec = g.get(kind, {})
            if "mae" in rec:
                tgt = TARGET_MAE[(kind, dtype)]
                checks.append((f"{kind} {dtype} mean abs. error {C.sci(rec['mae'])} <= {tgt:g}",
                               rec["mae"] <= tgt and rec.get("nan", 0) + rec.get("inf", 0) == 0))
        if args.extended:
            ed = results["extended"].get(dtype, {})
            for row, kind, label in ((gkname, "gamma", "gamma"), (ROW_LOG, "gamma", "gamma log-space"),
                                     (gkname, "vonmises", "vonmises")):
                rec = ed.get(row, {}).get(kind)
                if rec and "max_rel" in rec:
                    tgt = TARGET_MAXREL[dtype]
                    checks.append((f"extended {label} {dtype} max rel. error {C.sci(rec['max_rel'])} <= {tgt:g}, "
                                   f"NaN/inf {rec['nan']}/{rec['inf']}",
                                   rec["max_rel"] <= tgt and rec["nan"] + rec["inf"] == 0))
        if not args.no_time:
            tg = g.get("gamma", {}).get("time")
            tj = t.get("torch._standard_gamma_grad (Jankowiak-Obermeyer)", {}).get("gamma", {}).get("time")
            if tg and tj:
                checks.append((f"{dtype} standard_gamma_grad time {tg / tj:.2f}x torch._standard_gamma_grad (<= 1)",
                               tg <= tj))
            tv = g.get("vonmises", {}).get("time")
            tc = t.get("CDF only: gradkern.vonmises_cdf", {}).get("vonmises", {}).get("time")
            ts = t.get("CDF only: scipy.stats.vonmises.cdf (float64)", {}).get("vonmises", {}).get("time")
            if tv and tc:
                checks.append((f"{dtype} vonmises_grad time {tv / tc:.2f}x gradkern vonmises_cdf (<= 2)", tv <= 2 * tc))
            if tv and ts and dtype == "float64":
                checks.append((f"{dtype} vonmises_grad time {tv / ts:.2f}x scipy.stats.vonmises.cdf (<= 1.5)",
                               tv <= 1.5 * ts))
    results["checks"] = [{"check": c, "pass": bool(ok)} for c, ok in checks]
    if checks:
        out_lines.append("")
        out_lines.append("Targets (issues 2 and 3):")
        for c, ok in checks:
            out_lines.append(f"- {'PASS' if ok else 'FAIL'}: {c}")
    if notes:
        out_lines.append("")
        out_lines.append("Notes:")
        for n in notes:
            out_lines.append(f"- {n}")
    out_lines.append("")
    out_lines.append(f"(ground truth {t_truth:.1f} s, total {time.time() - t_start:.1f} s)")
    print("\n".join(out_lines))
    results["seconds"] = {"ground_truth": t_truth, "total": time.time() - t_start}
    if args.json:
        C.write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
