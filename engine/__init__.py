"""ruimtepuzzel: spatial conflict optimisation for Dutch spatial planning.

The solver is usable without any files::

    import engine
    p = engine.Problem(value=V, contribution=C, zones=Z, lower=[LO], upper=[HI])
    sol = engine.solve(p)
"""

from engine.errors import RuimtepuzzelError
from engine.problem import Problem
from engine.solve import InfeasibleError, Solution, WarmStartError, solve

__all__ = [
    "Problem",
    "Solution",
    "RuimtepuzzelError",
    "InfeasibleError",
    "WarmStartError",
    "solve",
]
__version__ = "0.1.0"
