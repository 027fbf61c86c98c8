"""Per-cell counts over the variants of a sweep, added as each variant finishes.

A :class:`Tally` holds, per cell, how many variants gave it each option (a count per option
code), and per design axis (:attr:`engine.sweep.scenario.Scenario.design`) how many *pairs*
of variants one step apart on that axis, and equal on the others, gave the cell different
uses. Memory is the counts and one or two allocation rasters at a time, whatever the number
of variants. Counts are integers, so the order the variants finish in does not matter: one
worker or many, killed and resumed or not, the counts are the same bit for bit.

**Surviving a kill.** The counts are a cache of what the variants' own ``allocation.tif``
say. The driver saves them now and then (:data:`CHECKPOINT`, written atomically with the ids,
settings keys and allocation sha256 of the variants they include), and a resumed sweep adds
every finished variant the checkpoint lacks, from its folder. If a variant the checkpoint
includes is gone, redone or changed since, the counts are made again from the folders, in
variant order: never a count of a raster that no longer exists.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.outputs import MANIFEST, npz_bytes, write_file

__all__ = [
    "Tally",
    "Uses",
    "CHECKPOINT",
    "NODATA",
    "uses_of",
    "read_codes",
    "province_grid",
    "tally_sweep",
    "add_variant",
]

log = logging.getLogger(__name__)

#: The counts saved beside the variant folders of a sweep.
CHECKPOINT = "robustness.tally.npz"
NODATA = 255  # allocation.tif outside the run's land
VERSION = 1


@dataclass(frozen=True)
class Uses:
    """What the option codes of ``allocation.tif`` mean: from the sweep's base config."""

    names: dict  # code -> option name
    colours: dict  # code -> '#rrggbb'
    keep: int  # the code of keeping the current use (no new use)
    claims: list  # claim names, in config order
    serves: np.ndarray  # (codes, claims) bool: one hectare of the option delivers to the claim

    @property
    def n_codes(self) -> int:
        return self.serves.shape[0]


def uses_of(config) -> Uses:
    options = list(config.options.values())
    claims = [c for c in config.claims if any(c in o.contributes for o in options)]
    serves = np.zeros((max(o.code for o in options) + 1, len(claims)), dtype=bool)
    for o in options:
        for k, claim in enumerate(claims):
            serves[o.code, k] = claim in o.contributes
    return Uses(
        names={o.code: o.name for o in options},
        colours={o.code: o.colour for o in options},
        keep=config.options["keep"].code,
        claims=claims,
        serves=serves,
    )


def read_codes(folder: Path) -> tuple[np.ndarray, tuple]:
    """A variant's allocation.tif: the option code per cell and the grid's transform."""
    import rasterio

    with rasterio.open(Path(folder) / "allocation.tif") as src:
        return src.read(1), tuple(src.transform)[:6]


def allocation_sha(folder: Path) -> str | None:
    """The sha256 the variant's manifest gives its allocation.tif (verified by done_record)."""
    try:
        manifest = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return next((o["sha256"] for o in manifest["outputs"] if o["path"] == "allocation.tif"), None)


class Tally:
    """Counts per cell and option, and per design axis the pairs that change a cell's use."""

    def __init__(
        self, *, uses: Uses, province: np.ndarray, axes: list, positions: dict, n_variants: int
    ):
        self.uses = uses
        self.positions = positions  # design position -> variant id
        # Cells outside every province count in row P of the per-province sums.
        self.province = np.where(province < 0, province.max() + 1, province).astype(np.int16)
        self.n_provinces = int(self.province.max()) + 1
        self.axes = list(axes)
        self.dtype = np.uint16 if n_variants < np.iinfo(np.uint16).max else np.uint32
        shape = self.province.shape
        self.counts = np.zeros((uses.n_codes,) + shape, dtype=self.dtype)
        self.changes = np.zeros((len(self.axes),) + shape, dtype=self.dtype)
        self.pairs = np.zeros(len(self.axes), dtype=np.int64)
        # Per axis and province: cells whose delivery to claim k differs within a pair (last
        # column: whose use differs at all), summed over the pairs.
        self.moved = np.zeros(
            (len(self.axes), self.n_provinces, len(uses.claims) + 1), dtype=np.int64
        )
        self.transform: tuple | None = None
        self.included: dict = {}  # variant id -> {"key", "sha256"}, in the order added

    @property
    def shape(self) -> tuple:
        return self.province.shape

    @property
    def n(self) -> int:
        return len(self.included)

    def _check(self, codes: np.ndarray, transform: tuple, vid: str) -> None:
        if codes.shape != self.shape:
            raise ValueError(
                f"{vid}: allocation.tif is {codes.shape}, the sweep's grid {self.shape}"
            )
        if self.transform is None:
            self.transform = transform
        on_land = codes[codes != NODATA]
        if on_land.size and int(on_land.max()) >= self.uses.n_codes:
            raise ValueError(f"{vid}: option code {int(on_land.max())} the base config lacks")

    def add(self, vid: str, entry: dict, codes: np.ndarray, transform: tuple, pairs) -> None:
        """Count variant ``vid`` (its allocation ``codes``); ``pairs``: (axis index, the
        codes of an included variant one step from it on that axis)."""
        self._check(codes, transform, vid)
        cells = np.flatnonzero(codes != NODATA)
        self.counts.reshape(self.uses.n_codes, -1)[codes.ravel()[cells], cells] += 1
        for axis, other in pairs:
            self._pair(axis, codes, other)
        self.included[vid] = entry

    def _pair(self, axis: int, a: np.ndarray, b: np.ndarray) -> None:
        differ = (a != b) & (a != NODATA) & (b != NODATA)
        self.changes[axis] += differ
        self.pairs[axis] += 1
        province = self.province[differ]
        moved = self.uses.serves[a[differ]] != self.uses.serves[b[differ]]
        for k in range(moved.shape[1]):
            self.moved[axis, :, k] += np.bincount(province[moved[:, k]], minlength=self.n_provinces)
        self.moved[axis, :, -1] += np.bincount(province, minlength=self.n_provinces)

    # -- the checkpoint ---------------------------------------------------------------------------

    def _meta(self) -> dict:
        return {
            "version": VERSION,
            "shape": list(self.shape),
            "codes": self.uses.n_codes,
            "claims": self.uses.claims,
            "axes": self.axes,
            "dtype": np.dtype(self.dtype).name,
            "provinces": int(self.n_provinces),
        }

    def save(self, out: Path) -> None:
        """Counts and the variants they include, in one file written atomically."""
        meta = {**self._meta(), "transform": self.transform, "included": self.included}
        write_file(
            Path(out) / CHECKPOINT,
            npz_bytes(
                counts=self.counts,
                changes=self.changes,
                pairs=self.pairs,
                moved=self.moved,
                meta=np.array(json.dumps(meta)),
            ),
        )

    def load(self, out: Path) -> bool:
        """Take the saved counts if they were made for this sweep's setup; else keep empty."""
        path = Path(out) / CHECKPOINT
        if not path.is_file():
            return False
        try:
            with np.load(path, allow_pickle=False) as saved:
                meta = json.loads(str(saved["meta"]))
                if {k: meta.get(k) for k in self._meta()} != self._meta():
                    log.info("%s: made for another setup; counted again", path)
                    return False
                self.counts[...] = saved["counts"]
                self.changes[...] = saved["changes"]
                self.pairs[...] = saved["pairs"]
                self.moved[...] = saved["moved"]
        except (OSError, ValueError, KeyError) as err:  # a torn or foreign file
            log.warning("%s cannot be read (%s); counted again", path, err)
            return False
        self.transform = tuple(meta["transform"]) if meta["transform"] else None
        self.included = dict(meta["included"])
        return True


def _entry(out: Path, vid: str, record: dict) -> dict:
    return {"key": record["key"], "sha256": allocation_sha(out / vid)}


def _pairs(tally: Tally, v, out: Path):
    """The included variants one step from ``v`` on one design axis, with their codes, read
    one at a time."""
    for axis in range(len(v.position)):
        for step in (-1, 1):
            at = list(v.position)
            at[axis] += step
            other = tally.positions.get(tuple(at))
            if other is not None and other in tally.included:
                yield axis, read_codes(out / other)[0]


def province_grid(scenario) -> tuple[np.ndarray, list]:
    """The province index of every cell of the sweep's grid (-1 outside)."""
    import dask

    from engine.config import load_config
    from engine.run import open_run_grid

    config = load_config(scenario.base)
    with dask.config.set(scheduler="synchronous"):  # not through a running cluster
        ds = open_run_grid(config, scenario.grid, scenario.resolution)
        return np.asarray(ds["province"].values), list(ds["province"].attrs.get("names", []))


def new_tally(scenario, uses: Uses, province: np.ndarray) -> Tally:
    return Tally(
        uses=uses,
        province=province,
        axes=[d["name"] for d in scenario.design],
        positions={v.position: v.id for v in scenario.variants if v.position},
        n_variants=len(scenario.variants),
    )


def tally_sweep(scenario, out: Path, records: dict, uses: Uses, province: np.ndarray) -> Tally:
    """The counts over every variant of ``records`` (id -> variant.json) that finished: the
    checkpoint's, with what it lacks added; made again from the folders when it includes a
    variant that is no longer as it was."""
    out = Path(out)
    done = {vid: r for vid, r in records.items() if r.get("status") != "error"}
    tally = new_tally(scenario, uses, province)
    if tally.load(out):
        stale = [
            vid
            for vid, entry in tally.included.items()
            if vid not in done or entry != _entry(out, vid, done[vid])
        ]
        if stale:
            log.info("counts include %d variants no longer as counted; counted again", len(stale))
            tally = new_tally(scenario, uses, province)
    for v in scenario.variants:
        if v.id in done and v.id not in tally.included:
            add_variant(tally, v, out, done[v.id])
    return tally


def add_variant(tally: Tally, v, out: Path, record: dict) -> None:
    """Count a finished variant from its folder."""
    codes, transform = read_codes(out / v.id)
    tally.add(v.id, _entry(out, v.id, record), codes, transform, _pairs(tally, v, out))
