"""Build gradkern's native extension (gradkern._C).

The extension is compiled against the torch that is already installed: pyproject.toml deliberately does
not list torch as a build requirement, and the documented install uses --no-build-isolation, so that pip
never pulls a second torch into an isolated build environment (the extension would then be built against
the wrong ABI).

Environment:
  GRADKERN_CUDA=1   build the CUDA kernels (fails if nvcc or a CUDA build of torch is missing)
  GRADKERN_CUDA=0   never build them
  unset             build them when nvcc is found and torch is a CUDA build
"""
import glob
import os
import sys

from setuptools import find_packages, setup

try:
    import torch
    from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension
except ImportError:  # pragma: no cover - exercised only on a machine without torch
    sys.exit(
        "gradkern: torch must be installed before building, and pip must not isolate the build:\n"
        "    pip install torch && pip install --no-build-isolation .")

HERE = os.path.dirname(os.path.abspath(__file__))

# One compile job per core (ninja's own default is cores + 2, which on a 2-core machine only adds memory
# pressure); MAX_JOBS set by the caller wins. The extension is 8 translation units; on 2 cores the build
# takes about 3 minutes, most of it in csrc/cpu/elementwise.cpp (three instruction-set clones).
os.environ.setdefault("MAX_JOBS", str(max(1, os.cpu_count() or 1)))


def _want_cuda():
    flag = os.environ.get("GRADKERN_CUDA")
    available = torch.version.cuda is not None and CUDA_HOME is not None
    if flag is None:
        return available
    if flag not in ("0", "1"):
        sys.exit(f"gradkern: GRADKERN_CUDA must be 0 or 1, got {flag!r}")
    if flag == "1" and not available:
        sys.exit("gradkern: GRADKERN_CUDA=1 but torch is not a CUDA build or nvcc was not found "
                 f"(torch.version.cuda={torch.version.cuda}, CUDA_HOME={CUDA_HOME})")
    return flag == "1"


def _extension():
    with_cuda = _want_cuda()
    sources = sorted(glob.glob(os.path.join("csrc", "*.cpp")) + glob.glob(os.path.join("csrc", "cpu", "*.cpp")))
    # -fno-math-errno and -fno-trapping-math change no result (they drop errno writes and the
    # preservation of FP exception flags, which nothing here reads); without them GCC keeps a libm call
    # path around sqrt and will not if-convert selects, so the sampler loops (cpu/vonmises_block.h) do
    # not vectorize.
    cxx = ["-O3", "-std=c++17", "-fvisibility=hidden", "-fno-math-errno", "-fno-trapping-math"]
    link = []
    if sys.platform.startswith("linux"):
        # at::parallel_for is an inline OpenMP region (ATen/ParallelOpenMP.h): without -fopenmp the loops
        # in our own kernels would run on one thread. libgomp.so.1 is the runtime torch already loaded.
        cxx.append("-fopenmp")
        link.append("-fopenmp")
    # ATen's gpu_kernel (ATen/native/cuda/Loops.cuh) uses __device__ lambdas internally.
    nvcc = ["-O3", "-std=c++17", "--expt-relaxed-constexpr", "--extended-lambda", "-lineinfo"]
    define_macros = []
    if with_cuda:
        sources += sorted(glob.glob(os.path.join("csrc", "cuda", "*.cu")))
        define_macros.append(("GRADKERN_WITH_CUDA", "1"))
        ext_cls = CUDAExtension
        extra = {"cxx": cxx, "nvcc": nvcc}
    else:
        ext_cls = CppExtension
        extra = {"cxx": cxx}
    print(f"gradkern: torch {torch.__version__}, CUDA kernels: {'on' if with_cuda else 'off'}, "
          f"{len(sources)} sources, {os.environ['MAX_JOBS']} parallel jobs", flush=True)
    return ext_cls(
        name="gradkern._C",
        sources=sources,
        include_dirs=[os.path.join(HERE, "csrc")],
        define_macros=define_macros,
        extra_compile_args=extra,
        extra_link_args=link,
    )


setup(
    packages=find_packages(include=["gradkern", "gradkern.*"]),
    ext_modules=[_extension()],
    cmdclass={"build_ext": BuildExtension},
)
