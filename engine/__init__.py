"""ruimtepuzzel: spatial conflict optimisation for Dutch spatial planning.

The solver is usable without any files::

    import engine
    p = engine.Problem(value=V, contribution=C, zones=Z, lower=[LO], upper=[HI])
    sol = engine.solve(p)
"""

import warnings

from engine.caches import use_numba_cache

# Before any module of the package decorates a kernel: they cache in the package's cache.
use_numba_cache()

# rasterio wraps an array in a dataset (rasterize, reproject) inside warnings.catch_warnings
# with every warning ignored: the dataset reads its geotransform before it sets the one
# given. catch_warnings is not thread-safe: while another thread enters and leaves such a
# block (numba compiling the kernels beside a first run's grid build, the build's own
# tiles) the warning escapes to the user. Set here, before any thread of the package
# starts, so that every block restores it; a file read without georeferencing still warns.
warnings.filterwarnings(
    "ignore", message="Dataset has no geotransform", module=r"rasterio\.(features|warp)$"
)

from engine.errors import RuimtepuzzelError  # noqa: E402
from engine.problem import Problem  # noqa: E402
from engine.solve import InfeasibleError, Solution, WarmStartError, solve  # noqa: E402

__all__ = [
    "Problem",
    "Solution",
    "RuimtepuzzelError",
    "InfeasibleError",
    "WarmStartError",
    "solve",
]
__version__ = "0.1.0"
