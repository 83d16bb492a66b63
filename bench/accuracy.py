"""Accuracy and speed of implicit reparameterization gradients: the analogue of Table 2 of
Figurnov, Mohamed & Mnih (2018), for gradkern and the methods people would otherwise use, measured in
the same run on the same inputs.

    python bench/accuracy.py                      # both tables (float32, float64), markdown on stdout
    python bench/accuracy.py --extended           # + stress grid: max relative error, NaN/inf counts
    python bench/accuracy.py --json out.json      # also write the numbers
    python bench/accuracy.py --extended --docs    # also write the tables into docs/accuracy.md
    python bench/accuracy.py --threads 2 --device cuda
    python tools/gen_accuracy_ref.py              # recompute the shipped ground truth (about 3 min, 2 cores)

Protocol (paper, appendix C): Gamma alpha in {1e-2, 1e-1, 1, 10, 100, 1000}, von Mises kappa in
{1e-2, 1e-1, 1, 10}, 1000 samples per parameter value from a fixed seed (NumPy's generator, drawn in
float64 and rounded to the dtype under test). The ground truth of dz/dparam at every rounded sample comes
from mpmath (gradkern/reference/) and ships in bench/data/accuracy_truth.npz together with the inputs it
belongs to: every run regenerates the inputs, refuses the file if they differ bit for bit, and
re-computes a random subset of the shipped points with mpmath, stopping if any disagrees by more than
2 ulp. Error = mean absolute error over all samples of the grid. Time = seconds per element, median of
repeats over >= 1e6 elements (the grid tiled), after a warm-up, single-threaded by default.

Rows: gradkern (forward-mode differentiation of the CDF, density fused), central finite difference of
gradkern's own CDF op with the relative steps of Table 5, torch._standard_gamma_grad (Jankowiak &
Obermeyer 2018), JAX's random_gamma_grad, TensorFlow Probability's von Mises sample gradient (JAX
substrate). Rows marked "CDF only" time the CDF alone, for reference. Optional peers that are not
installed are skipped with a note (``pip install .[bench]`` brings them).
"""
from __future__ import annotations

import argparse
import json
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
# 3e-18 relative (measured) at 30% less CPU; the stress grid (small, extreme arguments) and von Mises
# (whose reference adds digits itself) use 30.
DPS = {"paper": {"gamma": 20, "vonmises": 30}, "extended": {"gamma": 30, "gamma_log": 30, "vonmises": 30}}
ROW_LOG = "gradkern log_standard_gamma_grad (d log z/dalpha from log z)"

# Table 5 of the paper: relative finite-difference step.
FD_STEP = {"gamma": {"float32": 1e-3, "float64": 1e-5}, "vonmises": {"float32": 1e-1, "float64": 1e-4}}

# gradkern's accuracy targets, and the paper's Table 2 figure for forward-mode differentiation.
TARGET_MAE = {("gamma", "float32"): 5e-7, ("gamma", "float64"): 5e-15,
              ("vonmises", "float32"): 3e-8, ("vonmises", "float64"): 1e-14}
PAPER_MAE = {("gamma", "float32"): 2.3e-6, ("gamma", "float64"): 5.4e-13,
             ("vonmises", "float32"): 1.9e-7, ("vonmises", "float64"): 1.3e-13}
TARGET_MAXREL = {"float32": 1e-5, "float64": 1e-12}

EXT_ALPHAS = [10.0 ** k for k in range(-6, 9)]
EXT_KAPPAS = [10.0 ** k for k in range(-6, 7)]
EXT_QUANTILES = [1e-10, 1e-6, 1e-3, 0.1, 0.5, 0.9, 1 - 1e-3, 1 - 1e-6, 1 - 1e-10]

DTYPES = ("float32", "float64")
KIND_LABEL = {"gamma": "Gamma", "gamma_log": "Gamma (log space)", "vonmises": "von Mises"}
ROW_GK = "gradkern (forward-mode)"
ROW_FD = "Finite difference of gradkern's CDF"
ROW_JO = "torch._standard_gamma_grad (Jankowiak-Obermeyer)"
ROW_GK_VMCDF = "CDF only: gradkern.vonmises_cdf"
ROW_SCIPY_VMCDF = "CDF only: scipy.stats.vonmises.cdf (float64)"
ROW_ORDER = [ROW_GK, "gradkern log_standard_gamma_grad", ROW_FD, ROW_JO,
             "JAX random_gamma_grad", "TFP von Mises gradient", "CDF only: gradkern.gammainc",
             ROW_GK_VMCDF, "CDF only: torch.special.gammainc", ROW_SCIPY_VMCDF]

# Shipped ground truth (see the module docstring) and how it is checked.
TRUTH_FILE = os.path.join(C.HERE, "data", "accuracy_truth.npz")
TRUTH_FORMAT = 1
REGEN_CMD = "python tools/gen_accuracy_ref.py"
VERIFY_POINTS = 48
VERIFY_ULPS = 2

# Timing targets: (dtypes, what, peer, (row, column) timed, (row, column) of the peer, bound, the paper).
TIME_CHECKS = [
    (("float32", "float64"), "standard_gamma_grad", "torch._standard_gamma_grad", (ROW_GK, "gamma"),
     (ROW_JO, "gamma"), 1.0, "the paper, float32: Jankowiak-Obermeyer 4.5x slower than forward-mode"),
    (("float32", "float64"), "vonmises_grad", "gradkern's vonmises_cdf alone", (ROW_GK, "vonmises"),
     (ROW_GK_VMCDF, "vonmises"), 2.0, "the paper, for Gamma: forward-mode costs about twice the CDF"),
    (("float64",), "vonmises_grad", "scipy.stats.vonmises.cdf alone", (ROW_GK, "vonmises"),
     (ROW_SCIPY_VMCDF, "vonmises"), 1.5, "SciPy's CDF is the code the paper differentiated; no figure"),
]
NEAR_BOUND = 0.15       # a time ratio within 15% of its bound is re-timed, interleaved, before a verdict
RETIME_ROUNDS = 5


def _row_rank(name):
    for i, r in enumerate(ROW_ORDER):
        if name.startswith(r):
            return i
    return len(ROW_ORDER)


# --- grid ------------------------------------------------------------------------------------------------
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


def _ref_source_hash(name):
    """Hash of the code of gradkern/reference/<name>.py and the _mp.py it builds on: their syntax trees
    without docstrings, so that comment and docstring edits do not count as a change of the reference."""
    import ast
    import hashlib

    h = hashlib.sha1()
    for f in (f"{name}.py", "_mp.py"):
        with open(os.path.join(C.REPO, "gradkern", "reference", f)) as fh:
            tree = ast.parse(fh.read())
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                    and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
                node.body = body[1:] or [ast.Pass()]
        h.update(ast.dump(tree).encode())
    return h.hexdigest()[:12]


class Table:
    """The inputs of one ground-truth table (grid, kind, dtype): params p, points x (same shape), the
    number of stress-grid points left out, and the key that says what they are."""

    def __init__(self, grid, kind, dtype, seed=SEED):
        self.grid, self.kind, self.dtype = grid, kind, dtype
        self.name = f"{grid}-{kind}-{dtype}"
        self.ref = "vonmises" if kind == "vonmises" else "gamma"
        if grid == "paper":
            self.p, self.x = paper_grid(kind, dtype, seed)
            self.dropped = 0
            self.key = {"grid": "paper", "kind": kind, "params": GAMMA_ALPHAS if kind == "gamma" else VM_KAPPAS,
                        "n": N_PER_PARAM, "seed": seed, "dtype": dtype}
        else:
            self.p, self.x, self.dropped = extended_grid(kind, dtype)
            self.key = {"grid": "extended", "kind": kind,
                        "params": EXT_KAPPAS if kind == "vonmises" else EXT_ALPHAS, "q": EXT_QUANTILES,
                        "dtype": dtype}
        self.key["dps"] = DPS[grid][kind]

    def shippable(self):
        return self.grid == "extended" or self.key["seed"] == SEED


def all_tables(dtypes=DTYPES, extended=True, seed=SEED):
    kinds = {"paper": ["gamma", "vonmises"], "extended": ["gamma", "gamma_log", "vonmises"]}
    grids = ["paper"] + (["extended"] if extended else [])
    return [Table(g, k, d, seed) for g in grids for d in dtypes for k in kinds[g]]


# --- ground truth (pure NumPy + mpmath; runs before torch/JAX are imported, in worker processes) -------
_REF = {}
_REF_PKG = "_gradkern_reference"


class ReferenceUnavailable(Exception):
    """gradkern/reference/ cannot be imported: never turned into a NaN (a left-out point)."""


def _ref(name):
    """gradkern/reference/<name>.py, imported by path as a private package: without gradkern/__init__,
    so neither torch nor the extension is loaded, and a checkout whose package is being edited or
    rebuilt cannot make points fail."""
    if name not in _REF:
        import importlib
        import importlib.util

        d = os.path.join(C.REPO, "gradkern", "reference")
        try:
            if _REF_PKG not in sys.modules:
                spec = importlib.util.spec_from_file_location(_REF_PKG, os.path.join(d, "__init__.py"),
                                                              submodule_search_locations=[d])
                mod = importlib.util.module_from_spec(spec)
                sys.modules[_REF_PKG] = mod
                spec.loader.exec_module(mod)
            _REF[name] = importlib.import_module(f"{_REF_PKG}.{name}")
        except Exception as e:
            raise ReferenceUnavailable(f"gradkern/reference/{name}.py: {type(e).__name__}: {e}") from e
    return _REF[name]


def _vm_grad_fn(ref):
    for name in ("grad", "vonmises_grad", "dxdkappa", "dx_dkappa"):
        if hasattr(ref, name):
            return getattr(ref, name)
    raise ReferenceUnavailable("gradkern/reference/vonmises.py has no grad(kappa, x)")


def _nan_on_error(fn):
    """fn() as a float (the ground truth at one point), NaN where mpmath fails (the point is then left
    out)."""
    try:
        return float(fn())
    except ReferenceUnavailable:
        raise
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


_GT_FN = {"gamma": _gt_gamma_item, "gamma_log": _gt_gamma_log_item, "vonmises": _gt_vm_item}


def _items(table, index=None):
    import numpy as np

    p = table.p.astype(np.float64).ravel()
    x = table.x.astype(np.float64).ravel()
    idx = range(p.size) if index is None else index
    return [(float(p[i]), float(x[i]), table.key["dps"]) for i in idx]


def compute_truth(table, processes):
    """mpmath ground truth at every point of the table, float64, shape of table.x."""
    import numpy as np

    t0 = time.time()
    vals = C.parallel_map(_GT_FN[table.kind], _items(table), processes=processes, desc=table.name, chunksize=4)
    print(f"  [ground truth] {table.name}: {table.x.size} points in {time.time() - t0:.1f} s", file=sys.stderr)
    return np.asarray(vals, dtype=np.float64).reshape(table.x.shape)


def cached_truth(table, processes):
    """compute_truth, cached in bench/.cache/ (for inputs that have no shipped truth: another --seed)."""
    key = dict(table.key, ref=_ref_source_hash(table.ref))
    arrays, _ = C.cached_arrays(f"truth-{table.kind}", key, lambda: {"truth": compute_truth(table, processes)})
    return arrays["truth"]


TruthError = C.TruthError


def _mpmath_version():
    import mpmath

    return mpmath.__version__


def regenerate_truth(processes, path=None):
    """Compute every table (paper and stress grid, float32 and float64) with mpmath and write them, with
    their inputs and keys, to ``path`` (compressed .npz; default TRUTH_FILE). Returns the path."""
    import numpy as np

    path = path or TRUTH_FILE
    tables = all_tables()
    arrays, meta = {}, {"format": TRUTH_FORMAT, "generated_by": REGEN_CMD, "mpmath": _mpmath_version(),
                        "ref": {r: _ref_source_hash(r) for r in ("gamma", "vonmises")}, "tables": {}}
    t0 = time.time()
    for t in tables:
        arrays[f"{t.name}__p"], arrays[f"{t.name}__x"] = t.p, t.x
        arrays[f"{t.name}__truth"] = compute_truth(t, processes)
        meta["tables"][t.name] = t.key
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + f".tmp{os.getpid()}.npz"
    np.savez_compressed(tmp, __meta__=np.array(json.dumps(meta, sort_keys=True)), **arrays)
    os.replace(tmp, path)
    n = sum(t.x.size for t in tables)
    for t in tables:
        bad = int(np.isnan(arrays[f"{t.name}__truth"]).sum())
        if bad:
            print(f"  {t.name}: mpmath failed at {bad} points (NaN, left out of the errors)", file=sys.stderr)
    print(f"wrote {os.path.relpath(path, C.REPO)}: {len(tables)} tables, {n} points, "
          f"{os.path.getsize(path) / 1024:.0f} KiB, in {time.time() - t0:.0f} s", file=sys.stderr)
    return path


def read_shipped(path=None):
    """(meta, arrays) of the shipped ground truth."""
    return C.read_truth_file(path or TRUTH_FILE, TRUTH_FORMAT, REGEN_CMD)


_same_bits = C.same_bits


def shipped_truth(table, meta, arrays):
    """The shipped truth of ``table``, after checking that the file holds exactly these inputs."""
    where = f"{os.path.relpath(TRUTH_FILE, C.REPO)} [{table.name}]"
    C.check_truth_key(where, meta, table.name, table.key, REGEN_CMD)
    for part, mine in (("p", table.p), ("x", table.x)):
        if not _same_bits(arrays[f"{table.name}__{part}"], mine):
            raise TruthError(f"{where}: the {'parameters' if part == 'p' else 'points'} this script generates "
                             f"differ from the shipped ones (grid or sample generation changed); "
                             f"regenerate it with `{REGEN_CMD}`")
    return arrays[f"{table.name}__truth"]


_pick_points = C.pick_points


def verify_truth(tables, truths, n, seed, processes):
    """Recompute n random shipped points with mpmath; raise TruthError listing any that disagree by more
    than VERIFY_ULPS ulp (or NaN on one side only). Returns the number of points checked."""
    import numpy as np

    picks = _pick_points(tables, n, np.random.default_rng(seed))
    if not picks:
        return 0
    items = [(t.kind, _items(t, [i])[0]) for t, i in picks]
    vals = C.parallel_map(_verify_item, items, processes=processes, desc="re-verifying ground truth",
                          chunksize=1)
    bad = []
    for (t, i), new in zip(picks, vals):
        old = float(truths[t.name].ravel()[i])
        same_nan = math.isnan(old) and math.isnan(new)
        if not same_nan and not abs(new - old) <= VERIFY_ULPS * float(np.spacing(abs(old))):
            bad.append(f"  {t.name}[{i}]: param {float(t.p.ravel()[i])!r}, x {float(t.x.ravel()[i])!r}: "
                       f"shipped {old!r}, mpmath now {new!r}")
    if bad:
        raise TruthError(f"{len(bad)} of {len(picks)} re-verified ground-truth points disagree with mpmath by "
                         f"more than {VERIFY_ULPS} ulp (selection seed {seed}):\n" + "\n".join(bad[:10]) +
                         (f"\n  ... and {len(bad) - 10} more" if len(bad) > 10 else "") +
                         f"\nIf gradkern/reference/ or mpmath changed on purpose, regenerate with `{REGEN_CMD}`.")
    return len(picks)


def _verify_item(item):
    kind, it = item
    return _GT_FN[kind](it)


def load_truth(tables, args, notes):
    """{table name: truth array} for the tables, shipped where it exists (tied and spot-checked), computed
    with mpmath otherwise. Returns (truths, description for the report)."""
    truths, shipped, computed = {}, [], []
    meta = arrays = None
    for t in tables:
        if not t.shippable():
            truths[t.name] = cached_truth(t, args.processes)
            computed.append(t)
            continue
        if meta is None:
            meta, arrays = read_shipped()
        truths[t.name] = shipped_truth(t, meta, arrays)
        shipped.append(t)
    parts = []
    if computed:
        parts.append(f"for seed {args.seed} (no shipped truth) computed with mpmath, cached in bench/.cache/")
    if shipped:
        parts.append(_check_shipped(shipped, truths, meta, args, notes))
    return truths, "; ".join(parts)


def _check_shipped(shipped, truths, meta, args, notes):
    """Notes on what the shipped file was made with, then the spot check; its description."""
    for r in sorted({t.ref for t in shipped}):
        if meta["ref"].get(r) != _ref_source_hash(r):
            notes.append(f"gradkern/reference/{r}.py changed since the shipped ground truth was generated; "
                         f"the spot check recomputed with the current file. Regenerate with `{REGEN_CMD}`.")
    if meta.get("mpmath") != _mpmath_version():
        notes.append(f"Shipped ground truth made with mpmath {meta.get('mpmath')}, this run has "
                     f"{_mpmath_version()} (spot-checked).")
    vseed = args.verify_seed if args.verify_seed is not None else int.from_bytes(os.urandom(4), "little")
    nv = verify_truth(shipped, truths, args.verify, vseed, args.processes)
    total = sum(t.x.size for t in shipped)
    how = (f"{nv} of its {total} points, drawn at random (selection seed {vseed}), recomputed with mpmath "
           f"this run: all agree to {VERIFY_ULPS} ulp" if nv else
           "NOT re-verified against mpmath this run (--verify 0)")
    return f"shipped in {os.path.relpath(TRUTH_FILE, C.REPO)}; {how}"


# --- methods -------------------------------------------------------------------------------------------
class Method:
    """A gradient (or CDF-only) method: ``build(p, x)`` takes NumPy arrays and returns a zero-argument
    callable computing the result on prepared inputs; ``to_numpy`` converts that result."""

    def __init__(self, name, kind, build, to_numpy, block=None, error=True, note=None, device="cpu"):
        self.name, self.kind, self.build, self.to_numpy = name, kind, build, to_numpy
        self.block, self.error, self.note, self.device = block, error, note, device
        self.gpu = False  # timed on the GPU (--device cuda): CUDA_ELEMENTS per launch, see prepare_gpu_timer


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
        ms.append(Method(ROW_GK, "gamma",
                         lambda p, x: (lambda a=T(p), z=T(x): ops.standard_gamma_grad(a, z)), to_np))
        ms.append(Method(ROW_FD, "gamma", central_fd(lambda a, z: ops.gammainc(a, z), inv_gamma_density,
                                                      FD_STEP["gamma"][dtype]), to_np))
    ms.append(Method(ROW_JO, "gamma",
                     lambda p, x: (lambda a=T(p), z=T(x): torch._standard_gamma_grad(a, z)), to_np))
    if gk is not None:
        ms.append(Method(ROW_GK, "vonmises",
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
        ms.append(Method(ROW_GK_VMCDF, "vonmises",
                         lambda p, x: (lambda k=T(p), z=T(x): ops.vonmises_cdf(z, k)), to_np, error=False))
    for m in ms:
        m.device = device
    return ms


def log_method(dtype, device):
    """gradkern's log-space entry point, on the stress grid's log z points."""
    import torch

    tdt = getattr(torch, dtype)
    return Method(ROW_LOG, "gamma_log", lambda p, x: (
        lambda a=torch.from_numpy(p).to(device, tdt), lx=torch.from_numpy(x).to(device, tdt):
        torch.ops.gradkern.log_standard_gamma_grad(a, lx)),
        lambda r: r.detach().cpu().double().numpy(), device=device)


def scipy_methods():
    import numpy as np
    from scipy import stats

    return [Method(ROW_SCIPY_VMCDF, "vonmises",
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


# --- measuring -------------------------------------------------------------------------------------------
# --device cuda: the grid tiled to this many elements per launch, CUDA-event timing (JAX on the GPU: wall
# time to block_until_ready), 5 calls after 2 warm-up calls.
GPU_ELEMENTS = 1 << 24
GPU_BYTES_PER_ELEMENT = 3  # per byte of the dtype: two inputs read, one output written


def prepare_gpu_timer(m, p, x):
    import numpy as np

    tiles = math.ceil(GPU_ELEMENTS / x.size)
    f = m.build(np.tile(p.ravel(), tiles), np.tile(x.ravel(), tiles))
    n = x.size * tiles
    m.elements = n

    def measure(repeats=None):
        reps, warm = (5, 2) if repeats is None else (repeats, 0)
        if m.block:
            return C.wall_time_blocked(f, n, m.block, repeats=reps, warmup=warm)
        return C.cuda_event_time(f, n, repeats=reps, warmup=warm)
    return measure


def prepare_timer(m, p, x, device):
    """A callable measure(repeats=None) -> seconds per element of m, the median of repeats over >= 1e6
    elements after a warm-up (the default repeats and warm-up are the table's; re-timings pass fewer)."""
    import numpy as np

    if m.gpu:
        return prepare_gpu_timer(m, p, x)

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
        f, n, reps, warm = m.build(pt, xt), pt.size, 5, 1
    else:
        # slow peer (JAX): median over >= 1e6 / n0 calls on the grid itself (already warm and compiled);
        # per-call overhead is negligible at these speeds, and no second compile or large warm-up is needed.
        f, n, reps, warm = f1, n0, math.ceil(target / n0), 0

    def measure(repeats=None):
        return C.time_per_element(f, n, repeats=reps if repeats is None else repeats,
                                  warmup=warm if repeats is None else 0, device=device, block=m.block)
    return measure


def errors(m, p, x, truth):
    import numpy as np

    with np.errstate(all="ignore"):
        est = m.to_numpy(m.build(p.ravel(), x.ravel())()).reshape(x.shape)
        finite = np.isfinite(est)
        err = np.abs(est - truth)
        denom = np.maximum(np.abs(truth), np.finfo(np.float64).tiny)
        rel = np.where(truth == est, 0.0, err / denom)
    return est, err, rel, int(np.isnan(est).sum()), int(np.isinf(est).sum()), finite


def paper_errors(m, p, x, truth):
    """Mean abs. error (overall and per parameter value), max rel. error and NaN/inf counts."""
    import numpy as np

    rec = {}
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
    return rec


def stress_errors(m, p, x, truth, dropped):
    """Max rel. error (and where), NaN/inf counts on the stress grid."""
    import numpy as np

    try:
        est, err, rel, nnan, ninf, finite = errors(m, p, x, truth)
    except Exception as e:
        return {"failed": f"{type(e).__name__}: {e}"}
    ok = np.isfinite(truth)
    good = ok & finite
    worst = int(np.argmax(np.where(good, rel, -1))) if good.any() else -1
    return {"max_rel": float(rel[good].max()) if good.any() else float("nan"),
            "worst_at": ([float(p[worst]), float(x[worst])] if worst >= 0 else None),
            "nan": nnan, "inf": ninf, "points": int(ok.sum()), "dropped": dropped,
            "truth_nan": int((~ok).sum())}


def measure_paper(methods, tables, truths, dtype, no_time, keep_timers):
    """{row: {"error": bool, column: record}} for one dtype; timers of the rows in keep_timers kept in
    the returned dict under (row, column) for re-timing."""
    table, timers = {}, {}
    for m in methods:
        entry = table.setdefault(m.name, {"error": True})
        entry["error"] = entry["error"] and m.error
        t = tables[("paper", m.kind, dtype)]
        rec = {}
        if m.error and t.name in truths:
            rec = paper_errors(m, t.p, t.x, truths[t.name])
        if not no_time:
            try:
                measure = prepare_timer(m, t.p, t.x, m.device)
                rec["time"] = measure()
                if m.gpu:
                    rec["gpu"], rec["elements"] = True, m.elements
                if (m.name, m.kind) in keep_timers:
                    timers[(m.name, m.kind)] = measure
            except Exception as e:
                rec["time_failed"] = f"{type(e).__name__}: {e}"
        entry[m.kind] = rec
    return table, timers


def measure_stress(methods, tables, truths, dtype):
    ext = {}
    for m in methods:
        t = tables.get(("extended", m.kind, dtype))
        if t is None:
            continue
        col = "gamma" if m.kind == "gamma_log" else m.kind
        ext.setdefault(m.name, {})[col] = stress_errors(m, t.p, t.x, truths[t.name], t.dropped)
    return ext


def retime_ratio(timer_a, timer_b, rounds=RETIME_ROUNDS):
    """Sorted time ratios a/b over rounds that time a and b alternately (median of 3 calls each)."""
    out = []
    for _ in range(rounds):
        ta = timer_a(3)
        tb = timer_b(3)
        out.append(ta / tb)
    return sorted(out)


def time_ratios(results, timers, dtype):
    """[((dtype, what, peer, bound, paper), ratio, spread or None)] for the timing targets of one dtype:
    the ratio of the table's times; one within NEAR_BOUND of its bound is re-timed in interleaved
    rounds, and spread is then those ratios and the table's, sorted."""
    out = []
    t = results["tables"][dtype]
    for dtypes, what, peer, a, b, bound, paper in TIME_CHECKS:
        ta = t.get(a[0], {}).get(a[1], {}).get("time")
        tb = t.get(b[0], {}).get(b[1], {}).get("time")
        if dtype not in dtypes or not (ta and tb):
            continue
        ratio, spread = ta / tb, None
        if abs(ratio / bound - 1) <= NEAR_BOUND and a in timers and b in timers:
            spread = sorted(retime_ratio(timers[a], timers[b]) + [ratio])
        out.append(((dtype, what, peer, bound, paper), ratio, spread))
    return out


# --- report ----------------------------------------------------------------------------------------------
def _cell(rec, field):
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


def paper_table_md(table):
    rows = []
    table = dict(table)
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
        rows.append([name, _cell(g, "mae") if entry["error"] else C.DASH, _cell(g, "time"),
                     _cell(v, "mae") if entry["error"] else C.DASH, _cell(v, "time")])
    return C.markdown_table(["Method", "Gamma mean abs. error", "Gamma time (s/elem)",
                             "von Mises mean abs. error", "von Mises time (s/elem)"], rows)


def cuda_throughput_md(results, dtypes):
    """The GPU rows of the paper tables as throughput: elements per second and the fraction of the
    memory-bandwidth limit (the device-to-device copy measured in this run)."""
    cu = results["cuda"]
    bw = cu["copy_bandwidth_Bps"]
    out = ["", f"### CUDA throughput ({cu['device']})", "",
           f"{cu['elements']:,} elements per launch (the grid tiled), CUDA-event time, median of 5 calls after 2 "
           f"warm-up calls (JAX: wall time to block_until_ready); {C.bandwidth_note(bw)}. % of copy = "
           f"{GPU_BYTES_PER_ELEMENT} x the dtype's bytes per element (two inputs read, one output written) at the "
           "row's throughput over that copy bandwidth."]
    rows = []
    for dtype in dtypes:
        item = 4 if dtype == "float32" else 8
        for name, entry in sorted(results["tables"][dtype].items(), key=lambda kv: _row_rank(kv[0])):
            for kind in ("gamma", "vonmises"):
                rec = entry.get(kind) or {}
                if not rec.get("gpu") or not rec.get("time"):
                    continue
                eps = 1 / rec["time"]
                rows.append([dtype, name, KIND_LABEL[kind], f"{eps:.2e}", f"{GPU_BYTES_PER_ELEMENT * item * eps / bw:.1%}"])
    out += ["", C.markdown_table(["dtype", "Method", "column", "elements/s", "% of copy"], rows,
                                 align=["l", "l", "l", "r", "r"])]
    return out


def stress_table_md(ext):
    rows = []
    for name, entry in sorted(ext.items(), key=lambda kv: _row_rank(kv[0])):
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
    return C.markdown_table(["Method", "Gamma max rel. error", "Gamma NaN/inf",
                             "von Mises max rel. error", "von Mises NaN/inf"], rows)


def stress_grid_description(tables, dtype):
    eg, ev = tables.get(("extended", "gamma", dtype)), tables.get(("extended", "vonmises", dtype))
    el = tables.get(("extended", "gamma_log", dtype))
    desc = (f"alpha 1e-6..1e8 ({len(EXT_ALPHAS)} values) x quantiles {EXT_QUANTILES[0]:g}..1-1e-10 "
            f"({len(EXT_QUANTILES)}): {eg.x.size if eg else 0} points"
            + (f" ({eg.dropped} quantiles that underflow to 0 or a subnormal in {dtype} left out)" if eg else ""))
    return (desc + (f"; the log-space row takes log z at all {el.x.size} of them" if el else "")
            + f"; kappa 1e-6..1e6 ({len(EXT_KAPPAS)} values) x the same quantiles plus x near 0 and +-pi: "
            f"{ev.x.size if ev else 0} points.")


def paper_checks(results, dtype):
    """[(verdict, text)] for the mean abs. error targets of one dtype."""
    checks = []
    g = results["tables"][dtype].get(ROW_GK, {})
    for kind in ("gamma", "vonmises"):
        rec = g.get(kind, {})
        if "mae" in rec:
            tgt = TARGET_MAE[(kind, dtype)]
            bad = rec.get("nan", 0) + rec.get("inf", 0)
            checks.append(("PASS" if rec["mae"] <= tgt and not bad else "FAIL",
                           f"{dtype} {KIND_LABEL[kind]} mean abs. error {C.sci(rec['mae'])} <= {tgt:g}"
                           + (f", {bad} NaN/inf" if bad else "")
                           + f" (the paper's forward-mode: {PAPER_MAE[(kind, dtype)]:g})"))
    return checks


def stress_checks(results, dtype):
    """[(verdict, text)] for the stress-grid targets of one dtype."""
    checks = []
    ed = results["extended"].get(dtype, {})
    for row, kind, label in ((ROW_GK, "gamma", "Gamma"), (ROW_LOG, "gamma", "Gamma, log space"),
                             (ROW_GK, "vonmises", "von Mises")):
        rec = ed.get(row, {}).get(kind)
        if rec and "max_rel" in rec:
            tgt = TARGET_MAXREL[dtype]
            ok = rec["max_rel"] <= tgt and rec["nan"] + rec["inf"] == 0
            checks.append(("PASS" if ok else "FAIL",
                           f"{dtype} stress grid, {label}: max rel. error {C.sci(rec['max_rel'])} <= {tgt:g} "
                           f"and no NaN/inf ({rec['nan']}/{rec['inf']}) (not in the paper)"))
    return checks


def time_checks(ratios):
    """[(verdict, text, spread or None)] for the timing targets of one dtype (see time_ratios): PASS or
    FAIL on the ratio, or on its re-timed spread when there is one; WITHIN NOISE when that spread
    straddles the bound, rather than a verdict that would flip between runs."""
    out = []
    for (dtype, what, peer, bound, paper), ratio, spread in ratios:
        text = f"{dtype} {what} takes {ratio:.2f}x the time of {peer} (target <= {bound:g}; {paper})"
        if spread:
            lo, hi = min(spread), max(spread)
            text += f"; near the bound, so re-timed: {lo:.3f}-{hi:.3f}x over {len(spread)} measurements"
            verdict = "PASS" if hi <= bound else "FAIL" if lo > bound else "WITHIN NOISE"
            if verdict == "WITHIN NOISE":
                text += ", which straddle the bound: within the timing noise of this machine"
        else:
            verdict = "PASS" if ratio <= bound else "FAIL"
        out.append((verdict, text, spread))
    return out


def title_lines(truth_desc):
    dps = DPS["paper"]
    return [f"## Table 2 of Figurnov, Mohamed & Mnih (2018), implicit reparameterization gradients: "
            f"error and time of dz/dparam",
            "",
            f"Ground truth: mpmath (gradkern/reference/) at {dps['gamma']} significant digits for Gamma and "
            f"{dps['vonmises']} for von Mises, rounded to float64; {truth_desc}."]


def setup_line(results):
    return (f"{results['threads']} thread(s), device {results['device']}; {len(GAMMA_ALPHAS)}x{N_PER_PARAM} Gamma "
            f"and {len(VM_KAPPAS)}x{N_PER_PARAM} von Mises samples, seed {results['seed']}.")


def render(results, dtypes, extended, tables, checks_by_dtype, notes, t_truth, t_total):
    """{"paper": markdown, "stress": markdown or None} and the stdout text (machine line first)."""
    paper = title_lines(results["truth"]) + ["", setup_line(results)]
    for dtype in dtypes:
        paper += ["", f"### {dtype}", "", paper_table_md(results["tables"][dtype])]
    if results.get("cuda"):
        paper += cuda_throughput_md(results, dtypes)
    targets = [c for d in dtypes for c in checks_by_dtype[d]["accuracy_paper"] + checks_by_dtype[d]["time"]]
    if targets:
        paper += ["", "Targets (gradkern's bounds; the paper's Table 2 figure, where it has one, in parentheses):"]
        paper += [f"- {c[0]}: {c[1]}" for c in targets]
    if notes:
        paper += ["", "Notes:"] + [f"- {n}" for n in notes]
    footer = f"Run time: ground truth {t_truth:.1f} s, total {t_total:.0f} s."
    stress = None
    if extended:
        stress = ["## Stress grid: max relative error and NaN/inf counts",
                  "", f"Ground truth: mpmath at {DPS['extended']['gamma']} significant digits, shipped and "
                  "re-verified like the paper grid's. Relative error denominator: |truth|."]
        for dtype in dtypes:
            stress += ["", f"### Stress grid, {dtype}", "", stress_grid_description(tables, dtype), "",
                       stress_table_md(results["extended"][dtype])]
        st = [c for d in dtypes for c in checks_by_dtype[d]["accuracy_stress"]]
        if st:
            stress += ["", "Targets (gradkern's bounds):"] + [f"- {c[0]}: {c[1]}" for c in st]
        stress += ["", footer]
    else:
        paper += ["", footer]
    sections = {"paper": "\n".join(paper), "stress": "\n".join(stress) if stress else None}
    text = f"Machine: {results['machine']}.\n\n" + sections["paper"]
    if stress:
        text += "\n\n" + sections["stress"]
    return sections, text


def all_checks(results, timers, dtypes, args):
    """{dtype: {"accuracy_paper", "accuracy_stress", "time": [(verdict, text[, spread])]}}; also stored
    in results["checks"]."""
    checks = {}
    for dtype in dtypes:
        checks[dtype] = {"accuracy_paper": paper_checks(results, dtype),
                         "accuracy_stress": stress_checks(results, dtype) if args.extended else [],
                         "time": [] if args.no_time else time_checks(time_ratios(results, timers[dtype], dtype))}
    results["checks"] = [{"check": c[1], "verdict": c[0], "pass": c[0] == "PASS",
                          **({"ratio_spread": c[2]} if len(c) > 2 and c[2] else {})}
                         for d in dtypes for group in checks[d].values() for c in group]
    return checks


def write_docs(sections, argv, device):
    """The sections into docs/accuracy.md (table2; stress-grid with --extended), headed by the command
    (without --json, whose path is this machine's), the date and the machine."""
    shown, skip = [], False
    for a in argv:
        if skip or a.startswith("--json"):
            skip = a == "--json"
            continue
        shown.append(a)
    cmd = "python bench/accuracy.py" + "".join(f" {a}" for a in shown)
    for name, md in (("table2", sections["paper"]), ("stress-grid", sections["stress"])):
        if md:
            path = C.write_doc_section("accuracy.md", name, md, command=cmd, device=device)
    print(f"\n(wrote {os.path.relpath(path, C.REPO)})", file=sys.stderr)


# --- main ------------------------------------------------------------------------------------------------
def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1, help="CPU threads for timing (default 1)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (gradkern and torch rows; JAX/TFP run on "
                                                    "their default backend)")
    ap.add_argument("--extended", action="store_true", help="add the stress grid")
    ap.add_argument("--json", metavar="PATH", help="write all numbers to PATH")
    ap.add_argument("--docs", action="store_true", help="write the tables into docs/accuracy.md")
    ap.add_argument("--seed", type=int, default=SEED,
                    help=f"sample seed (default {SEED}; any other has no shipped truth and is computed, minutes)")
    ap.add_argument("--processes", type=int, default=min(2, os.cpu_count() or 1),
                    help="processes for mpmath (default: min(2, cores))")
    ap.add_argument("--verify", type=int, default=VERIFY_POINTS,
                    help=f"shipped ground-truth points to recompute with mpmath this run (default {VERIFY_POINTS})")
    ap.add_argument("--verify-seed", type=int, default=None, help="seed of that random selection (default: fresh)")
    ap.add_argument("--regenerate-truth", action="store_true",
                    help=f"recompute {os.path.relpath(TRUTH_FILE, C.REPO)} with mpmath and exit (same as `{REGEN_CMD}`)")
    ap.add_argument("--no-time", action="store_true", help="errors only")
    ap.add_argument("--dtypes", default="float32,float64")
    return ap.parse_args(argv)


def run_methods(args, dtypes, tables, truths, notes):
    """results dict (tables, extended) and the timers kept for re-timing."""
    import torch

    nthreads = C.set_torch_threads(args.threads)
    gk, gk_note = C.import_gradkern()
    if gk is None:
        notes.append(f"gradkern rows skipped: {gk_note} (build with `pip install --no-build-isolation .` or "
                     "`python setup.py build_ext --inplace`)")
    device = args.device
    notes.append("Finite difference: central difference of gradkern's own CDF op (gammainc / vonmises_cdf) "
                 "with the relative steps of the paper's Table 5 (Gamma 1e-3 / 1e-5, von Mises 1e-1 / 1e-4 in "
                 "float32 / float64), divided by the density: dz/dp = -dF/dp / q(z).")
    results = {"machine": C.machine_description(device), "threads": nthreads, "device": device,
               "seed": args.seed, "n_per_param": N_PER_PARAM, "grid": {"gamma": GAMMA_ALPHAS, "vonmises": VM_KAPPAS},
               "tables": {}, "extended": {}, "notes": notes}
    keep = {c[3] for c in TIME_CHECKS} | {c[4] for c in TIME_CHECKS}
    timers, jax_notes = {}, []
    on_gpu = device.startswith("cuda")
    if on_gpu:
        import torch

        jax_gpu = C.jax_on_gpu() is not None
        results["cuda"] = {"device": torch.cuda.get_device_name(), "elements": GPU_ELEMENTS,
                           "copy_bandwidth_Bps": C.cuda_copy_bandwidth(),
                           "nominal_bandwidth_Bps": C.nominal_bandwidth()[1], "timing": "CUDA events"}
        if not jax_gpu:
            notes.append("JAX is not on the GPU (its default backend is not one): its rows are timed there, "
                         "not in the CUDA throughput table")
    for dtype in dtypes:
        methods = torch_methods(gk, dtype, device) + jax_methods(dtype, jax_notes if dtype == dtypes[0] else [])
        if on_gpu:
            for m in methods:
                m.gpu = m.device.startswith("cuda") or (m.block is not None and jax_gpu)
        methods += scipy_methods()
        results["tables"][dtype], timers[dtype] = measure_paper(methods, tables, truths, dtype, args.no_time, keep)
    notes.extend(jax_notes)
    if args.extended:
        for dtype in dtypes:
            methods = [m for m in torch_methods(gk, dtype, device) + jax_methods(dtype, []) if m.error]
            if gk is not None:
                methods.append(log_method(dtype, device))
            results["extended"][dtype] = measure_stress(methods, tables, truths, dtype)
    return results, timers


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.regenerate_truth:
        regenerate_truth(args.processes)
        return 0
    dtypes = [d for d in args.dtypes.split(",") if d]
    C.limit_threads_env(args.threads)

    t_start = time.time()
    notes = []
    have_vm_ref = os.path.exists(os.path.join(C.REPO, "gradkern", "reference", "vonmises.py"))
    if not have_vm_ref:
        notes.append("von Mises errors skipped: gradkern/reference/vonmises.py (mpmath ground truth) missing")

    # 1. inputs and ground truth first (the process pool forks before torch/JAX start their threads)
    tables = {(t.grid, t.kind, t.dtype): t for t in all_tables(dtypes, args.extended, args.seed)}
    try:
        truths, truth_desc = load_truth([t for t in tables.values() if t.kind != "vonmises" or have_vm_ref],
                                        args, notes)
    except TruthError as e:
        print(f"accuracy.py: ground truth refused: {e}", file=sys.stderr)
        return 3
    t_truth = time.time() - t_start

    # 2. methods
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            print("--device cuda requested but torch.cuda.is_available() is False", file=sys.stderr)
            return 2
    results, timers = run_methods(args, dtypes, tables, truths, notes)
    results["truth"] = truth_desc

    # 3. targets and report
    checks = all_checks(results, timers, dtypes, args)
    t_total = time.time() - t_start
    sections, text = render(results, dtypes, args.extended, tables, checks, notes, t_truth, t_total)
    print(text)
    results["seconds"] = {"ground_truth": t_truth, "total": t_total}
    if args.json:
        C.write_json(args.json, results)
    if args.docs:
        write_docs(sections, argv, args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
