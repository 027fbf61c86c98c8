"""Units of claims and targets, and the exact conversion to claim hectares and back."""

from __future__ import annotations

from engine.config.model import Claim

__all__ = ["UNITS", "FRACTION_UNITS", "VALUE_UNITS", "to_ha", "from_ha"]

# Units by dimension, with the factor to the dimension's base unit.
UNITS = {
    "homes": ("count", 1.0), "dwellings": ("count", 1.0), "jobs": ("count", 1.0),
    "TWh": ("energy", 1e9), "GWh": ("energy", 1e6), "MWh": ("energy", 1e3), "kWh": ("energy", 1.0),
    "ha": ("area", 1.0), "km2": ("area", 100.0), "m2": ("area", 1e-4),
}  # fmt: skip
FRACTION_UNITS = ("fraction", "1", "ha/ha")
VALUE_UNITS = ("value/ha", "value/km")  # suitability units: of a hectare, of a km of edge


def to_ha(value: float, unit: str, claim: Claim) -> float:
    """A quantity of a claim in ``unit`` -> claim hectares (exact inverse of :func:`from_ha`)."""
    dim, f = UNITS[unit]
    cdim, cf = UNITS[claim.unit]
    if dim == "area" and cdim != "area":
        return value * f  # "ha" of a non-area claim means claim hectares
    if dim != cdim:
        raise ValueError(f"unit {unit!r} does not measure claim {claim.name!r} ({claim.unit})")
    return value * f / cf / claim.per_ha


def from_ha(ha: float, claim: Claim) -> float:
    """Claim hectares -> the claim's own unit."""
    return ha * claim.per_ha
