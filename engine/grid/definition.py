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

A definition is written by hand, so it goes through the validation layer of the configs
(:mod:`engine.config.validation`): every error is a :class:`GridDefinitionError` naming the
file, the key and the fix, an unknown key with "did you mean ...".
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.config.validation import ConfigError, Validator, did_you_mean, read_toml
from engine.resources import shipped_dir

__all__ = [
    "GridDefinitionError",
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
    "source",
    "dtype",
    "nodata",
    "path",
    "band",
    "resample",
    "burn",
    "key",
    "label",
    "attribute",
    "all_touched",
    "variable",
    "base_resolution",
    "function",
    "inputs",
    "params",
    "classes",
}
_GRID_KEYS = {
    "name",
    "title",
    "crs",
    "extent",
    "resolutions",
    "default_resolution",
    "tile_size",
    "data_dir",
    "seed",
    "credits",
    "extends",
    "context_extent",
}


class GridDefinitionError(ConfigError):
    """An error in a grid definition: file, key, what is wrong, and the fix."""


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
    band: int | None = None  # None: the file must have one band
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
            raise GridDefinitionError(
                self.path,
                "grid.resolutions",
                f"grid {self.name!r}: resolution "
                f"{resolution:g} m is not one of its resolutions "
                f"{[f'{r:g}' for r in self.resolutions]}",
                "pick one of those or add it to "
                "[grid] resolutions (the extent must be a whole number of cells)",
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
            raise GridDefinitionError(
                candidate,
                "(file)",
                "the grid definition does not exist",
                "give the path of a definition .toml, or the name of a shipped grid",
            )
        return candidate.resolve()
    shipped = GRIDS_DIR / f"{name_or_path}.toml"
    if shipped.is_file():
        return shipped
    known = sorted(p.stem for p in GRIDS_DIR.glob("*.toml"))
    raise GridDefinitionError(
        GRIDS_DIR,
        str(name_or_path),
        f"no grid named {str(name_or_path)!r}: the grids there are {known}",
        f"{did_you_mean(str(name_or_path), known)} Or give the path of a definition .toml",
    )


def load_definition(name_or_path: str | os.PathLike) -> GridDefinition:
    """Read and validate a grid definition (resolving ``extends`` and relative paths)."""
    return _load(find_definition(name_or_path), seen=())


def _load(path: Path, seen: tuple[Path, ...]) -> GridDefinition:
    v = Validator.of_file(path, GridDefinitionError)
    if path in seen:
        raise v.err(
            ("grid", "extends"),
            "the definitions extend each other in a cycle: "
            + " -> ".join(str(p) for p in (*seen, path)),
            "break the cycle",
        )
    doc = read_toml(path, error=GridDefinitionError)
    v.keys(doc, (), ("grid", "layers"))
    if "grid" not in doc:
        raise v.err(
            ("grid",),
            "missing: the [grid] table (crs, extent, resolutions, ...)",
            "add [grid] with crs, extent and resolutions",
        )
    grid = v.table(doc["grid"], ("grid",))
    v.keys(grid, ("grid",), _GRID_KEYS)

    parent: GridDefinition | None = None
    if "extends" in grid:
        parent = _load(
            find_definition(v.string(grid["extends"], ("grid", "extends"))), seen + (path,)
        )

    data_dir = _data_dir(v, path, grid)

    def pick(key: str, default: Any = None) -> Any:
        if key in grid:
            return grid[key]
        if parent is not None and getattr(parent, key, None) is not None:
            return getattr(parent, key)
        if default is None:
            raise v.err(("grid", key), "missing", f"add {key} = ... to [grid]")
        return default

    crs = _crs(v, pick("crs"))
    extent = _extent(v, pick("extent"), "extent")
    listed = pick("resolutions")
    resolutions = tuple(
        v.number(r, ("grid", "resolutions", f"[{j}]"), minimum=1e-9)
        for j, r in enumerate(listed if isinstance(listed, (list, tuple)) else [listed])
    )
    if not resolutions:
        raise v.err(("grid", "resolutions"), "empty", "give the cell sizes, e.g. [1000, 250]")
    for res in resolutions:
        _check_divides(v, extent, res)
    tile_size = v.integer(pick("tile_size", 1024), ("grid", "tile_size"), minimum=1)
    seed = v.integer(pick("seed", 0), ("grid", "seed"), minimum=0)
    inherited = parent.default_resolution if parent else None
    default_resolution = v.number(
        grid.get("default_resolution", inherited if inherited in resolutions else resolutions[0]),
        ("grid", "default_resolution"),
    )
    if default_resolution not in resolutions:
        raise v.err(
            ("grid", "default_resolution"),
            f"{default_resolution:g} m is not one of "
            f"the resolutions {[f'{r:g}' for r in resolutions]}",
            "pick one of those",
        )
    context_default = parent.context_extent or parent.extent if parent else extent
    context_extent = _extent(v, grid.get("context_extent", context_default), "context_extent")

    layers: dict[str, LayerSpec] = dict(parent.layers) if parent else {}
    tables = v.table(doc.get("layers", {}), ("layers",))
    if not tables and parent is None:
        raise v.err(("layers",), "no [layers.NAME] tables", "a grid needs at least one layer")
    for name, table in tables.items():
        layers[name] = _layer(v, name, table, path, data_dir, inherited=layers.get(name))

    credits = list(parent.credits) if parent else []
    own = v.strings(grid.get("credits", []), ("grid", "credits"))
    credits += [c for c in own if c not in credits]
    definition = GridDefinition(
        name=v.string(grid.get("name", path.stem), ("grid", "name")),
        title=v.string(grid.get("title", parent.title if parent else ""), ("grid", "title")),
        path=path,
        crs=crs,
        extent=extent,
        context_extent=context_extent,
        resolutions=resolutions,
        default_resolution=default_resolution,
        tile_size=tile_size,
        seed=seed,
        credits=tuple(credits),
        layers=layers,
        data_dir=data_dir,
    )
    _ = definition.order  # validates inputs and cycles now, not halfway through a build
    return definition


def _data_dir(v: Validator, path: Path, grid: dict) -> Path:
    # A definition's relative source paths are relative to its data_dir, or to the definition
    # itself; the shipped ones name the shipped data folder (../data beside grids/).
    rel = v.string(grid.get("data_dir", "."), ("grid", "data_dir"))
    folder = (path.parent / rel).resolve()
    if not folder.is_dir():
        raise v.err(
            ("grid", "data_dir"),
            f"{folder} is not a folder",
            "give the folder the layers' paths are relative to (relative to this file)",
        )
    return folder


def _crs(v: Validator, value: Any) -> str:
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    text = v.string(value, ("grid", "crs"))
    try:
        CRS.from_user_input(text)
    except CRSError as err:
        raise v.err(
            ("grid", "crs"),
            f"{text!r} is not a CRS ({err})",
            'write an EPSG code, e.g. crs = "EPSG:28992"',
        ) from None
    return text


def _layer(
    v: Validator,
    name: str,
    table: Any,
    path: Path,
    data_dir: Path | None,
    inherited: LayerSpec | None,
) -> LayerSpec:
    key = ("layers", name)
    table = v.table(table, key)
    v.keys(table, key, _LAYER_KEYS)
    # A layer that only changes metadata or params of an inherited layer keeps the rest.
    base: dict[str, Any] = {}
    if inherited is not None and "source" not in table:
        base = {
            k: getattr(inherited, k)
            for k in inherited.__dataclass_fields__
            if k not in ("name", "defined_in")
        }
    merged = {**base, **table}
    v.keys(merged, key, _LAYER_KEYS, ("source", *METADATA_KEYS))

    source = v.choice(merged["source"], key + ("source",), SOURCES)
    provenance = v.choice(merged["provenance"], key + ("provenance",), PROVENANCES)
    # A GeoTIFF carries its own dtype; every other source must say what it makes.
    dtype = merged.get("dtype", "" if source == "raster" else None)
    if dtype is None:
        raise v.err(
            key + ("dtype",),
            f"missing: a {source} layer says what it makes",
            f"add dtype = one of {', '.join(DTYPES)}",
        )
    if dtype:
        v.choice(dtype, key + ("dtype",), DTYPES)
    text = {
        k: v.string(merged[k], key + (k,))
        for k in ("key", "label", "attribute", "variable", "function")
        if merged.get(k) is not None
    }

    file_path = merged.get("path")
    if source in ("raster", "vector", "ugrid"):
        if file_path is None:
            raise v.err(
                key + ("path",),
                f"missing: a {source} layer reads a file",
                "add path = '...' (relative to the data folder)",
            )
        file_path = (
            Path(v.string(file_path, key + ("path",)))
            if not isinstance(file_path, Path)
            else file_path
        )
        if not file_path.is_absolute():
            root = data_dir if "path" in table else path.parent
            file_path = ((root or path.parent) / file_path).resolve()
        if not file_path.is_file():
            raise v.err(
                key + ("path",),
                f"source file {file_path} does not exist",
                f"fix path (relative to {data_dir or path.parent})",
            )
    resample = merged.get("resample")
    if resample is not None:
        v.choice(resample, key + ("resample",), RESAMPLING)
    burn = merged.get("burn", "presence")
    if source == "vector":
        v.choice(burn, key + ("burn",), BURNS)
        if burn == "index" and not text.get("key"):
            raise v.err(
                key + ("key",),
                "missing: burn = 'index' sorts by an attribute",
                "add key = '<attribute to sort by>'",
            )
        if burn == "attribute" and not text.get("attribute"):
            raise v.err(
                key + ("attribute",),
                "missing: burn = 'attribute' burns a field",
                "add attribute = '<field>'",
            )
    if source == "derived" and not text.get("function"):
        raise v.err(
            key + ("function",),
            "missing: a derived layer is made by a function",
            "add function = '<name>'",
        )
    if source == "ugrid" and not text.get("variable"):
        raise v.err(
            key + ("variable",),
            "missing: a ugrid layer reads a face variable",
            "add variable = '<face variable>'",
        )
    nodata = _nodata(v, merged.get("nodata"), dtype, key + ("nodata",))
    base_resolution = merged.get("base_resolution")
    if base_resolution is not None:
        base_resolution = v.number(base_resolution, key + ("base_resolution",), minimum=1e-9)

    return LayerSpec(
        name=name,
        source=source,
        dtype=dtype,
        long_name=v.string(merged["long_name"], key + ("long_name",)),
        units=v.string(merged["units"], key + ("units",)),
        provenance=provenance,
        description=" ".join(v.string(merged["description"], key + ("description",)).split()),
        nodata=nodata,
        path=file_path,
        band=None
        if merged.get("band") is None
        else v.integer(merged["band"], key + ("band",), minimum=1),
        resample=resample,
        burn=burn,
        key=text.get("key"),
        label=text.get("label"),
        attribute=text.get("attribute"),
        all_touched=v.boolean(merged.get("all_touched", False), key + ("all_touched",)),
        variable=text.get("variable"),
        base_resolution=base_resolution,
        function=text.get("function"),
        inputs=tuple(v.strings(list(merged.get("inputs", ())), key + ("inputs",))),
        params=_resolve_param_files(
            v,
            dict(v.table(merged.get("params", {}), key + ("params",))),
            table,
            base,
            data_dir,
            key,
        ),
        classes=tuple(v.strings(list(merged.get("classes", ())), key + ("classes",))),
        defined_in=path if "source" in table or inherited is None else inherited.defined_in,
    )


def _nodata(v: Validator, nodata: Any, dtype: str, key: tuple) -> float | int | None:
    if nodata is None:
        return None
    if isinstance(nodata, str) and nodata.lower() == "nan":
        nodata = float("nan")
    elif isinstance(nodata, bool) or not isinstance(nodata, (int, float)):
        raise v.err(key, f'expected a number or "nan", got {nodata!r}', "e.g. nodata = -1")
    if dtype and not np.issubdtype(np.dtype(dtype), np.floating):
        info = np.iinfo(dtype)
        if not (float(nodata).is_integer() and info.min <= nodata <= info.max):
            raise v.err(
                key,
                f"{nodata!r} does not fit dtype {dtype}",
                f"use a whole number from {info.min} to {info.max}",
            )
    return nodata


def _resolve_param_files(
    v: Validator,
    params: dict[str, Any],
    table: dict,
    inherited: dict,
    data_dir: Path | None,
    key: tuple,
) -> dict[str, Any]:
    """Params named ``*_file`` are source files: made absolute (relative to the data folder of
    the definition that set them) and checked, like a layer's ``path``."""
    own = "params" in table or not inherited
    for name, value in params.items():
        if name.endswith("_file") and isinstance(value, str | Path):
            file_path = Path(value)
            if not file_path.is_absolute():
                if not own:  # inherited params are already absolute
                    continue
                file_path = ((data_dir or Path.cwd()) / file_path).resolve()
            if not file_path.is_file():
                raise v.err(
                    key + ("params", name),
                    f"{file_path} does not exist",
                    f"fix the path (relative to {data_dir})",
                )
            params[name] = file_path
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


def _extent(v: Validator, value: Any, key: str) -> tuple[float, float, float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise v.err(
            ("grid", key),
            f"expected [xmin, ymin, xmax, ymax], got {value!r}",
            "give four numbers in the grid's CRS",
        )
    xmin, ymin, xmax, ymax = (v.number(x, ("grid", key, f"[{j}]")) for j, x in enumerate(value))
    if not (xmax > xmin and ymax > ymin):
        raise v.err(
            ("grid", key),
            f"{list(value)} has xmax <= xmin or ymax <= ymin",
            "write [xmin, ymin, xmax, ymax]",
        )
    return xmin, ymin, xmax, ymax


def _check_divides(v: Validator, extent: tuple[float, ...], res: float) -> None:
    xmin, ymin, xmax, ymax = extent
    for span, axis in ((xmax - xmin, "x"), (ymax - ymin, "y")):
        cells = span / res
        if abs(cells - round(cells)) > 1e-9:
            raise v.err(
                ("grid", "resolutions"),
                f"the {axis} span of the extent ({span:g} m) "
                f"is not a whole number of {res:g} m cells",
                "adjust [grid] extent or resolutions",
            )


def _topological_order(layers: dict[str, LayerSpec], path: Path) -> list[str]:
    v = Validator.of_file(path, GridDefinitionError)
    order: list[str] = []
    state: dict[str, int] = {}  # 1 = visiting, 2 = done

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise v.err(
                ("layers", chain[0], "inputs"),
                f"layers depend on each other in a cycle: {' -> '.join(chain)}",
                "break the cycle",
            )
        state[name] = 1
        for dep in layers[name].inputs:
            if dep not in layers:
                raise v.err(
                    ("layers", name, "inputs"),
                    f"input {dep!r} is not a layer of this grid",
                    did_you_mean(dep, layers),
                )
            visit(dep, chain + (dep,))
        state[name] = 2
        order.append(name)

    for name in layers:
        visit(name, (name,))
    return order
