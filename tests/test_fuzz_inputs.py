"""Fuzzing the inputs: configs (overrides and files) and replacement rasters, valid and broken.

Whatever goes in, ``load_config``, ``check`` and the replacement of a layer either succeed with
a result that agrees with the input, or stop with a :class:`RuimtepuzzelError` that names the
culprit (file and key or layer); never another exception, never a silent wrong result (a
raster without data on the land of the run must be refused, not read as a layer).

Small and quick: the synthetic grid of tests/rp_grid.py, a few dozen examples per property.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from rasterio.transform import from_origin
from rp_grid import synthetic_grid

from configs import national_copy
from engine.config import ConfigError, UnknownKeyError, load_config, load_raw
from engine.errors import RuimtepuzzelError
from engine.grid.sources import LayerFileError
from engine.resources import shipped_dir
from engine.run import check, substitute_layers

CONFIGS = shipped_dir("configs")
NATIONAL = CONFIGS / "national.toml"
UTRECHT = CONFIGS / "provinces" / "utrecht.toml"
FAST = settings(
    max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


def _leaves(node, prefix=()):
    if isinstance(node, dict):
        for k, v in node.items():
            if k != "__path__":
                yield from _leaves(v, prefix + (k,))
    else:
        yield ".".join(prefix)


LEAVES = sorted(_leaves(load_raw(NATIONAL)[0]))
TABLES = ["", *sorted({leaf.rsplit(".", 1)[0] for leaf in LEAVES if "." in leaf})]


@st.composite
def keys(draw):
    """A key of the config, a typo of one, or a new key under a table that exists."""
    kind = draw(st.sampled_from(["leaf", "leaf", "typo", "new"]))
    if kind == "new":
        table = draw(st.sampled_from(TABLES))
        name = draw(st.from_regex(r"[a-z_]{1,8}", fullmatch=True))
        return f"{table}.{name}" if table else name
    leaf = draw(st.sampled_from(LEAVES))
    if kind == "leaf":
        return leaf
    parts = leaf.split(".")
    i = draw(st.integers(0, len(parts) - 1))
    word = parts[i]
    j = draw(st.integers(0, len(word)))
    parts[i] = word[:j] + draw(st.sampled_from("aex_")) + word[j:]
    return ".".join(parts)


VALUES = st.one_of(
    st.integers(-(10**9), 10**9),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=8),
    st.sampled_from(
        [
            "homes",
            "TWh",
            "ha",
            "km2",
            "furlongs",
            "L188",
            "L999999",
            "hard",
            "elastic",
            "#00ff00",
            "value",
            "natura2000",
        ]
    ),
    st.lists(st.sampled_from(["housing_urban", "nature", "nope"]), max_size=3),
    st.fixed_dictionaries({"layer": st.sampled_from(["peat", "nope"])}),
)


def _culprit_named(err: ConfigError, path: str) -> bool:
    """The error's key is in the part of the config the override changed (its first two
    parts, ``*`` for all provinces), or its message names what the override changed."""
    mine, theirs = path.split("."), err.key.split(".")
    same = all(a == b or b == "*" for a, b in zip(mine[:2], theirs[:2]))
    return bool(err.key) and (same or any(p in str(err) for p in mine[1:2]))


@FAST
@given(path=keys(), value=VALUES)
def test_an_override_gives_a_config_or_names_its_key(path, value):
    try:
        config = load_config(NATIONAL, {path: value})
    except ConfigError as err:
        event(f"refused: {type(err).__name__}")
        assert str(err).startswith(f"{err.file}: {err.key}: ") and err.file
        if isinstance(err, UnknownKeyError):
            assert err.file == "overrides" and path.startswith(err.key.split(" ")[0])
        assert _culprit_named(err, path), (path, value, str(err))
        return
    event("accepted")
    # Accepted: the value is in the config as resolved, where the override put it.
    node = config.resolved
    parts = path.split(".")
    if parts[0] == "assumptions" and len(parts) == 2:
        parts.append("value")
    for part in parts:
        node = node[part]
    assert node == value or (node != node and value != value)
    if parts[0] == "assumptions" and parts[-1] == "value":
        assert config.assumptions[parts[1]].value == float(value)
    if path not in LEAVES:  # a new key must mean something: the validated config changed
        assert _meaning(config) != _meaning(BASE), f"{path} = {value!r} accepted, ignored"


def _meaning(config) -> tuple:
    """What a config says, without the record of how it was read."""
    skip = {"resolved", "overrides", "files"}
    return tuple(getattr(config, f) for f in config.__dataclass_fields__ if f not in skip)


BASE = load_config(NATIONAL)


# A national copy with one piece of text changed: each a file error a user can make.
MUTATIONS = {
    "missing-piece": (f'"{CONFIGS / "claims.toml"}"', f'"{CONFIGS / "claims-missing.toml"}"'),
    "unknown-section": ("[run]", "[rnu]\nx = 1\n[run]"),
    "unknown-key": ("[run]", "[run]\nresolutoin = 100"),
    "wrong-type": ("[run]", '[run]\nresolution = "fine"'),
    "bad-syntax": ("[run]", "[run"),
    "missing-province": (f'"{CONFIGS / "provinces"}/', f'"{CONFIGS / "provinces"}/missing-'),
    "binary": None,
}


@settings(max_examples=len(MUTATIONS), deadline=None, derandomize=True)
@given(st.sampled_from(sorted(MUTATIONS)))
def test_a_broken_config_file_is_named(mutation):
    with tempfile.TemporaryDirectory() as tmp:
        path = national_copy(Path(tmp))
        change = MUTATIONS[mutation]
        if change is None:
            path.write_bytes(b"\xff\xfe\x00garbage")
        else:
            old, new = change
            text = path.read_text()
            assert old in text, old
            path.write_text(text.replace(old, new, 1))
        with pytest.raises(ConfigError) as info:
            load_config(path)
        err = info.value
        assert err.key and err.problem
        assert Path(err.file).name == "national.toml" or "missing" in err.file, str(err)


@pytest.fixture(scope="module")
def grid():
    return synthetic_grid(block=12)


@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    housing=st.integers(0, 200_000),
    nature=st.floats(0, 400_000),
    mode=st.sampled_from(["hard", "elastic"]),
    share=st.floats(0, 1.2),
)
def test_check_accepts_only_what_fits(grid, housing, nature, mode, share):
    overrides = {
        "run.targets": mode,
        "provinces.utrecht.targets.housing.lower": housing,
        "targets.nature.lower": nature,
        "provinces.utrecht.shares.forest": share,
    }
    try:
        summary = check(UTRECHT, grid=grid, overrides=overrides)
    except RuimtepuzzelError as err:
        event(f"refused: {type(err).__name__}")
        text = str(err)
        named = (
            "Utrecht" in text
            or "utrecht" in text
            or "shares.forest" in text
            or "targets.nature" in text
        )
        assert named, text
        return
    event(f"accepted ({mode})")
    # Accepted: hard, no target above the land its claim may have; elastic, each that is
    # above it said in a note (the run reports it short), never passed over in silence.
    for row in summary["rows"]:
        if row["lower_ha"] is not None and row["lower_ha"] > row["allowed_ha"] * (1 + 1e-9):
            assert mode == "elastic", row
            assert any(
                n.startswith(f"{row['claim']} in {row['zone']} ") for n in summary["notes"]
            ), row


# -- replacement rasters ---------------------------------------------------------------------------

CRS = ["EPSG:28992", "EPSG:4326", "EPSG:3035", None]


def _mostly(good, *bad):
    """A strategy that draws ``good`` most of the time: one broken property at a time is what
    finds a check that is missing; all broken at once hides it behind the first refusal."""
    return st.sampled_from([good] * (2 * len(bad) + 1) + list(bad))


@st.composite
def rasters(draw):
    return {
        "crs": draw(_mostly("EPSG:28992", "EPSG:4326", "EPSG:3035", None)),
        "shift": draw(_mostly((0, 0), (3, -2), (400, 0), (-5000, 90))),  # in cells
        "res": draw(_mostly(1000.0, 500.0, 2000.0)),
        "dtype": draw(st.sampled_from(["uint8", "int16", "float32", "float64"])),
        "nodata": draw(st.sampled_from([None, 255, -1, "nan"])),
        "bands": draw(_mostly(1, 2, 3)),
        "band": draw(_mostly(None, 1, 2, 4)),
        "hole": draw(st.sampled_from([0.0, 0.0, 0.01, 0.04, 0.2, 0.6, 1.0])),  # no data
        "value": draw(_mostly(1, 255, 0.5, 7)),
        "cut": draw(_mostly(None, 0.6, 0.05)),
        "max_share": draw(_mostly(None, 0.0, 0.5, 1.0)),
    }


def _write(path: Path, spec: dict, grid) -> np.ndarray:
    """The raster of ``spec``; returns band 1's data with NaN where it has no data."""
    ny, nx = grid["peat"].shape
    scale = 1000.0 / spec["res"]
    h, w = max(1, int(ny * scale)), max(1, int(nx * scale))
    x0 = float(grid.x.values[0]) - 500 + spec["shift"][0] * 1000
    y0 = float(grid.y.values[0]) + 500 + spec["shift"][1] * 1000
    rng = np.random.default_rng(len(str(spec)))
    data = np.where(rng.random((h, w)) < 0.5, spec["value"], 0).astype(np.float64)
    hole = rng.random((h, w)) < spec["hole"]
    nodata = spec["nodata"]
    dtype = np.dtype(spec["dtype"])
    if nodata == "nan":
        nodata = np.nan if dtype.kind == "f" else None
    if (
        nodata is not None
        and dtype.kind != "f"
        and not (np.iinfo(dtype).min <= nodata <= np.iinfo(dtype).max)
    ):
        nodata = None
    if nodata is not None:
        data[hole] = nodata
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=w,
        height=h,
        count=spec["bands"],
        dtype=dtype,
        crs=spec["crs"],
        nodata=nodata,
        transform=from_origin(x0, y0, spec["res"], spec["res"]),
    ) as dst:
        for b in range(spec["bands"]):
            dst.write(data.astype(dtype), b + 1)
    if spec["cut"]:
        raw = path.read_bytes()
        path.write_bytes(raw[: int(len(raw) * spec["cut"])])
    written = data.astype(dtype).astype(np.float64)
    if nodata is not None:
        written[np.isnan(written) if np.isnan(nodata) else written == nodata] = np.nan
    return written


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=rasters())
def test_a_replacement_raster_is_used_as_written_or_refused_by_name(grid, spec):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = _write(folder / "peat.tif", spec, grid)
        extra = "" if spec["band"] is None else f"band = {spec['band']}\n"
        if spec["max_share"] is not None:
            extra += f"max_nodata_share = {spec['max_share']}\n"
        config = load_config(
            national_copy(
                folder,
                extra=(
                    '[layers.peat]\npath = "peat.tif"\nreason = "fuzz"\ndataset = "fuzz"\n' + extra
                ),
            )
        )
        land = grid["land"].values == 1
        try:
            ds, (dev,), _ = substitute_layers(config, grid)
        except RuimtepuzzelError as err:
            event(f"refused: {err.problem.split(': ', 1)[-1][:30]}")
            assert isinstance(err, ConfigError), repr(err)
            assert err.file.endswith("national.toml") and err.key.startswith("layers.peat")
            if isinstance(err, LayerFileError):
                assert "peat.tif" in str(err)
            return
        event("accepted")
        # Accepted: the file could be read, said which band, lay on the grid, and the values
        # it gave are the ones it holds; the base layer fills at most the share allowed.
        assert spec["cut"] is None, "a file cut short was read"
        assert spec["crs"] is not None
        assert spec["band"] is None or spec["band"] <= spec["bands"]
        assert spec["bands"] == 1 or spec["band"] is not None
        peat = ds["peat"].values
        assert peat.dtype == grid["peat"].dtype
        assert set(np.unique(peat[land])) <= {0, 1}
        limit = 0.05 if spec["max_share"] is None else spec["max_share"]
        assert dev["land_cells_from_base"] <= limit * land.sum()
        aligned = spec["crs"] == "EPSG:28992" and spec["shift"] == (0, 0) and spec["res"] == 1000.0
        if aligned:
            has = ~np.isnan(data)
            np.testing.assert_array_equal(peat[has], data[has])
            assert dev["land_cells_from_base"] == int((land & ~has).sum())
            base = grid["peat"].values
            np.testing.assert_array_equal(peat[~has], base[~has])
