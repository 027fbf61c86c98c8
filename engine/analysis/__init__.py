"""What a planner reads: conflicts, scarcity, the cost of each rule, exchanges, addability.

Everything here starts from a solved problem (``Problem`` + ``Solution``) and its optimal prices;
the Problem-level functions need no files. :func:`engine.analysis.outputs.analysis_outputs` turns
them into the rasters, the ``report.json`` sections and ``report.html`` of a run.
"""

from engine.analysis.addability import addability
from engine.analysis.conflict import CellConflict, cell_conflict, contested_pairs
from engine.analysis.exchange import apply_exchange, exchange_suggestions
from engine.analysis.rule_costs import rule_costs
from engine.analysis.scarcity import cell_prices, regret, shadow_price_table

__all__ = [
    "CellConflict",
    "cell_conflict",
    "contested_pairs",
    "cell_prices",
    "regret",
    "shadow_price_table",
    "rule_costs",
    "exchange_suggestions",
    "apply_exchange",
    "addability",
]
