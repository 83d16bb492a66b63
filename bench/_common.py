"""Helpers shared by the bench/ scripts: importing gradkern, thread control, timing, ground-truth
cache, parallel map with a progress bar, markdown tables and JSON output.

Nothing here is part of the gradkern package; the scripts run as ``python bench/<name>.py`` from the
repository root (sys.path[0] is then bench/, so this module imports as ``_common``).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CACHE_DIR = os.path.join(HERE, ".cache")
OUT_DIR = os.path.join(HERE, "out")


# --- threads (call before importing torch / jax) -----------------------------------------------------
def limit_threads_env(threads):
    """Set the thread-count environment of OpenMP/MKL/XLA before those libraries are imported, so that
    peers (JAX, NumPy) are timed under the same thread budget as torch."""
    if threads is None:
        return
    n = str(int(threads))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = n
    if int(threads) == 1:
        flags = os.environ.get("XLA_FLAGS", "")
        extra = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        if "xla_cpu_multi_thread_eigen" not in flags:
            os.environ["XLA_FLAGS"] = (flags + " " + extra).strip()


def set_torch_threads(threads):
    import torch

    if threads is not None:
        torch.set_num_threads(int(threads))
    return torch.get_num_threads()


# --- gradkern import ---------------------------------------------------------------------------------
def import_gradkern():
    """Return (gradkern module or None, note). Prefers the checkout this script belongs to when its
    extension has been built in place (python setup.py build_ext --inplace), so that a developer's run
    never times a stale installed copy; otherwise the installed package (pip install .)."""
    import glob

    if glob.glob(os.path.join(REPO, "gradkern", "_C*")) and sys.path[:1] != [REPO]:
        sys.path.insert(0, REPO)
        sys.modules.pop("gradkern", None)
    try:
        import gradkern  # noqa: F401
    except ImportError:
        if REPO not in sys.path:
            sys.path.insert(0, REPO)
        sys.modules.pop("gradkern", None)
        try:
            import gradkern  # noqa: F401
        except Exception as e:  # extension not built yet, or a broken build
            return None, f"gradkern not importable ({type(e).__name__}: {e})"
    except Exception as e:
        return None, f"gradkern not importable ({type(e).__name__}: {e})"
    import gradkern

    return gradkern, f"gradkern from {os.path.dirname(gradkern.__file__)}"


def import_reference(name):
    """gradkern.reference.<name> (pure-Python mpmath ground truth); importable without the extension."""
    import importlib

    if REPO not in sys.path:
        sys.path.append(REPO)
    try:
        return importlib.import_module(f"gradkern.reference.{name}"), None
    except Exception as e:
        # gradkern/__init__ may fail to import when the extension is not built; load the file directly.
        path = os.path.join(REPO, "gradkern", "reference", f"{name}.py")
        if not os.path.exists(path):
            return None, f"gradkern/reference/{name}.py not found"
        import importlib.util

        spec = importlib.util.spec_from_file_location(f"_gk_reference_{name}", path)
        mod = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(mod)
        except Exception as e2:  # pragma: no cover
            return None, f"gradkern/reference/{name}.py failed to import ({e}; {e2})"
        return mod, None


# --- timing ------------------------------------------------------------------------------------------
def sync(device):
    if device is not None and str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def time_per_element(fn, n_elements, repeats=5, warmup=1, device="cpu", block=None,
                     min_total_elements=10**6, budget_s=None):
    """Median over repeats of (wall time of one call of fn) / n_elements.

    fn processes n_elements per call. Warm-up calls come first. The number of repeats is raised so
    that repeats * n_elements >= min_total_elements, and lowered (never below 3 and never below the
    element minimum) when a call is slow and budget_s is given. ``block(result)`` waits for async
    results (JAX's block_until_ready); CUDA is synchronised around every call.
    """
    for _ in range(warmup):
        r = fn()
        if block is not None:
            block(r)
        sync(device)
    need = max(repeats, math.ceil(min_total_elements / n_elements))
    times = []
    t_start = time.perf_counter()
    while True:
        sync(device)
        t0 = time.perf_counter()
        r = fn()
        if block is not None:
            block(r)
        sync(device)
        times.append(time.perf_counter() - t0)
        done = len(times)
        floor = max(3, math.ceil(min_total_elements / n_elements))
        if done >= need:
            break
        if budget_s is not None and done >= floor and time.perf_counter() - t_start > budget_s:
            break
    times.sort()
    return times[len(times) // 2] / n_elements


# --- CUDA timing ---------------------------------------------------------------------------------------
# The GPU columns of the benches: CUDA events around each call after warm-up calls, tens of millions
# of elements per launch, and the throughput set against the device-to-device copy measured in the same
# run (the memory-bandwidth limit an elementwise op can reach).
CUDA_ELEMENTS = 1 << 25  # elements per launch on CUDA (33.5 million)
NOMINAL_BANDWIDTH = {"H200": 4.8e12, "H100": 3.35e12}  # bytes/s by the vendors' datasheets


def cuda_event_time(fn, n_elements, repeats=5, warmup=2):
    """Median over repeats of (CUDA-event time of one call of fn) / n_elements, after warm-up calls.
    The events are recorded on the current stream around the call, so host gaps inside fn (a
    sampler's rejection loop that synchronises) are counted, as they are in the caller's time."""
    import torch

    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    times.sort()
    return times[len(times) // 2] / n_elements


def wall_time_blocked(fn, n_elements, block, repeats=5, warmup=2):
    """Median wall time per element of fn() waited for with block(result): JAX on the GPU, whose
    streams torch's events do not see."""
    for _ in range(warmup):
        block(fn())
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        block(fn())
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2] / n_elements


def cuda_copy_bandwidth(nbytes=1 << 31, repeats=10):
    """Bytes per second of a device-to-device copy of nbytes (read + written), CUDA-event timed."""
    import torch

    src = torch.ones(nbytes // 4, dtype=torch.float32, device="cuda")
    dst = torch.empty_like(src)
    t = cuda_event_time(lambda: dst.copy_(src), 1, repeats=repeats, warmup=2)
    del src, dst
    torch.cuda.empty_cache()
    return 2 * nbytes / t


def nominal_bandwidth():
    """(name, bytes/s) of the device's datasheet memory bandwidth, or (None, None) when unknown."""
    import torch

    name = torch.cuda.get_device_name()
    for key, bw in NOMINAL_BANDWIDTH.items():
        if key in name:
            return key, bw
    return None, None


def bandwidth_note(copy_bw):
    key, bw = nominal_bandwidth()
    note = f"device-to-device copy in this run: {copy_bw / 1e12:.2f} TB/s (bytes read + written)"
    if bw:
        note += f", {copy_bw / bw:.0%} of the {key}'s nominal {bw / 1e12:.2f} TB/s"
    return note


def jax_on_gpu():
    """The JAX module when its default backend is a GPU, else None (its columns are then left out of
    the CUDA tables rather than mixing CPU times into them). JAX is kept from preallocating most of
    the device's memory."""
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    try:
        import jax

        return jax if jax.default_backend() == "gpu" else None
    except Exception:
        return None


# --- cache ---------------------------------------------------------------------------------------------
def cache_key(**key):
    return hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cache_path(name, **key):
    os.makedirs(CACHE_DIR, exist_ok=True)
    return os.path.join(CACHE_DIR, f"{name}-{cache_key(**key)}.npz")


def cached_arrays(name, key, compute):
    """Load a dict of NumPy arrays from bench/.cache/<name>-<hash(key)>.npz, or compute and store it.
    The key (grid, seed, dtype, method version) is stored alongside and checked on load."""
    import numpy as np

    path = cache_path(name, **key)
    kjson = json.dumps(key, sort_keys=True, default=str)
    if os.path.exists(path):
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["__key__"]) == kjson:
                    return {k: z[k] for k in z.files if k != "__key__"}, True
        except Exception:
            pass
    arrays = compute()
    tmp = path + f".tmp{os.getpid()}.npz"
    np.savez(tmp, __key__=np.array(kjson), **arrays)
    os.replace(tmp, path)
    return arrays, False


# --- parallel map with progress bar --------------------------------------------------------------------
def parallel_map(fn, items, processes=None, desc="", chunksize=8):
    """[fn(item) for item in items] over a process pool with a tqdm bar (order preserved).
    fn must be a picklable top-level function."""
    items = list(items)
    if processes is None:
        processes = min(2, os.cpu_count() or 1)
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        def tqdm(it, **kw):
            return it
    if processes <= 1 or len(items) < 2 * chunksize:
        return [fn(it) for it in tqdm(items, desc=desc, file=sys.stderr, leave=False)]
    import multiprocessing as mp

    ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with ctx.Pool(processes) as pool:
        return list(tqdm(pool.imap(fn, items, chunksize=chunksize), total=len(items), desc=desc,
                         file=sys.stderr, leave=False))



def forward_backward(sampler, *params):
    """A timed call: forward + backward of ``sampler(*params).sum()`` with fresh leaf copies of the
    parameters; returns the first parameter's gradient, so the call cannot be optimised away."""
    def f():
        ps = [p.detach().requires_grad_() for p in params]
        sampler(*ps).sum().backward()
        return ps[0].grad
    return f


# --- formatting ------------------------------------------------------------------------------------------
DASH = "–"


def sci(v, digits=1):
    if v is None:
        return DASH
    if isinstance(v, str):
        return v
    if v != v:
        return "nan"
    if v == 0:
        return "0"
    if math.isinf(v):
        return "inf"
    return f"{v:.{digits}e}"


def markdown_table(headers, rows, align=None):
    cols = len(headers)
    widths = [max(len(str(headers[i])), *(len(str(r[i])) for r in rows)) for i in range(cols)]
    align = align or ["l"] + ["r"] * (cols - 1)

    def fmt(cells):
        out = []
        for i, c in enumerate(cells):
            c = str(c)
            out.append(c.ljust(widths[i]) if align[i] == "l" else c.rjust(widths[i]))
        return "| " + " | ".join(out) + " |"

    sep = "|" + "|".join(("-" * (w + 1) + ":") if a == "r" else ("-" * (w + 2))
                         for w, a in zip(widths, align)) + "|"
    return "\n".join([fmt(headers), sep] + [fmt(r) for r in rows])


def machine_description(device="cpu"):
    import torch

    cpu = platform.processor() or platform.machine()
    isa = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and cpu == (platform.processor() or platform.machine()):
                    cpu = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    # The widest vector ISA gradkern's CPU loops select at run time (csrc/cpu/elementwise.cpp;
                    # the Gamma gradient's bulk path has an AVX-512 variant): figures differ between hosts.
                    flags = line.split(":", 1)[1].split()
                    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
                    break
    except OSError:
        pass
    if isa:
        cpu += f" ({isa})"
    desc = f"{cpu}, {os.cpu_count()} logical cores, torch {torch.__version__}, Python {platform.python_version()}"
    if str(device).startswith("cuda") and torch.cuda.is_available():
        desc += f", GPU {torch.cuda.get_device_name()}"
    return desc


def write_json(path, obj):
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)

    def clean(o):
        if isinstance(o, dict):
            return {str(k): clean(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [clean(v) for v in o]
        if isinstance(o, float) and (o != o or math.isinf(o)):
            return str(o)
        if hasattr(o, "item") and not isinstance(o, (str, bytes)):
            try:
                return clean(o.item())
            except Exception:
                return str(o)
        return o

    with open(path, "w") as f:
        json.dump(clean(obj), f, indent=2)


# --- docs/ sections ---------------------------------------------------------------------------------
DOCS_DIR = os.path.join(REPO, "docs")


def write_doc_section(doc, name, markdown, command=None, device="cpu"):
    """Replace the section ``name`` of ``docs/<doc>`` with ``markdown``.

    A section is the text between ``<!-- bench:NAME:begin -->`` and ``<!-- bench:NAME:end -->``; it is
    appended to the file when the markers are missing (the file is created if needed). The section
    starts with the command that produced it, the date and the machine, so every figure in docs/ says
    where it came from. Returns the path written."""
    import datetime

    path = os.path.join(DOCS_DIR, doc)
    begin, end = f"<!-- bench:{name}:begin -->", f"<!-- bench:{name}:end -->"
    header = []
    if command:
        header.append(f"Measured by `{command}` on {datetime.date.today().isoformat()}; "
                      f"machine: {machine_description(device)}.")
        header.append("")
    body = "\n".join([begin, *header, markdown.strip(), end])
    text = ""
    if os.path.exists(path):
        with open(path) as f:
            text = f.read()
    if begin in text and end in text:
        pre, rest = text.split(begin, 1)
        _, post = rest.split(end, 1)
        text = pre + body + post
    else:
        text = (text.rstrip() + "\n\n" if text.strip() else "") + body + "\n"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


# --- shipped mpmath ground truth (bench/accuracy.py, bench/beta.py) -----------------------------------------
class TruthError(Exception):
    """The shipped ground truth does not belong to these inputs, or mpmath disagrees with it."""


def read_truth_file(path, fmt, regen_cmd):
    """(meta, arrays) of a shipped ground-truth .npz (its JSON key under ``__meta__``), refusing a missing
    file or another format with the command that regenerates it."""
    import numpy as np

    rel = os.path.relpath(path, REPO)
    if not os.path.exists(path):
        raise TruthError(f"{rel} is missing; regenerate it with `{regen_cmd}`")
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("__meta__")))
    if meta.get("format") != fmt:
        raise TruthError(f"{rel} has format {meta.get('format')}, this script reads {fmt}; regenerate it with "
                         f"`{regen_cmd}`")
    return meta, arrays


def same_bits(a, b):
    """The two arrays are identical bit for bit (dtype, shape and bytes)."""
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def check_truth_key(where, meta, name, key, regen_cmd):
    """The shipped table ``name`` exists and was made for exactly these settings ``key``."""
    shipped = meta["tables"].get(name)
    if shipped is None:
        raise TruthError(f"{where}: no such table; regenerate it with `{regen_cmd}`")
    norm = lambda k: json.dumps(k, sort_keys=True)  # noqa: E731
    if norm(shipped) != norm(key):
        diff = sorted(k for k in set(shipped) | set(key) if shipped.get(k) != key.get(k))
        raise TruthError(f"{where}: made for other settings (differs in {', '.join(diff)}); "
                         f"regenerate it with `{regen_cmd}`")


def pick_points(tables, n, rng):
    """n random (table, flat index) pairs spread evenly over the tables (each with an array ``x``)."""
    per = max(1, math.ceil(n / max(1, len(tables)))) if n > 0 else 0
    out = []
    for t in tables:
        k = min(per, t.x.size)
        out += [(t, int(i)) for i in sorted(rng.choice(t.x.size, size=k, replace=False))]
    return out
