"""Sampled sweeps: an axis as a distribution of an uncertain assumption, drawn per sample.

An axis of a scenario with ``combine = "sample"`` may give a distribution instead of a list::

    [[axis]]
    name = "density"
    key = "assumptions.housing_density_urban"
    distribution = "triangular"          # uniform | triangular | normal | weighted
    min = 45.0
    mode = 60.0
    max = 80.0

``uniform`` needs min and max; ``triangular`` min, mode and max; ``normal`` mean and sd and
is truncated to [min, max] (both required: an unbounded draw can leave the range any config
value has); ``weighted`` takes ``values`` (or ``points``) with one ``weights`` entry each.

Every sample draws one uniform number per distribution axis and maps it through the axis's
inverse distribution function. The uniforms of sample ``j`` come from
``SeedSequence(seed, spawn_key=(j,))``: they depend on the seed and ``j`` only, not on how
many samples there are nor on which worker runs the variant, so a sweep with more samples
keeps the first ones and resumes like a grid sweep.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Distribution", "KINDS", "PARAMETER_KEYS", "read_distribution", "uniforms"]

KINDS = ("uniform", "triangular", "normal", "weighted")
PARAMETER_KEYS = ("distribution", "min", "max", "mode", "mean", "sd", "weights")
_NEEDS = {
    "uniform": ("min", "max"),
    "triangular": ("min", "mode", "max"),
    "normal": ("mean", "sd", "min", "max"),
    "weighted": ("weights",),
}
_EXAMPLE = {
    "uniform": "min = 0.05 and max = 0.10",
    "triangular": "min = 45.0, mode = 60.0 and max = 80.0",
    "normal": "mean = 60.0, sd = 8.0, min = 45.0 and max = 80.0",
    "weighted": "values = [45.0, 60.0, 80.0] and weights = [1, 2, 1]",
}


@dataclass(frozen=True)
class Distribution:
    """One sampled axis: its kind, parameters and (weighted) points."""

    kind: str
    params: dict
    keys: tuple = ()  # the dotted config keys a drawn number sets
    points: tuple = ()  # weighted: (label, overrides) per value
    weights: tuple = ()

    def draw(self, u: float) -> tuple[str, dict]:
        """The (label, overrides) at quantile ``u`` in [0, 1)."""
        if self.kind == "weighted":
            cumulative = np.cumsum(self.weights) / math.fsum(self.weights)
            i = int(np.searchsorted(cumulative, u, side="right"))
            return self.points[min(i, len(self.points) - 1)]
        x = self.quantile(u)
        return f"{x:.6g}", {k: x for k in self.keys}

    def quantile(self, u: float) -> float:
        """The inverse distribution function of a continuous kind."""
        p = self.params
        lo, hi = p["min"], p["max"]
        if self.kind == "uniform":
            return lo + u * (hi - lo)
        if self.kind == "triangular":
            mode = p["mode"]
            split = (mode - lo) / (hi - lo)
            if u < split:
                return lo + math.sqrt(u * (hi - lo) * (mode - lo))
            return hi - math.sqrt((1 - u) * (hi - lo) * (hi - mode))
        from scipy.special import ndtr, ndtri

        a, b = ndtr((lo - p["mean"]) / p["sd"]), ndtr((hi - p["mean"]) / p["sd"])
        return float(np.clip(p["mean"] + p["sd"] * ndtri(a + u * (b - a)), lo, hi))

    def describe(self) -> dict:
        out = {"kind": self.kind, **self.params}
        if self.kind == "weighted":
            out["values"] = [label for label, _ in self.points]
            out["weights"] = list(self.weights)
        return out


def uniforms(seed: int, sample: int, count: int) -> np.ndarray:
    """The ``count`` uniform numbers of sample ``sample``: a function of seed and sample only."""
    sequence = np.random.SeedSequence(seed, spawn_key=(sample,))
    return np.random.default_rng(sequence).random(count)


def read_distribution(v, key: tuple, spec: dict, keys: list, points: list) -> Distribution:
    """A distribution axis of a scenario file; ``v`` its Validator, ``key`` the axis's key,
    ``keys`` the config keys it sets, ``points`` its (label, overrides) for ``weighted``."""
    kind = v.choice(spec["distribution"], key + ("distribution",), KINDS)
    allowed = set(_NEEDS[kind]) | {"distribution"}
    for k in PARAMETER_KEYS:
        if k in spec and k not in allowed:
            raise v.err(
                key + (k,),
                f"a {kind} distribution has no {k}",
                f"give {_EXAMPLE[kind]}",
            )
    for k in _NEEDS[kind]:
        if k not in spec:
            raise v.err(key + (k,), f"missing for a {kind} distribution", f"give {_EXAMPLE[kind]}")
    if kind == "weighted":
        return _weighted(v, key, spec, points)
    if not keys:
        raise v.err(
            key + ("key",),
            f"a {kind} distribution draws a number and needs the key it sets",
            'e.g. key = "assumptions.housing_density_urban"',
        )
    params = {k: v.number(spec[k], key + (k,)) for k in _NEEDS[kind]}
    if not params["min"] < params["max"]:
        raise v.err(
            key + ("max",),
            f"max {params['max']:g} is not above min {params['min']:g}",
            "give a range with min < max",
        )
    if kind == "triangular" and not params["min"] <= params["mode"] <= params["max"]:
        raise v.err(
            key + ("mode",),
            f"mode {params['mode']:g} lies outside [{params['min']:g}, {params['max']:g}]",
            "give a mode between min and max",
        )
    if kind == "normal":
        if params["sd"] <= 0:
            raise v.err(key + ("sd",), f"sd {params['sd']:g} is not positive", "give sd > 0")
        if not params["min"] <= params["mean"] <= params["max"]:
            raise v.err(
                key + ("mean",),
                f"mean {params['mean']:g} lies outside [{params['min']:g}, {params['max']:g}]",
                "give a mean inside the range it is truncated to",
            )
    return Distribution(kind, params, tuple(keys))


def _weighted(v, key: tuple, spec: dict, points: list) -> Distribution:
    weights = v.numbers(spec["weights"], key + ("weights",))
    if len(weights) != len(points):
        raise v.err(
            key + ("weights",),
            f"{len(weights)} weights for {len(points)} values",
            "give one weight per value",
        )
    if any(w < 0 for w in weights) or not math.fsum(weights) > 0:
        raise v.err(
            key + ("weights",),
            f"weights {weights} must be >= 0 and not all 0",
            "give each value a weight >= 0, e.g. [1, 2, 1]",
        )
    return Distribution("weighted", {}, points=tuple(points), weights=tuple(weights))
