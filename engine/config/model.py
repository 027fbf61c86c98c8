"""The configuration's data model: what a validated config is, as frozen dataclasses."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "Assumption",
    "Claim",
    "Option",
    "Term",
    "Recipe",
    "Rule",
    "Target",
    "Zoning",
    "Novex",
    "LayerSource",
    "Province",
    "Compactness",
    "Config",
    "slugify",
]


def slugify(name: str) -> str:
    """'Noord-Holland' -> 'noord-holland', 'Fryslân' -> 'fryslan'."""
    s = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode()
    return "-".join(s.lower().replace("_", " ").replace("-", " ").split())


@dataclass(frozen=True)
class Assumption:
    name: str
    value: float
    unit: str
    note: str
    source: str | None = None


@dataclass(frozen=True)
class Claim:
    name: str
    unit: str
    per_ha: float  # claim units delivered by one claim hectare (1 for hectare claims)
    reference: str | None  # the assumption that fixes per_ha
    shortfall_penalty: float
    description: str
    province: str | None = None  # set for a claim a province file adds


@dataclass(frozen=True)
class Option:
    name: str
    code: int
    colour: str
    description: str
    tags: tuple[str, ...]
    contributes: dict  # claim -> claim hectares per hectare of the option (c[o, k])
    province: str | None = None


@dataclass(frozen=True)
class Term:
    layer: str
    transform: str
    weight: float
    low: float | None = None
    high: float | None = None
    scale: float | None = None
    threshold: float | None = None


@dataclass(frozen=True)
class Recipe:
    option: str
    terms: tuple[Term, ...]
    conversion_cost: dict  # land-cover class name -> value lost per ha
    default_cost: float
    land_take_share: float = 1.0  # share of a hectare whose use really changes


@dataclass(frozen=True)
class Rule:
    kind: str  # exclusions | penalties | ladders | reservations
    id: str
    source: str
    note: str
    options: tuple[str, ...]
    where: dict | None = None
    amount: float = 0.0
    steps: tuple = ()  # ladders: ((label, where, value), ...)
    otherwise: float = 0.0
    share: float = 0.0
    order_layer: str | None = None
    ascending: bool = True
    group_by: str = "province"
    claim: str | None = None
    province: str | None = None  # a province file's rule acts only inside that province
    file: str = ""


@dataclass(frozen=True)
class Target:
    claim: str
    lower_ha: float | None
    upper_ha: float | None
    unit: str  # as written
    source: str
    note: str = ""
    rule: str | None = None  # a reservation rule whose reserved hectares are the target
    sum_of: tuple[str, ...] = ()  # line references whose figures add up to this target's


@dataclass(frozen=True)
class Zoning:
    """Targets per zone of an index layer of the grid (RES regions, municipalities, ...).

    ``targets`` maps a zone, by the layer's code or name as written, to claim -> Target."""

    id: str
    name: str
    layer: str
    source: str
    note: str
    targets: dict


@dataclass(frozen=True)
class Novex:
    id: str
    name: str
    source: str
    note: str
    municipalities: tuple[str, ...]
    targets: dict  # claim -> Target
    province: str  # the province file that holds it


@dataclass(frozen=True)
class LayerSource:
    """A layer taken from another dataset than the base grid (pas toe of leg uit, L11371)."""

    layer: str
    path: Path
    reason: str
    dataset: str
    location: str
    band: int | None = None  # None: the file must have one band
    # The share of the land in scope the dataset may leave without data (the base layer
    # keeps those cells); above it the dataset is refused: it does not cover the run.
    max_nodata_share: float = 0.05


@dataclass(frozen=True)
class Province:
    slug: str
    name: str
    code: str
    path: Path
    targets: dict  # claim -> Target (own targets, e.g. the housing bid)
    shares: dict  # claim -> share of the national target
    shares_basis: str
    novex: dict  # id -> Novex


@dataclass(frozen=True)
class Compactness:
    """How one option clusters (engine.solve.compact): a minimum patch size and a boundary
    penalty, each a figure of the config or a named assumption (``assumptions`` names them)."""

    option: str
    min_patch_ha: float  # 0: no minimum
    boundary_penalty: float  # value lost per km of edge between the option and the rest
    source: str | None  # the line of the source that asks for clustering, if it does
    assumptions: tuple[str, ...]  # the assumptions the figures come from
    entry: str  # the config key it was written under: the option, or a claim it serves
    note: str = ""


@dataclass
class Config:
    path: Path
    name: str
    scope: str  # "national" or a province slug
    grid: str
    resolution: int
    hard_targets: bool
    assumptions: dict
    claims: dict
    options: dict
    recipes: dict
    rules: list
    national_targets: dict
    provinces: dict
    layers: dict = field(default_factory=dict)
    zonings: dict = field(default_factory=dict)
    compactness: dict = field(default_factory=dict)  # option name -> Compactness
    files: list = field(default_factory=list)
    extends: list = field(default_factory=list)  # the files the config extends, nearest first
    resolved: dict = field(default_factory=dict)
    overrides: dict = field(default_factory=dict)

    @property
    def province_slugs(self) -> list[str]:
        """The provinces in scope, in the order of the national file (CBS code order)."""
        if self.scope == "national":
            return list(self.provinces)
        return [self.scope]

    @property
    def option_names(self) -> list[str]:
        return list(self.options)

    @property
    def claim_names(self) -> list[str]:
        return list(self.claims)

    def contribution_matrix(self):
        import numpy as np

        c = np.zeros((len(self.options), len(self.claims)))
        claims = self.claim_names
        for o, opt in enumerate(self.options.values()):
            for k, v in opt.contributes.items():
                c[o, claims.index(k)] = v
        return c

    def province_targets(self, slug: str) -> dict:
        """Claim -> Target for one province: its own targets plus its shares of national ones."""
        prov = self.provinces[slug]
        out = dict(prov.targets)
        for claim, share in prov.shares.items():
            nat = self.national_targets.get(claim)
            if nat is None or claim in out:
                continue
            out[claim] = Target(
                claim=claim,
                lower_ha=None if nat.lower_ha is None else nat.lower_ha * share,
                upper_ha=None if nat.upper_ha is None else nat.upper_ha * share,
                unit=nat.unit,
                source=nat.source,
                note=f"{share:g} of the national target ({prov.shares_basis})",
            )
        return out
