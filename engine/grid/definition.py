"""Grid definitions: a TOML file that says what a grid is, as data.

A definition fixes the CRS, the extent, the resolutions it may be built at, and its layers.
Each layer names its source:

- ``raster``  a GeoTIFF/COG file; it must line up with the grid (CRS, transform, shape)
  unless the layer asks for ``resample = "<method>"``;
- ``vector``  a vector file rasterised as ``presence`` (1/0), ``index`` (0.. in the order of
  the ``key`` attribute, with ``codes``/``names`` kept in the metadata) or ``attribute``;
- ``ugrid``   a UGRID mesh variable, interpolated linearly between face centres;
- ``derived`` a named function of other layers (``function``, ``inputs``, ``params``).

A definition may ``extends = "nl"`` another: it inherits the layers and replaces those it
names, so a province can put its own GeoTIFFs in place of demo layers and keep the rest.

Every error is a ``ValueError`` naming the file, the key and the fix, because a definition is
written by hand.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.resources import shipped_dir

__all__ = [
    "GRIDS_DIR",
    "SOURCES",
    "PROVENANCES",
    "DTYPES",
    "LayerSpec",
    "GridDefinition",
    "load_definition",
    "find_definition",
]

#: The grid definitions shipped with the project.
GRIDS_DIR = shipped_dir("grids")

SOURCES = ("raster", "vector", "ugrid", "derived")
PROVENANCES = ("real", "derived", "generated")
DTYPES = ("uint8", "int16", "int32", "float32", "float64")
BURNS = ("presence", "index", "attribute")
RESAMPLING = ("nearest", "bilinear", "cubic", "cubic_spline", "lanczos", "average", "mode")
METADATA_KEYS = ("long_name", "units", "provenance", "description")

# Keys a layer table may carry; anything else is a typo that would otherwise be ignored.
_LAYER_KEYS = {
    *METADATA_KEYS,
    "source", "dtype", "nodata", "path", "band", "resample",
    "burn", "key", "label", "attribute", "all_touched",
    "variable", "base_resolution",
    "function", "inputs", "params", "classes",
}
_GRID_KEYS = {
    "name", "title", "crs", "extent", "resolutions", "default_resolution", "tile_size",
    "data_dir", "seed", "credits", "extends", "context_extent",
}


@dataclass(frozen=True)
class LayerSpec:
    """One layer of a grid definition; paths are absolute once loaded."""

    name: str
    source: str
    dtype: str
    long_name: str
    units: str
    provenance: str
    description: str
    nodata: float | int | None = None
    path: Path | None = None
    band: int = 1
    resample: str | None = None
    burn: str = "presence"
    key: str | None = None
    label: str | None = None
    attribute: str | None = None
    all_touched: bool = False
    variable: str | None = None
    base_resolution: float | None = None
    function: str | None = None
    inputs: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    classes: tuple[str, ...] = ()
    defined_in: Path | None = None

    def metadata(self) -> dict[str, Any]:
        """The attrs every variable carries, plus where it came from."""
        meta: dict[str, Any] = {k: getattr(self, k) for k in METADATA_KEYS}
        meta["source"] = self.source
        if self.path is not None:
            meta["source_file"] = self.path.name
        if self.function:
            meta["function"] = self.function
        if self.inputs:
            meta["inputs"] = list(self.inputs)
        if self.classes:
            meta["classes"] = list(self.classes)
        return meta


@dataclass(frozen=True)
class GridDefinition:
    """A grid: CRS, extent (xmin, ymin, xmax, ymax), resolutions and layers in build order."""

    name: str
    path: Path
    crs: str
    extent: tuple[float, float, float, float]
    resolutions: tuple[float, ...]
    default_resolution: float
    tile_size: int
    seed: int
    credits: tuple[str, ...]
    layers: dict[str, LayerSpec]
    title: str = ""
    data_dir: Path | None = None
    context_extent: tuple[float, float, float, float] | None = None

    @property
    def order(self) -> list[str]:
        """Layer names so that every layer comes after its inputs."""
        return _topological_order(self.layers, self.path)

    def closure(self, names) -> set[str]:
        """The layers ``names`` and everything they are made from."""
        seen: set[str] = set()
        stack = list(names)
        while stack:
            name = stack.pop()
            if name not in seen:
                seen.add(name)
                stack.extend(self.layers[name].inputs)
        return seen

    def shape(self, resolution: float) -> tuple[int, int]:
        xmin, ymin, xmax, ymax = self.extent
        return int(round((ymax - ymin) / resolution)), int(round((xmax - xmin) / resolution))

    def check_resolution(self, resolution: float) -> float:
        resolution = float(resolution)
        if resolution not in self.resolutions:
            raise ValueError(
                f"grid {self.name!r} ({self.path}): resolution {resolution:g} m is not one of "
                f"its resolutions {[f'{r:g}' for r in self.resolutions]}; pick one of those or "
                f"add it to [grid] resolutions (the extent must be a whole number of cells)"
            )
        return resolution

    def fingerprint(self) -> str:
        """A hash of everything that decides the grid's content (not where files live)."""
        doc = {
            "crs": self.crs,
            "extent": list(self.extent),
            "context_extent": list(self.context_extent or self.extent),
            "seed": self.seed,
            "credits": list(self.credits),
            "layers": {n: _spec_fingerprint(s) for n, s in self.layers.items()},
        }
        blob = json.dumps(doc, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()


def find_definition(name_or_path: str | os.PathLike) -> Path:
    """The TOML file for a grid name in ``grids/`` or a path to a definition."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.exists():
        if not candidate.is_file():
            raise FileNotFoundError(f"grid definition {candidate} does not exist")
        return candidate.resolve()
    shipped = GRIDS_DIR / f"{name_or_path}.toml"
    if shipped.is_file():
        return shipped
    known = sorted(p.stem for p in GRIDS_DIR.glob("*.toml"))
    raise ValueError(
        f"no grid named {str(name_or_path)!r}: the grids in {GRIDS_DIR} are {known}; "
        f"or give the path of a definition .toml"
    )


def load_definition(name_or_path: str | os.PathLike) -> GridDefinition:
    """Read and validate a grid definition (resolving ``extends`` and relative paths)."""
    return _load(find_definition(name_or_path), seen=())


def _load(path: Path, seen: tuple[Path, ...]) -> GridDefinition:
    if path in seen:
        raise ValueError(f"{path}: [grid] extends forms a cycle through {[str(p) for p in seen]}")
    try:
        with path.open("rb") as fh:
            doc = tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: not valid TOML: {err}") from err

    grid = doc.get("grid")
    if not isinstance(grid, dict):
        raise ValueError(f"{path}: missing the [grid] table (crs, extent, resolutions, ...)")
    _no_unknown(grid, _GRID_KEYS, f"{path}: [grid]")

    parent: GridDefinition | None = None
    if "extends" in grid:
        parent = _load(find_definition(grid["extends"]), seen + (path,))

    data_dir = _data_dir(path, grid)

    def pick(key: str, default: Any = None) -> Any:
        if key in grid:
            return grid[key]
        if parent is not None and hasattr(parent, key) and getattr(parent, key) is not None:
            return getattr(parent, key)
        if default is None:
            raise ValueError(f"{path}: [grid] needs {key!r}")
        return default

    crs = str(pick("crs"))
    extent = _extent(pick("extent"), path, "extent")
    resolutions = tuple(float(r) for r in pick("resolutions"))
    for res in resolutions:
        _check_divides(extent, res, path)
    default_resolution = float(pick("default_resolution", resolutions[0]))
    context_default = parent.context_extent or parent.extent if parent else extent
    context_extent = _extent(grid.get("context_extent", context_default), path, "context_extent")

    layers: dict[str, LayerSpec] = dict(parent.layers) if parent else {}
    tables = doc.get("layers", {})
    if not isinstance(tables, dict) or (not tables and parent is None):
        raise ValueError(f"{path}: no [layers.NAME] tables; a grid needs at least one layer")
    for name, table in tables.items():
        layers[name] = _layer(name, table, path, data_dir, inherited=layers.get(name))

    credits = list(parent.credits) if parent else []
    credits += [c for c in grid.get("credits", []) if c not in credits]
    definition = GridDefinition(
        name=str(grid.get("name", path.stem)),
        title=str(grid.get("title", parent.title if parent else "")),
        path=path,
        crs=crs,
        extent=extent,
        context_extent=context_extent,
        resolutions=resolutions,
        default_resolution=default_resolution,
        tile_size=int(pick("tile_size", 1024)),
        seed=int(pick("seed", 0)),
        credits=tuple(credits),
        layers=layers,
        data_dir=data_dir,
    )
    _ = definition.order  # validates inputs and cycles now, not halfway through a build
    return definition


def _data_dir(path: Path, grid: dict) -> Path:
    # A definition's relative source paths are relative to its data_dir, or to the definition
    # itself; the shipped ones name the shipped data folder (../data beside grids/).
    return (path.parent / grid.get("data_dir", ".")).resolve()


def _layer(
    name: str, table: Any, path: Path, data_dir: Path | None, inherited: LayerSpec | None
) -> LayerSpec:
    where = f"{path}: [layers.{name}]"
    if not isinstance(table, dict):
        raise ValueError(f"{where} must be a table")
    _no_unknown(table, _LAYER_KEYS, where)
    # A layer that only changes metadata or params of an inherited layer keeps the rest.
    base: dict[str, Any] = {}
    if inherited is not None and "source" not in table:
        base = {k: getattr(inherited, k) for k in inherited.__dataclass_fields__}
        base.pop("name")
    merged = {**base, **table}

    for key in ("source", *METADATA_KEYS):
        if key not in merged:
            raise ValueError(f"{where} needs {key!r}")
    source, provenance = merged["source"], merged["provenance"]
    if source not in SOURCES:
        raise ValueError(f"{where}: source {source!r} is not one of {SOURCES}")
    # A GeoTIFF carries its own dtype; every other source must say what it makes.
    dtype = merged.get("dtype", "" if source == "raster" else None)
    if dtype is None:
        raise ValueError(f"{where} needs 'dtype' (one of {DTYPES})")
    if dtype and dtype not in DTYPES:
        raise ValueError(f"{where}: dtype {dtype!r} is not one of {DTYPES}")
    if provenance not in PROVENANCES:
        raise ValueError(f"{where}: provenance {provenance!r} is not one of {PROVENANCES}")

    file_path = merged.get("path")
    if source in ("raster", "vector", "ugrid"):
        if file_path is None:
            raise ValueError(f"{where}: a {source} layer needs path = '...'")
        file_path = Path(file_path)
        if not file_path.is_absolute():
            root = data_dir if "path" in table else path.parent
            file_path = ((root or path.parent) / file_path).resolve()
        if not file_path.is_file():
            raise ValueError(
                f"{where}: source file {file_path} does not exist; fix path (relative to "
                f"{data_dir or path.parent})"
            )
    resample = merged.get("resample")
    if resample is not None and resample not in RESAMPLING:
        raise ValueError(f"{where}: resample {resample!r} is not one of {RESAMPLING}")
    burn = merged.get("burn", "presence")
    if source == "vector":
        if burn not in BURNS:
            raise ValueError(f"{where}: burn {burn!r} is not one of {BURNS}")
        if burn == "index" and not merged.get("key"):
            raise ValueError(f"{where}: burn = 'index' needs key = '<attribute to sort by>'")
        if burn == "attribute" and not merged.get("attribute"):
            raise ValueError(f"{where}: burn = 'attribute' needs attribute = '<field>'")
    if source == "derived" and not merged.get("function"):
        raise ValueError(f"{where}: a derived layer needs function = '<name>'")
    if source == "ugrid" and not merged.get("variable"):
        raise ValueError(f"{where}: a ugrid layer needs variable = '<face variable>'")
    nodata = merged.get("nodata")
    if isinstance(nodata, str) and nodata.lower() == "nan":
        nodata = float("nan")
    if nodata is not None and dtype and not np.issubdtype(np.dtype(dtype), np.floating):
        info = np.iinfo(dtype)
        if not (float(nodata).is_integer() and info.min <= nodata <= info.max):
            raise ValueError(f"{where}: nodata {nodata!r} does not fit dtype {dtype}")

    return LayerSpec(
        name=name,
        source=source,
        dtype=dtype,
        long_name=str(merged["long_name"]),
        units=str(merged["units"]),
        provenance=provenance,
        description=" ".join(str(merged["description"]).split()),
        nodata=nodata,
        path=file_path,
        band=int(merged.get("band", 1)),
        resample=resample,
        burn=burn,
        key=merged.get("key"),
        label=merged.get("label"),
        attribute=merged.get("attribute"),
        all_touched=bool(merged.get("all_touched", False)),
        variable=merged.get("variable"),
        base_resolution=merged.get("base_resolution"),
        function=merged.get("function"),
        inputs=tuple(merged.get("inputs", ())),
        params=_resolve_param_files(dict(merged.get("params", {})), table, base, data_dir, where),
        classes=tuple(merged.get("classes", ())),
        defined_in=path if "source" in table or inherited is None else inherited.defined_in,
    )


def _resolve_param_files(
    params: dict[str, Any], table: dict, inherited: dict, data_dir: Path | None, where: str
) -> dict[str, Any]:
    """Params named ``*_file`` are source files: made absolute (relative to the data folder of
    the definition that set them) and checked, like a layer's ``path``."""
    own = "params" in table or not inherited
    for key, value in params.items():
        if key.endswith("_file") and isinstance(value, str | Path):
            file_path = Path(value)
            if not file_path.is_absolute():
                if not own:  # inherited params are already absolute
                    continue
                file_path = ((data_dir or Path.cwd()) / file_path).resolve()
            if not file_path.is_file():
                raise ValueError(
                    f"{where}: params.{key} = {file_path} does not exist; fix the path "
                    f"(relative to {data_dir})"
                )
            params[key] = file_path
    return params


def _spec_fingerprint(spec: LayerSpec) -> dict[str, Any]:
    doc = {k: getattr(spec, k) for k in spec.__dataclass_fields__ if k != "defined_in"}
    if spec.path is not None:
        doc["path"] = spec.path.name
        doc["file_sha256"] = file_sha256(spec.path)
    doc["params"] = {
        k: ({"file": v.name, "sha256": file_sha256(v)} if isinstance(v, Path) else v)
        for k, v in sorted(spec.params.items())
    }
    return doc


_HASHES: dict[tuple[str, float, int], str] = {}


def file_sha256(path: Path) -> str:
    """Content hash of a source file, remembered per (path, mtime, size) within a process."""
    stat = path.stat()
    key = (str(path), stat.st_mtime, stat.st_size)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def _extent(value: Any, path: Path, key: str) -> tuple[float, float, float, float]:
    try:
        xmin, ymin, xmax, ymax = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: [grid] {key} must be [xmin, ymin, xmax, ymax]") from None
    if not (xmax > xmin and ymax > ymin):
        raise ValueError(f"{path}: [grid] {key} {value} has xmax <= xmin or ymax <= ymin")
    return xmin, ymin, xmax, ymax


def _check_divides(extent: tuple[float, ...], res: float, path: Path) -> None:
    xmin, ymin, xmax, ymax = extent
    for span, axis in ((xmax - xmin, "x"), (ymax - ymin, "y")):
        cells = span / res
        if abs(cells - round(cells)) > 1e-9:
            raise ValueError(
                f"{path}: the {axis} span of the extent ({span:g} m) is not a whole number of "
                f"{res:g} m cells; adjust [grid] extent or resolutions"
            )


def _no_unknown(table: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; allowed are {sorted(allowed)}")


def _topological_order(layers: dict[str, LayerSpec], path: Path) -> list[str]:
    order: list[str] = []
    state: dict[str, int] = {}  # 1 = visiting, 2 = done

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise ValueError(
                f"{path}: layers depend on each other in a cycle: {' -> '.join(chain)}"
            )
        state[name] = 1
        for dep in layers[name].inputs:
            if dep not in layers:
                raise ValueError(
                    f"{path}: [layers.{name}] input {dep!r} is not a layer of this grid; "
                    f"the layers are {sorted(layers)}"
                )
            visit(dep, chain + (dep,))
        state[name] = 2
        order.append(name)

    for name in layers:
        visit(name, (name,))
    return order
