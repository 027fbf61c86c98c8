"""ruimtepuzzel: spatial conflict optimisation for Dutch spatial planning.

The solver is usable without any files::

    import engine
    p = engine.Problem(value=V, contribution=C, zones=Z, lower=[LO], upper=[HI])
    sol = engine.solve(p)
"""

from engine.caches import use_numba_cache

# Before any module of the package decorates a kernel: they cache in the package's cache.
use_numba_cache()

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
