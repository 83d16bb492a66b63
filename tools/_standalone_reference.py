"""gradkern/reference loaded as a package of its own (pure Python) for the long-running generators in tools/:
importing gradkern would load the built extension, which a rebuild may overwrite while such a run is going."""
import importlib
import importlib.util
import os
import sys

_PKG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "gradkern", "reference")


def load(module):
    """gradkern.reference.<module> without importing gradkern (e.g. load("gamma"))."""
    if "gk_reference" not in sys.modules:
        spec = importlib.util.spec_from_file_location("gk_reference", os.path.join(_PKG, "__init__.py"),
                                                      submodule_search_locations=[_PKG])
        mod = importlib.util.module_from_spec(spec)
        sys.modules["gk_reference"] = mod
        spec.loader.exec_module(mod)
    return importlib.import_module(f"gk_reference.{module}")
