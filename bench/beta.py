"""Beta / Dirichlet implicit gradients (gradkern issue 14): accuracy of dx/da and dx/db against mpmath,
per-sample gradient variance of the samplers, and speed against torch, in one run.

    python bench/beta.py                       # all three sections, markdown on stdout (under 1 min)
    python bench/beta.py --json out.json       # also write every number
    python bench/beta.py --docs                # also write the sections into docs/beta.md
    python bench/beta.py --no-time --no-variance   # accuracy only
    python tools/gen_beta_truth.py             # recompute the shipped ground truth (under 1 min, 1 process)

Accuracy. Grid (a, b) in {0.1, 1, 10, 100}^2, 500 samples per point from NumPy's generator (seed 14, one
``Generator.beta(a, b, 500)`` draw per point in row-major order, float64), rounded to the dtype under test
and clamped into [tiny, 1 - eps/2] (the range torch's and gradkern's Beta samplers return: NumPy's
sampler returns exactly 1.0 for a few percent of the Beta(100, 0.1) draws, and float32 rounding maps about
a third of them to 1). Stress set: (a, b) in {(1e-3, 1), (1, 1e-3), (1e-2, 1e2), (1e2, 1e-2), (1e3, 1e3),
(1e4, 10)} at the quantiles {1e-10, 1e-6, 1e-3, 0.1, 0.5, 0.9, 1-1e-3, 1-1e-6, 1-1e-10}, x = the exact
quantile (mpmath, gradkern/reference/beta.py) correctly rounded to the dtype, points that round to 0 or 1
dropped. The ground truth at every rounded x (dx/da and dx/db, mpmath at 30 digits, rounded to float64)
ships in bench/data/beta_truth.npz with the inputs it belongs to: every run regenerates the inputs (the
stress quantiles with mpmath), refuses the file if they or its settings differ, and recomputes a random
subset of the shipped points with mpmath at 40 digits, stopping if any differs by more than 2 ulp.
Rows: gradkern.standard_beta_grad; torch, dx/da = _dirichlet_grad(x, a, a+b) (1 - x) and
dx/db = -x _dirichlet_grad(1 - x, b, a + b); and the same formulas with gradkern's dirichlet_grad op
(torch's contract, so a + b and 1 - x are rounded to the dtype before the kernel sees them).

Variance. At each grid point, the standard deviation over N = 20000 samples of the per-sample dz/da and
dz/db (float64, fixed seeds) for gradkern.beta_rsample (default "marginal" reparameterization),
beta_rsample(..., reparameterization="gamma") and torch.distributions.Beta(a, b).rsample(); the ratios to
torch, and how far each mean is from the exact dE[z]/da = b/(a+b)^2, dE[z]/db = -a/(a+b)^2 (in standard
errors), a check that every estimator is unbiased.

Speed. Single thread (--threads), float32 and float64, median of --repeats calls after a warm-up, the
gradkern and torch calls alternating (a change of the machine's load falls on both):
standard_beta_grad vs torch's two _dirichlet_grad calls (both partials) on the grid samples tiled to 1e6;
the dirichlet_grad op vs torch._dirichlet_grad (one call each, same contract); Beta rsample forward and
forward + backward of the sum (1e6 elements, the grid's (a, b) tiled); Dirichlet rsample (K = 5, 2e5 rows,
concentrations drawn from the grid values); Gamma sampling, torch.ops.gradkern.standard_gamma vs
torch._standard_gamma (1e6, alpha tiled from the grid values). Ratio = torch time / gradkern time (> 1:
gradkern faster); a ratio within 15% of its goal is re-timed, interleaved, before the verdict.
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

GRID_PARAMS = [0.1, 1.0, 10.0, 100.0]
N_PER_POINT = 500
SEED = 14
STRESS_PARAMS = [(1e-3, 1.0), (1.0, 1e-3), (1e-2, 1e2), (1e2, 1e-2), (1e3, 1e3), (1e4, 10.0)]
STRESS_QUANTILES = [1e-10, 1e-6, 1e-3, 0.1, 0.5, 0.9, 1 - 1e-3, 1 - 1e-6, 1 - 1e-10]
DPS = 30              # mpmath digits of the shipped truth
VERIFY_DPS = 40       # digits of the live re-check (a different precision: it checks the digits too)
VERIFY_POINTS = 24
VERIFY_ULPS = 2
DTYPES = ("float32", "float64")

TRUTH_FILE = os.path.join(C.HERE, "data", "beta_truth.npz")
TRUTH_FORMAT = 1
REGEN_CMD = "python tools/gen_beta_truth.py"

# Issue 14's targets.
TARGET_GRID_MAE = {"float32": 3e-8, "float64": 1e-16}
TARGET_STRESS_MAXREL = {"float32": 1e-5, "float64": 1e-12}

VAR_N = 20000
VAR_SEED = 1400

SPEED_N = 10 ** 6
DIR_K, DIR_ROWS = 5, 200000
SPEED_GOALS = {"standard_beta_grad": 1.0, "Beta rsample": 1.5, "Beta rsample fwd+bwd": 2.0,
               "Dirichlet rsample": 1.5, "Dirichlet rsample fwd+bwd": 2.0, "Gamma sampling": 1.5}
NEAR_BOUND = 0.15
RETIME_ROUNDS = 3

ROW_GK = "gradkern standard_beta_grad"
ROW_TORCH = "torch (_dirichlet_grad formulas)"
ROW_GK_DG = "gradkern dirichlet_grad op (torch's formulas)"
ROWS = (ROW_GK, ROW_TORCH, ROW_GK_DG)


# --- reference (imported by path: no torch, no extension) ------------------------------------------------
_REF = {}
_REF_PKG = "_gradkern_reference_beta"


TruthError = C.TruthError


def ref():
    """gradkern/reference/beta.py, imported by path as a private package (gradkern/__init__ is not run)."""
    if "beta" not in _REF:
        import importlib
        import importlib.util

        d = os.path.join(C.REPO, "gradkern", "reference")
        if _REF_PKG not in sys.modules:
            spec = importlib.util.spec_from_file_location(_REF_PKG, os.path.join(d, "__init__.py"),
                                                          submodule_search_locations=[d])
            mod = importlib.util.module_from_spec(spec)
            sys.modules[_REF_PKG] = mod
            spec.loader.exec_module(mod)
        _REF["beta"] = importlib.import_module(f"{_REF_PKG}.beta")
    return _REF["beta"]


def ref_source_hash():
    """Hash of the code (syntax trees without docstrings) of gradkern/reference/beta.py and _mp.py."""
    import ast
    import hashlib

    h = hashlib.sha1()
    for f in ("beta.py", "_mp.py"):
        with open(os.path.join(C.REPO, "gradkern", "reference", f)) as fh:
            tree = ast.parse(fh.read())
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                    and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
                node.body = body[1:] or [ast.Pass()]
        h.update(ast.dump(tree).encode())
    return h.hexdigest()[:12]


def _mpmath_version():
    import mpmath

    return mpmath.__version__


# --- inputs --------------------------------------------------------------------------------------------
def np_dtype(name):
    import numpy as np

    return {"float32": np.float32, "float64": np.float64}[name]


def clamp_open(x, dtype):
    """Into [tiny, 1 - eps/2] of the dtype, as the samplers' outputs are."""
    import numpy as np

    fi = np.finfo(np_dtype(dtype))
    return np.clip(x, fi.tiny, 1 - fi.eps / 2).astype(np_dtype(dtype))


def round_mpf(v, dtype):
    """An mpmath number correctly rounded (to nearest) to float32 / float64, subnormals included."""
    import mpmath as mp
    import numpy as np

    bits, emin = {"float32": (24, -126), "float64": (53, -1022)}[dtype]
    with mp.workprec(max(mp.mp.prec, 200)):
        v = mp.mpf(v)
        if v == 0:
            return np_dtype(dtype)(0)
        if abs(v) < mp.ldexp(1, emin):  # subnormal: a multiple of 2^(emin - bits + 1)
            q = emin - bits + 1
            r = mp.ldexp(mp.nint(mp.ldexp(v, -q)), q)
        else:
            with mp.workprec(bits):
                r = +v
        return np_dtype(dtype)(float(r))  # r has <= bits significant bits: both conversions exact


def grid_inputs(dtype, seed=SEED):
    """(a, b, x) flat arrays of 16 * 500 grid samples in the dtype (row-major over (a, b))."""
    import numpy as np

    rng = np.random.default_rng(seed)
    a, b, x = [], [], []
    for pa in GRID_PARAMS:
        for pb in GRID_PARAMS:
            x.append(rng.beta(pa, pb, size=N_PER_POINT))
            a.append(np.full(N_PER_POINT, pa))
            b.append(np.full(N_PER_POINT, pb))
    dt = np_dtype(dtype)
    x = clamp_open(np.concatenate(x).astype(dt), dtype)
    return np.concatenate(a).astype(dt), np.concatenate(b).astype(dt), x


def stress_quantile_points(processes=1):
    """[(a, b, q, exact quantile as an mpf)] of the stress set (mpmath inversion, a few seconds)."""
    items = [(a, b, q) for a, b in STRESS_PARAMS for q in STRESS_QUANTILES]
    xs = C.parallel_map(_inverse_item, items, processes=processes, desc="stress quantiles (mpmath)", chunksize=1)
    return [it + (x,) for it, x in zip(items, xs)]


def _inverse_item(item):
    a, b, q = item
    return ref().betaincinv(a, b, q, dps=DPS)


def stress_inputs(dtype, points):
    """(a, b, q, x) arrays of the stress set in the dtype, the [(a, b, q)] dropped (x rounds to 0 or 1), and
    the (a, b) of every point kept (as given, before rounding to the dtype)."""
    import numpy as np

    dt = np_dtype(dtype)
    a, b, q, x, dropped, groups = [], [], [], [], [], []
    for pa, pb, pq, xm in points:
        xr = round_mpf(xm, dtype)
        if not (0 < xr < 1):
            dropped.append((pa, pb, pq))
            continue
        a.append(pa); b.append(pb); q.append(pq); x.append(xr); groups.append((pa, pb))
    return (np.asarray(a, dtype=dt), np.asarray(b, dtype=dt), np.asarray(q, dtype=np.float64),
            np.asarray(x, dtype=dt), dropped, groups)


class Table:
    """Inputs of one ground-truth table: grid or stress, in one dtype, with the key saying what they are."""

    def __init__(self, kind, dtype, seed=SEED, stress_points=None):
        self.kind, self.dtype = kind, dtype
        self.name = f"{kind}-{dtype}"
        if kind == "grid":
            self.a, self.b, self.x = grid_inputs(dtype, seed)
            self.q, self.dropped = None, []
            self.groups = [(pa, pb) for pa in GRID_PARAMS for pb in GRID_PARAMS for _ in range(N_PER_POINT)]
            self.key = {"kind": "grid", "params": GRID_PARAMS, "n": N_PER_POINT, "seed": seed, "dtype": dtype,
                        "sampler": "numpy default_rng(seed).beta(a, b, n) per (a, b), row-major, float64",
                        "rounding": "to dtype, clamped into [tiny, 1 - eps/2]", "dps": DPS}
        else:
            self.a, self.b, self.q, self.x, self.dropped, self.groups = stress_inputs(dtype, stress_points)
            self.key = {"kind": "stress", "params": [list(p) for p in STRESS_PARAMS], "q": STRESS_QUANTILES,
                        "dtype": dtype, "x": "mpmath betaincinv at dps, correctly rounded to dtype; 0 and 1 dropped",
                        "dps": DPS}
        self.seed = seed

    def shippable(self):
        return self.kind == "stress" or self.seed == SEED

    def arrays(self):
        out = {"a": self.a, "b": self.b, "x": self.x}
        if self.q is not None:
            out["q"] = self.q
        return out


def all_tables(seed=SEED, processes=1, dtypes=DTYPES):
    points = stress_quantile_points(processes)
    return [Table(k, d, seed, points) for k in ("grid", "stress") for d in dtypes]


# --- ground truth --------------------------------------------------------------------------------------
def _truth_item(item):
    """(dx/da, dx/db) at one point as floats; NaN where mpmath fails (the point is then left out)."""
    a, b, x, dps = item
    try:
        ga, gb = ref().standard_beta_grad(a, b, x, dps=dps)
        return float(ga), float(gb)
    except Exception:
        return float("nan"), float("nan")


def _items(table, dps, index=None):
    import numpy as np

    a, b, x = (v.astype(np.float64) for v in (table.a, table.b, table.x))
    idx = range(a.size) if index is None else index
    return [(float(a[i]), float(b[i]), float(x[i]), dps) for i in idx]


def compute_truth(table, processes=1, dps=DPS):
    import numpy as np

    t0 = time.time()
    vals = C.parallel_map(_truth_item, _items(table, dps), processes=processes, desc=table.name, chunksize=16)
    print(f"  [ground truth] {table.name}: {table.x.size} points in {time.time() - t0:.1f} s", file=sys.stderr)
    v = np.asarray(vals, dtype=np.float64).reshape(-1, 2)
    return v[:, 0].copy(), v[:, 1].copy()


def _ulps(new, old):
    import numpy as np

    if math.isnan(old) and math.isnan(new):
        return 0.0
    return abs(new - old) / float(np.spacing(abs(old))) if old != 0 else (0.0 if new == 0 else math.inf)


def regenerate_truth(processes=1, path=None, check_points=400):
    """Compute every table with mpmath and write them, their inputs and keys to ``path`` (.npz). Then
    recompute ``check_points`` random points at VERIFY_DPS digits and print the largest difference in ulp
    (a check that DPS digits suffice everywhere)."""
    import numpy as np

    path = path or TRUTH_FILE
    t0 = time.time()
    tables = all_tables(processes=processes)
    arrays = {}
    meta = {"format": TRUTH_FORMAT, "generated_by": REGEN_CMD, "mpmath": _mpmath_version(),
            "ref": ref_source_hash(), "tables": {}}
    truths = {}
    for t in tables:
        for k, v in t.arrays().items():
            arrays[f"{t.name}__{k}"] = v
        ga, gb = compute_truth(t, processes)
        arrays[f"{t.name}__dxda"], arrays[f"{t.name}__dxdb"] = ga, gb
        truths[t.name] = (ga, gb)
        meta["tables"][t.name] = t.key
        bad = int(np.isnan(ga).sum() + np.isnan(gb).sum())
        if bad:
            print(f"  {t.name}: mpmath failed at {bad} values (NaN, left out of the errors)", file=sys.stderr)
    # precision check at more digits
    picks = _pick_points(tables, check_points, np.random.default_rng(0))
    items = [_items(t, VERIFY_DPS, [i])[0] for t, i in picks]
    vals = C.parallel_map(_truth_item, items, processes=processes, desc=f"check at {VERIFY_DPS} digits", chunksize=1)
    worst = max(max(_ulps(n, float(truths[t.name][k][i])) for k, n in enumerate(v)) for (t, i), v in zip(picks, vals))
    meta["check"] = {"points": len(picks), "dps": VERIFY_DPS, "max_ulps": worst}
    # the reference against closed forms and quadrature of the integral definition
    sc = ref()._self_check()
    sc_worst = max(float(r[3]) for r in sc)
    meta["self_check"] = {"cases": len(sc), "max_rel_diff": sc_worst}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + f".tmp{os.getpid()}.npz"
    np.savez_compressed(tmp, __meta__=np.array(json.dumps(meta, sort_keys=True)), **arrays)
    os.replace(tmp, path)
    n = sum(t.x.size for t in tables)
    print(f"wrote {os.path.relpath(path, C.REPO)}: {len(tables)} tables, {n} points, "
          f"{os.path.getsize(path) / 1024:.0f} KiB, in {time.time() - t0:.0f} s; {len(picks)} random points "
          f"recomputed at {VERIFY_DPS} digits differ by at most {worst:g} ulp; reference self-check ({len(sc)} "
          f"closed-form, quadrature and DLMF 8.17.8 cases): max rel. difference {sc_worst:.1e}", file=sys.stderr)
    return path


def read_shipped(path=None):
    """(meta, arrays) of the shipped ground truth."""
    return C.read_truth_file(path or TRUTH_FILE, TRUTH_FORMAT, REGEN_CMD)


_same_bits = C.same_bits


def shipped_truth(table, meta, arrays):
    """(dx/da, dx/db) shipped for ``table``, after checking that the file holds exactly these inputs."""
    where = f"{os.path.relpath(TRUTH_FILE, C.REPO)} [{table.name}]"
    C.check_truth_key(where, meta, table.name, table.key, REGEN_CMD)
    for part, mine in table.arrays().items():
        theirs = arrays.get(f"{table.name}__{part}")
        if theirs is None or not _same_bits(theirs, mine):
            raise TruthError(f"{where}: the inputs ({part}) this script generates differ from the shipped ones "
                             f"(grid, sampling or rounding changed); regenerate it with `{REGEN_CMD}`")
    return arrays[f"{table.name}__dxda"], arrays[f"{table.name}__dxdb"]


_pick_points = C.pick_points


def verify_truth(tables, truths, n, seed, processes=1):
    """Recompute n random shipped points at VERIFY_DPS digits; TruthError if any partial differs by more
    than VERIFY_ULPS ulp. Returns the number of points checked."""
    import numpy as np

    picks = _pick_points(tables, n, np.random.default_rng(seed))
    if not picks:
        return 0
    items = [_items(t, VERIFY_DPS, [i])[0] for t, i in picks]
    vals = C.parallel_map(_truth_item, items, processes=processes, desc="re-verifying ground truth", chunksize=1)
    bad = []
    for (t, i), new in zip(picks, vals):
        for k, name in enumerate(("dx/da", "dx/db")):
            old = float(truths[t.name][k][i])
            if not _ulps(new[k], old) <= VERIFY_ULPS:
                bad.append(f"  {t.name}[{i}] {name}: a={float(t.a[i])!r}, b={float(t.b[i])!r}, "
                           f"x={float(t.x[i])!r}: shipped {old!r}, mpmath now {new[k]!r}")
    if bad:
        raise TruthError(f"{len(bad)} re-verified ground-truth values of {len(picks)} points disagree with mpmath "
                         f"at {VERIFY_DPS} digits by more than {VERIFY_ULPS} ulp (selection seed {seed}):\n"
                         + "\n".join(bad[:10]) + f"\nIf gradkern/reference/beta.py or mpmath changed on purpose, "
                         f"regenerate with `{REGEN_CMD}`.")
    return len(picks)


def load_truth(tables, args, notes):
    """{table name: (dx/da, dx/db)}: shipped (tied to the inputs and spot-checked) or, for another --seed,
    computed with mpmath and cached in bench/.cache/. Returns (truths, description)."""
    truths, shipped, parts = {}, [], []
    meta = arrays = None
    for t in tables:
        if not t.shippable():
            key = dict(t.key, ref=ref_source_hash())
            arr, _ = C.cached_arrays("truth-beta", key, lambda t=t: dict(zip(("dxda", "dxdb"),
                                                                          compute_truth(t, args.processes))))
            truths[t.name] = (arr["dxda"], arr["dxdb"])
            parts.append(f"{t.name} for seed {args.seed} computed with mpmath (cached in bench/.cache/)")
            continue
        if meta is None:
            meta, arrays = read_shipped()
        truths[t.name] = shipped_truth(t, meta, arrays)
        shipped.append(t)
    if shipped:
        if meta.get("ref") != ref_source_hash():
            notes.append("gradkern/reference/beta.py changed since the shipped ground truth was generated; the "
                         f"spot check recomputed with the current file. Regenerate with `{REGEN_CMD}`.")
        if meta.get("mpmath") != _mpmath_version():
            notes.append(f"Shipped ground truth made with mpmath {meta.get('mpmath')}, this run has "
                         f"{_mpmath_version()} (spot-checked).")
        vseed = args.verify_seed if args.verify_seed is not None else int.from_bytes(os.urandom(4), "little")
        nv = verify_truth(shipped, truths, args.verify, vseed, args.processes)
        total = sum(t.x.size for t in shipped)
        how = (f"{nv} of its {total} points, drawn at random (selection seed {vseed}), recomputed with mpmath at "
               f"{VERIFY_DPS} digits this run: both partials agree to {VERIFY_ULPS} ulp" if nv else
               "NOT re-verified against mpmath this run (--verify 0)")
        parts.insert(0, f"shipped in {os.path.relpath(TRUTH_FILE, C.REPO)}; {how}")
    return truths, "; ".join(parts)


# --- accuracy ------------------------------------------------------------------------------------------
def gradient_methods(gk):
    """{row: fn(a, b, x as tensors) -> (dx/da, dx/db)}."""
    import torch

    def torch_pair(a, b, x):
        t = a + b
        return torch._dirichlet_grad(x, a, t) * (1 - x), -x * torch._dirichlet_grad(1 - x, b, t)

    ms = {}
    if gk is not None:
        ops = torch.ops.gradkern
        ms[ROW_GK] = lambda a, b, x: gk.standard_beta_grad(a, b, x)

        def gk_dg(a, b, x):
            t = a + b
            return ops.dirichlet_grad(x, a, t) * (1 - x), -x * ops.dirichlet_grad(1 - x, b, t)
        ms[ROW_GK_DG] = gk_dg
    ms[ROW_TORCH] = torch_pair
    return ms


def evaluate(fn, table, truth):
    """Per-value errors of one method on one table: dict of arrays (both partials stacked: da then db)."""
    import numpy as np
    import torch

    T = lambda v: torch.from_numpy(np.ascontiguousarray(v))  # noqa: E731
    with torch.no_grad():
        ga, gb = fn(T(table.a), T(table.b), T(table.x))
    got = np.concatenate([ga.double().numpy(), gb.double().numpy()])
    tru = np.concatenate(truth)
    ok_truth = np.isfinite(tru)
    fin = np.isfinite(got)
    err = np.abs(got - tru)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = err / np.abs(tru)
    return {"got": got, "truth": tru, "err": err, "rel": rel, "use": ok_truth & fin,
            "nan": int(np.isnan(got[ok_truth]).sum()), "inf": int(np.isinf(got[ok_truth]).sum()),
            "truth_missing": int((~ok_truth).sum())}


def summarize(ev):
    import numpy as np

    u = ev["use"]
    rec = {"mae": float(ev["err"][u].mean()) if u.any() else float("nan"),
           "max_rel": float(ev["rel"][u].max()) if u.any() else float("nan"),
           "nan": ev["nan"], "inf": ev["inf"], "values": int(u.sum())}
    if ev["truth_missing"]:
        rec["truth_missing"] = ev["truth_missing"]
    return rec


def worst_points(ev, table, k=5):
    """[(a, b, x, partial, got, truth, rel)] of the k largest relative errors (non-finite results first)."""
    import numpy as np

    n = table.x.size
    bad = np.where(~np.isfinite(ev["got"]) & np.isfinite(ev["truth"]))[0].tolist()
    order = bad + [i for i in np.argsort(-np.where(ev["use"], ev["rel"], -1.0)) if ev["use"][i]][: k]
    out = []
    for i in order[:k]:
        j = i % n
        out.append({"a": float(table.a[j]), "b": float(table.b[j]), "x": float(table.x[j]),
                    "q": float(table.q[j]) if table.q is not None else None,
                    "partial": "dx/da" if i < n else "dx/db", "got": float(ev["got"][i]),
                    "truth": float(ev["truth"][i]), "rel": float(ev["rel"][i])})
    return out


def run_accuracy(gk, tables, truths, dtypes):
    import numpy as np

    methods = gradient_methods(gk)
    res = {"grid": {}, "stress": {}, "grid_cells": {}, "stress_groups": {}, "worst": {}}
    for t in tables.values():
        evs = {row: evaluate(fn, t, truths[t.name]) for row, fn in methods.items()}
        res[t.kind][t.dtype] = {row: summarize(ev) for row, ev in evs.items()}
        if t.kind == "grid":
            tru = np.concatenate(truths[t.name])
            ok = np.isfinite(tru)
            res.setdefault("ulp_scale", {})[t.dtype] = float(
                np.mean(np.spacing(np.abs(tru[ok]).astype(np_dtype(t.dtype))).astype(np.float64)))
        if ROW_GK_DG in evs:
            ev = evs[ROW_GK_DG]
            n = t.x.size
            res.setdefault("dg_zeros", {})[t.name] = int(((ev["got"] == 0) & (ev["truth"] != 0)).sum())
            u = ev["use"][:n]
            res.setdefault("dg_da_maxrel", {})[t.name] = float(ev["rel"][:n][u].max()) if u.any() else float("nan")
        res["worst"][t.name] = {row: worst_points(ev, t) for row, ev in evs.items() if row != ROW_GK_DG}
        # per (a, b): grid cells, stress groups
        n = t.x.size
        groups = {}
        for j, key in enumerate(t.groups):
            groups.setdefault(key, []).append(j)
        cells = {}
        for key, idx in groups.items():
            idx2 = np.concatenate([np.asarray(idx), np.asarray(idx) + n])
            cells[key] = {}
            for row, ev in evs.items():
                u = ev["use"][idx2]
                cells[key][row] = {"mae": float(ev["err"][idx2][u].mean()) if u.any() else float("nan"),
                                   "max_rel": float(ev["rel"][idx2][u].max()) if u.any() else float("nan"),
                                   "nonfinite": int((~np.isfinite(ev["got"][idx2])).sum()), "points": len(idx)}
        res["grid_cells" if t.kind == "grid" else "stress_groups"][t.dtype] = cells
    return res


def accuracy_checks(acc, dtypes):
    out = []
    for section, metric, targets, label in (("grid", "mae", TARGET_GRID_MAE, "grid mean abs. error"),
                                            ("stress", "max_rel", TARGET_STRESS_MAXREL, "stress set max rel. error")):
        for d in dtypes:
            r = acc[section].get(d, {}).get(ROW_GK)
            if r:
                bad = r["nan"] + r["inf"]
                value = C.sci(r[metric], 2) if metric == "mae" else C.sci(r[metric])
                out.append(("PASS" if r[metric] <= targets[d] and not bad else "FAIL",
                            f"{d} {label} {value} <= {targets[d]:g}, no NaN/inf ({r['nan']}/{r['inf']})"))
    return out


def _fmt_ab(v):
    return f"{v:g}"


def render_accuracy(acc, tables, dtypes, truth_desc, checks):
    L = ["## Accuracy of dx/da and dx/db", "",
         f"Ground truth: mpmath (gradkern/reference/beta.py: mpmath.diff of the smaller tail of the incomplete "
         f"beta function over the density formed in log space) at {DPS} significant digits, rounded to float64; "
         f"{truth_desc}.", "",
         f"Grid: (a, b) in {{{', '.join(_fmt_ab(p) for p in GRID_PARAMS)}}}^2, {N_PER_POINT} samples each "
         f"(NumPy, seed {tables[('grid', dtypes[0])].seed}), rounded to the dtype and clamped into "
         "[tiny, 1 - eps/2]; the truth is computed at the rounded sample. Mean abs. error over all samples "
         "and both partials; max rel. error = max |error| / |truth|.", ""]
    head = ["method"]
    for d in dtypes:
        head += [f"{d} mean abs. error", f"{d} max rel. error", f"{d} NaN/inf"]
    rows = []
    for row in ROWS:
        if row not in acc["grid"].get(dtypes[0], {}):
            continue
        r = [row]
        for d in dtypes:
            g = acc["grid"][d][row]
            r += [C.sci(g["mae"], 2), C.sci(g["max_rel"]), f"{g['nan']}/{g['inf']}"]
        rows.append(r)
    L += [C.markdown_table(head, rows), ""]
    # per cell
    L += ["Mean abs. error per grid point:", ""]
    head = ["(a, b)"] + [f"{short} {d}" for d in dtypes for short in ("gradkern", "torch")]
    rows = []
    cells0 = acc["grid_cells"][dtypes[0]]
    for key in cells0:
        r = [f"({_fmt_ab(key[0])}, {_fmt_ab(key[1])})"]
        for d in dtypes:
            c = acc["grid_cells"][d][key]
            r += [C.sci(c[ROW_GK]["mae"]) if ROW_GK in c else C.DASH, C.sci(c[ROW_TORCH]["mae"])]
        rows.append(r)
    L += [C.markdown_table(head, rows), ""]
    # stress
    L += ["### Stress set", "",
          f"(a, b) in {', '.join(f'({_fmt_ab(a)}, {_fmt_ab(b)})' for a, b in STRESS_PARAMS)}; x at the quantiles "
          f"{', '.join(f'{q:.10g}' for q in STRESS_QUANTILES)} (mpmath), correctly rounded to the dtype; points "
          "whose rounded x is 0 or 1 are dropped.", ""]
    for d in dtypes:
        t = tables[("stress", d)]
        L.append(f"- {d}: {t.x.size} points kept, {len(t.dropped)} dropped")
    L.append("")
    head = ["(a, b)"] + [f"{short} {d}" for d in dtypes for short in ("points", "gradkern max rel.", "torch max rel.")]
    rows = []
    for a, b in STRESS_PARAMS:
        r = [f"({_fmt_ab(a)}, {_fmt_ab(b)})"]
        for d in dtypes:
            c = acc["stress_groups"][d].get((a, b))
            if c is None:
                r += ["0", C.DASH, C.DASH]
                continue
            def cell(row):
                v = c[row]
                s = C.sci(v["max_rel"])
                return s + (f" ({v['nonfinite']} non-finite)" if v["nonfinite"] else "")
            r += [str(c[ROW_TORCH]["points"]), cell(ROW_GK) if ROW_GK in c else C.DASH, cell(ROW_TORCH)]
        rows.append(r)
    L += [C.markdown_table(head, rows), ""]
    head = ["method"] + [f"{d} {k}" for d in dtypes for k in ("max rel. error", "NaN/inf")]
    rows = []
    for row in ROWS:
        if row not in acc["stress"].get(dtypes[0], {}):
            continue
        r = [row]
        for d in dtypes:
            s = acc["stress"][d][row]
            r += [C.sci(s["max_rel"]), f"{s['nan']}/{s['inf']}"]
        rows.append(r)
    L += [C.markdown_table(head, rows), ""]
    L += ["Largest relative errors of gradkern (a, b, x, partial, rel. error):", ""]
    for kind in ("grid", "stress"):
        for d in dtypes:
            w = acc["worst"][f"{kind}-{d}"].get(ROW_GK, [])[:3]
            if w:
                L.append(f"- {kind} {d}: " + "; ".join(
                    f"({_fmt_ab(p['a'])}, {_fmt_ab(p['b'])}, {p['x']:.17g}, {p['partial']}, {C.sci(p['rel'])})"
                    for p in w))
    L += ["", "Targets (issue 14, gradkern standard_beta_grad):"] + [f"- {v}: {t}" for v, t in checks]
    L += ["", "For scale, the mean over the grid's values of one ulp of the truth in the dtype: "
          + ", ".join(f"{d} {C.sci(acc['ulp_scale'][d], 2)}" for d in dtypes) + "."]
    z = acc.get("dg_zeros")
    if z:
        L += ["", "The third row feeds gradkern's dirichlet_grad op (torch._dirichlet_grad's contract) through "
              "torch's formulas, so a + b and 1 - x are rounded to the dtype before the kernel sees them. Where "
              "1 - x rounds to 1 its dx/db = -x dirichlet_grad(1 - x, b, a + b) is 0 (relative error 1): the op "
              "returns 0 at x = 1, while the limit of (dx/dalpha) / (1 - x) there is finite, "
              "(psi(alpha + beta) - psi(alpha)) / beta, and torch._dirichlet_grad returns it. Such zeros: "
              + ", ".join(f"{k} {v}" for k, v in z.items()) + f" values. Its dx/da alone: max rel. error "
              + ", ".join(f"{k} {C.sci(v)}" for k, v in acc["dg_da_maxrel"].items()) + "."]
    return "\n".join(L)


# --- variance ------------------------------------------------------------------------------------------
def run_variance(gk, n=VAR_N, seed=VAR_SEED):
    """Per grid point: std and mean of the per-sample dz/da, dz/db for the three estimators (float64)."""
    import torch
    import torch.distributions as D

    out = []
    k = 0
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        def tqdm(it, **kw):
            return it
    pairs = [(a, b) for a in GRID_PARAMS for b in GRID_PARAMS]
    for a, b in tqdm(pairs, desc="variance", file=sys.stderr, leave=False):
        rec = {"a": a, "b": b, "exact_mean": {"a": b / (a + b) ** 2, "b": -a / (a + b) ** 2}}
        for name in ("torch", "marginal", "gamma"):
            if name != "torch" and gk is None:
                continue
            A = torch.full((n,), a, dtype=torch.float64, requires_grad=True)
            B = torch.full((n,), b, dtype=torch.float64, requires_grad=True)
            s = seed + 100 * k + {"torch": 0, "marginal": 1, "gamma": 2}[name]
            if name == "torch":
                torch.manual_seed(s)
                z = D.Beta(A, B).rsample()
            else:
                g = torch.Generator().manual_seed(s)
                z = gk.beta_rsample(A, B, generator=g, reparameterization=name)
            z.sum().backward()
            r = {}
            for p, G in (("a", A.grad), ("b", B.grad)):
                G = G.double()
                fin = torch.isfinite(G)
                Gf = G[fin]
                m, sd = float(Gf.mean()), float(Gf.std())
                c = Gf - m
                kurt = float((c ** 4).mean() / (c ** 2).mean() ** 2) if sd > 0 else float("nan")
                r[p] = {"std": sd, "mean": m, "nonfinite": int((~fin).sum()), "kurtosis": kurt,
                        # standard error of log(std) (delta method): sqrt((kurtosis - 1) / (4 N))
                        "se_log_std": math.sqrt(max(kurt - 1, 0) / (4 * Gf.numel())),
                        "z": (m - rec["exact_mean"][p]) / (sd / math.sqrt(Gf.numel())) if sd > 0 else float("nan")}
            rec[name] = r
        out.append(rec)
        k += 1
    return out


def render_variance(var):
    L = ["## Gradient variance", "",
         f"Standard deviation over N = {VAR_N} samples of the per-sample dz/da and dz/db, float64, fixed seeds "
         "(each estimator its own draws). marginal: gradkern.beta_rsample (default), the implicit gradient of "
         "the Beta CDF, the estimator torch's Beta approximates; gamma: beta_rsample(..., "
         "reparameterization=\"gamma\"), through the two Gamma components; torch: torch.distributions.Beta"
         "(a, b).rsample(). Ratios are std / torch's std.", ""]
    have = "marginal" in var[0]
    head = ["(a, b)", "torch std dz/da"] + (["marginal / torch", "gamma / torch"] if have else []) + \
           ["torch std dz/db"] + (["marginal / torch", "gamma / torch"] if have else [])
    rows = []
    for r in var:
        row = [f"({_fmt_ab(r['a'])}, {_fmt_ab(r['b'])})"]
        for p in ("a", "b"):
            ts = r["torch"][p]["std"]
            row.append(C.sci(ts, 2))
            if have:
                row += [f"{r['marginal'][p]['std'] / ts:.3f}", f"{r['gamma'][p]['std'] / ts:.3f}"]
        rows.append(row)
    L += [C.markdown_table(head, rows), ""]
    if have:
        import statistics

        for name in ("marginal", "gamma"):
            rs = [r[name][p]["std"] / r["torch"][p]["std"] for r in var for p in ("a", "b")]
            zs = [abs(math.log(r[name][p]["std"] / r["torch"][p]["std"]))
                  / math.hypot(r[name][p]["se_log_std"], r["torch"][p]["se_log_std"]) for r in var for p in ("a", "b")]
            L.append(f"- {name} / torch over the 32 (point, partial) pairs: median {statistics.median(rs):.3f}, "
                     f"range {min(rs):.3f}-{max(rs):.3f}; largest |log ratio| {max(zs):.1f} standard errors (each "
                     "std's sampling error from its sample kurtosis, delta method)")
    for name in ("torch", "marginal", "gamma"):
        if name not in var[0]:
            continue
        zs = [(abs(r[name][p]["z"]), r, p) for r in var for p in ("a", "b")]
        zmax, r, p = max(zs, key=lambda t: t[0])
        nf = sum(r2[name][p2]["nonfinite"] for r2 in var for p2 in ("a", "b"))
        L.append(f"- {name}: mean of dz/da, dz/db vs the exact dE[z]/d(a, b): largest deviation {zmax:.1f} standard "
                 f"errors (at ({_fmt_ab(r['a'])}, {_fmt_ab(r['b'])}), d/d{p}); {nf} non-finite gradients")
    return "\n".join(L)


# --- speed ---------------------------------------------------------------------------------------------
fb = C.forward_backward


def speed_cases(gk, tables, dtype, n):
    """[(label, goal key or None, gradkern fn, torch fn, elements per call)]."""
    import numpy as np
    import torch
    import torch.distributions as D

    ops = torch.ops.gradkern
    tdt = getattr(torch, dtype)
    t = tables[("grid", dtype)]
    reps = math.ceil(n / t.x.size)
    A, Bp, X = (torch.from_numpy(np.tile(v, reps)[:n].copy()) for v in (t.a, t.b, t.x))
    TT = A + Bp

    def torch_pair():
        return torch._dirichlet_grad(X, A, TT) * (1 - X), -X * torch._dirichlet_grad(1 - X, Bp, TT)

    pairs = [(pa, pb) for pa in GRID_PARAMS for pb in GRID_PARAMS]
    pa = torch.tensor([p[0] for p in pairs], dtype=tdt).repeat(math.ceil(n / len(pairs)))[:n]
    pb = torch.tensor([p[1] for p in pairs], dtype=tdt).repeat(math.ceil(n / len(pairs)))[:n]
    rng = np.random.default_rng(SEED)
    conc = torch.from_numpy(rng.choice(GRID_PARAMS, size=(DIR_ROWS, DIR_K))).to(tdt)
    alpha = torch.tensor(GRID_PARAMS, dtype=tdt).repeat(math.ceil(n / len(GRID_PARAMS)))[:n]
    g = torch.Generator().manual_seed(1)
    nd = DIR_ROWS * DIR_K
    return [
        ("standard_beta_grad (both partials)", "standard_beta_grad", "torch: 2 x _dirichlet_grad + formulas",
         lambda: gk.standard_beta_grad(A, Bp, X), torch_pair, n),
        ("dirichlet_grad op (one partial)", None, "torch._dirichlet_grad",
         lambda: ops.dirichlet_grad(X, A, TT), lambda: torch._dirichlet_grad(X, A, TT), n),
        ("Beta rsample", "Beta rsample", "distributions.Beta.rsample",
         lambda: gk.beta_rsample(pa, pb, generator=g), lambda: D.Beta(pa, pb).rsample(), n),
        ("Beta rsample fwd+bwd", "Beta rsample fwd+bwd", "distributions.Beta.rsample fwd+bwd",
         fb(lambda p, q: gk.beta_rsample(p, q, generator=g), pa, pb),
         fb(lambda p, q: D.Beta(p, q).rsample(), pa, pb), n),
        (f"Dirichlet rsample (K={DIR_K})", "Dirichlet rsample", "distributions.Dirichlet.rsample",
         lambda: gk.dirichlet_rsample(conc, generator=g), lambda: D.Dirichlet(conc).rsample(), nd),
        (f"Dirichlet rsample (K={DIR_K}) fwd+bwd", "Dirichlet rsample fwd+bwd",
         "distributions.Dirichlet.rsample fwd+bwd",
         fb(lambda c: gk.dirichlet_rsample(c, generator=g), conc), fb(lambda c: D.Dirichlet(c).rsample(), conc), nd),
        ("Gamma sampling: ops.standard_gamma", "Gamma sampling", "torch._standard_gamma",
         lambda: ops.standard_gamma(alpha, g), lambda: torch._standard_gamma(alpha), n),
    ]


def interleaved_times(f_gk, f_t, repeats, warmup=1):
    """Seconds per call of f_gk and f_t, medians over ``repeats`` rounds that call each once in turn (so a
    change of the machine's load during the measurement falls on both), after ``warmup`` rounds; and the
    per-round ratios t / gk."""
    import statistics

    for _ in range(warmup):
        f_gk(); f_t()
    tg, tt = [], []
    for _ in range(repeats):
        t0 = time.perf_counter(); f_gk(); t1 = time.perf_counter(); f_t(); t2 = time.perf_counter()
        tg.append(t1 - t0); tt.append(t2 - t1)
    return statistics.median(tg), statistics.median(tt), [b / a for a, b in zip(tg, tt)]


def run_speed(gk, tables, dtypes, n, repeats):
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        def tqdm(it, **kw):
            return it
    out = []
    load = [os.getloadavg()[0]] if hasattr(os, "getloadavg") else []
    work = [(d, c) for d in dtypes for c in speed_cases(gk, tables, d, n)]
    for d, (label, goal, peer, f_gk, f_t, ne) in tqdm(work, desc="timing", file=sys.stderr, leave=False):
        tg, tt, rr = interleaved_times(f_gk, f_t, repeats)
        rec = {"dtype": d, "label": label, "goal_key": goal, "peer": peer, "elements": ne,
               "gradkern_s": tg, "torch_s": tt, "ratio": tt / tg, "round_ratios": rr}
        g = SPEED_GOALS.get(goal) if goal else None
        if g is not None and abs(rec["ratio"] / g - 1) <= NEAR_BOUND:
            spread = [rec["ratio"]]
            for _ in range(RETIME_ROUNDS):
                tg2, tt2, _ = interleaved_times(f_gk, f_t, repeats, warmup=0)
                spread.append(tt2 / tg2)
            rec["spread"] = spread
        out.append(rec)
    if load:
        load.append(os.getloadavg()[0])
        for r in out:
            r["loadavg_1min_before_after"] = load
    return out


def speed_checks(speed):
    out = []
    for r in speed:
        goal = SPEED_GOALS.get(r["goal_key"]) if r["goal_key"] else None
        if goal is None:
            continue
        text = f"{r['dtype']} {r['label']}: torch / gradkern = {r['ratio']:.2f}x (goal >= {goal:g}x)"
        if r.get("spread"):
            lo, hi = min(r["spread"]), max(r["spread"])
            text += f"; near the goal, re-timed: {lo:.2f}-{hi:.2f}x over {len(r['spread'])} measurements"
            verdict = "PASS" if lo >= goal else "FAIL" if hi < goal else "WITHIN NOISE"
        else:
            verdict = "PASS" if r["ratio"] >= goal else "FAIL"
        out.append((verdict, text))
    return out


def render_speed(speed, threads, n, repeats, checks):
    L = ["## Speed", "",
         f"CPU, {threads} thread(s); {n:g} elements per call ({DIR_ROWS:g} rows of K = {DIR_K} for Dirichlet), "
         f"median of {repeats} calls after a warm-up, gradkern's and torch's calls alternating. Forward rows: "
         "parameters without gradient; fwd+bwd: "
         "sample, sum, backward, with fresh leaf parameters. Ratio = torch time / gradkern time (> 1: gradkern "
         "faster).", ""]
    load = speed[0].get("loadavg_1min_before_after") if speed else None
    if load:
        L[-2] += (f" Load average (1 min) of the machine before / after the timings: {load[0]:.2f} / {load[1]:.2f} "
                  f"on {os.cpu_count()} logical cores (other work on the machine slows both sides unevenly).")
    dtypes = sorted({r["dtype"] for r in speed}, key=DTYPES.index)
    for d in dtypes:
        rows = [[r["label"], r["peer"], C.sci(r["gradkern_s"], 2), C.sci(r["torch_s"], 2), f"{r['ratio']:.2f}x",
                 f"{SPEED_GOALS[r['goal_key']]:g}x" if r["goal_key"] else C.DASH]
                for r in speed if r["dtype"] == d]
        L += [f"### {d}", "", C.markdown_table(["gradkern", "torch", "gradkern (s/call)", "torch (s/call)", "ratio",
                                                 "goal"], rows, align=["l", "l", "r", "r", "r", "r"]), ""]
    L += ["Goals (issue 14):"] + [f"- {v}: {t}" for v, t in checks]
    return "\n".join(L)


# --- main ----------------------------------------------------------------------------------------------
def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1, help="torch threads for the timings (default 1)")
    ap.add_argument("--json", metavar="PATH", help="write all numbers to PATH")
    ap.add_argument("--docs", action="store_true", help="write the sections into docs/beta.md")
    ap.add_argument("--seed", type=int, default=SEED,
                    help=f"grid sample seed (default {SEED}; any other has no shipped truth: computed, ~40 s)")
    ap.add_argument("--processes", type=int, default=1, help="processes for mpmath (default 1)")
    ap.add_argument("--verify", type=int, default=VERIFY_POINTS,
                    help=f"shipped points to recompute with mpmath this run (default {VERIFY_POINTS})")
    ap.add_argument("--verify-seed", type=int, default=None, help="seed of that selection (default: fresh)")
    ap.add_argument("--regenerate-truth", action="store_true",
                    help=f"recompute {os.path.relpath(TRUTH_FILE, C.REPO)} and exit (same as `{REGEN_CMD}`)")
    ap.add_argument("--no-variance", action="store_true")
    ap.add_argument("--no-time", action="store_true")
    ap.add_argument("--n", type=int, default=SPEED_N, help=f"elements per timed call (default {SPEED_N:g})")
    ap.add_argument("--repeats", type=int, default=7, help="timed calls per op (default 7)")
    ap.add_argument("--dtypes", default="float32,float64")
    return ap.parse_args(argv)


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

    # 1. inputs and ground truth (before torch starts its threads)
    points = stress_quantile_points(args.processes)
    tables = {(k, d): Table(k, d, args.seed, points) for k in ("grid", "stress") for d in dtypes}
    try:
        truths, truth_desc = load_truth(list(tables.values()), args, notes)
    except TruthError as e:
        print(f"beta.py: ground truth refused: {e}", file=sys.stderr)
        return 3
    t_truth = time.time() - t_start

    # 2. measurements
    threads = C.set_torch_threads(args.threads)
    gk, gk_note = C.import_gradkern()
    if gk is None:
        notes.append(f"gradkern rows skipped: {gk_note}")
    results = {"machine": C.machine_description(), "threads": threads, "seed": args.seed, "truth": truth_desc,
               "notes": notes}
    acc = run_accuracy(gk, tables, truths, dtypes)
    acc_checks = accuracy_checks(acc, dtypes)
    results["accuracy"] = {k: v for k, v in acc.items() if k not in ("grid_cells", "stress_groups")}
    results["accuracy"]["grid_cells"] = {d: {f"{k[0]:g},{k[1]:g}": v for k, v in c.items()}
                                         for d, c in acc["grid_cells"].items()}
    results["accuracy"]["stress_groups"] = {d: {f"{k[0]:g},{k[1]:g}": v for k, v in c.items()}
                                            for d, c in acc["stress_groups"].items()}
    results["stress_dropped"] = {d: tables[("stress", d)].dropped for d in dtypes}
    sections = {"beta-accuracy": render_accuracy(acc, tables, dtypes, truth_desc, acc_checks)}
    checks = list(acc_checks)
    if not args.no_variance:
        var = run_variance(gk)
        results["variance"] = var
        sections["beta-variance"] = render_variance(var)
    if not args.no_time and gk is not None:
        speed = run_speed(gk, tables, dtypes, args.n, args.repeats)
        sp_checks = speed_checks(speed)
        results["speed"] = speed
        sections["beta-speed"] = render_speed(speed, threads, args.n, args.repeats, sp_checks)
        checks += sp_checks
    results["checks"] = [{"verdict": v, "check": t} for v, t in checks]
    t_total = time.time() - t_start
    results["seconds"] = {"ground_truth": t_truth, "total": t_total}
    footer = f"Run time: inputs and ground truth {t_truth:.1f} s, total {t_total:.0f} s."
    if notes:
        footer = "Notes:\n" + "\n".join(f"- {n}" for n in notes) + "\n\n" + footer
    last = list(sections)[-1]
    sections[last] += "\n\n" + footer
    print(f"Machine: {results['machine']}.\n\n" + "\n\n".join(sections.values()))
    if args.json:
        C.write_json(args.json, results)
    if args.docs:
        shown, skip = [], False
        for a in argv:
            if skip or a.startswith("--json"):
                skip = a == "--json"
                continue
            shown.append(a)
        cmd = "python bench/beta.py" + "".join(f" {a}" for a in shown)
        for name, md in sections.items():
            path = C.write_doc_section("beta.md", name, md, command=cmd)
        print(f"\n(wrote {os.path.relpath(path, C.REPO)})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
