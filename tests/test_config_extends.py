"""A config that extends another (``extends = "national.toml"``): the parent's tables with the
child's merged over them, paths kept pointing at the parent's files, and a clear error for a
missing or cyclic parent."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine import cli
from engine.config import ConfigError, UnknownKeyError, load_config

ROOT = Path(__file__).resolve().parents[1]

HOUSING_IN_UTRECHT = """
[zonings.gemeenten]
name = "Gemeenten"
layer = "municipality"
source = "L3057"

[zonings.gemeenten.targets.GM0344.housing]
lower = 1000
unit = "homes"
source = "L10659"
"""


@pytest.fixture
def configs(tmp_path) -> Path:
    """The shipped configs in a folder of their own, beside an empty one for variants."""
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    (tmp_path / "variants").mkdir()
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_child_in_another_folder_is_its_parent_with_its_own_tables_merged_over(configs):
    parent = configs / "configs" / "national.toml"
    child = write(
        configs / "variants" / "utrecht-homes.toml",
        '# a variant\nextends = "../configs/national.toml"\n\n[run]\nresolution = 1000\n'
        + HOUSING_IN_UTRECHT,
    )
    base, config = load_config(parent), load_config(child)
    assert config.extends == [parent.resolve()]
    assert config.files[:2] == [child.resolve(), parent.resolve()]
    # A table merges key by key: [run] keeps the parent's keys beside the child's.
    assert config.resolution == 1000 and base.resolution == 250
    assert config.resolved["run"]["targets"] == base.resolved["run"]["targets"]
    # The parent's paths, relative to its folder, still name its files from the child's.
    assert config.resolved["run"]["claims"] == "../configs/claims.toml"
    assert config.resolved["run"]["provinces"][0] == "../configs/provinces/groningen.toml"
    assert list(config.provinces) == list(base.provinces)
    assert config.claims == base.claims and config.rules == base.rules
    assert list(config.zonings) == [*base.zonings, "gemeenten"]
    assert config.zonings["gemeenten"].targets
    assert "gemeenten" not in base.resolved["zonings"]


def test_a_value_or_list_of_the_child_replaces_the_parents(configs):
    child = write(
        configs / "configs" / "three.toml",
        'extends = "national.toml"\n[run]\nprovinces = ["provinces/flevoland.toml", '
        '"provinces/utrecht.toml"]\n',
    )
    config = load_config(child)
    assert list(config.provinces) == ["flevoland", "utrecht"]
    assert config.resolved["run"]["provinces"] == [
        "provinces/flevoland.toml",
        "provinces/utrecht.toml",
    ]


def test_a_chain_of_parents_and_overrides_on_top(configs):
    middle = write(
        configs / "variants" / "middle.toml",
        'extends = "../configs/national.toml"\n' + HOUSING_IN_UTRECHT,
    )
    child = write(configs / "variants" / "child.toml", 'extends = "middle.toml"\n')
    config = load_config(child, overrides={"run.resolution": 1000})
    assert config.extends == [middle.resolve(), (configs / "configs" / "national.toml").resolve()]
    assert "gemeenten" in config.zonings and config.resolution == 1000


def test_a_missing_parent_names_the_file_and_the_key(configs):
    child = write(configs / "variants" / "lost.toml", 'extends = "natoinal.toml"\n')
    with pytest.raises(ConfigError) as info:
        load_config(child)
    err = info.value
    assert err.file == str(child) and err.key == "extends"
    assert "no such file" in str(err) and "relative to this file's folder" in str(err)


def test_a_parent_that_is_not_a_path_is_refused(configs):
    child = write(configs / "variants" / "number.toml", "extends = 3\n")
    with pytest.raises(ConfigError, match="extends"):
        load_config(child)


@pytest.mark.parametrize("length", [1, 2, 3])
def test_a_cycle_is_refused_with_its_files(configs, length):
    names = [f"c{i}.toml" for i in range(length)]
    for i, name in enumerate(names):
        write(configs / "variants" / name, f'extends = "{names[(i + 1) % length]}"\n')
    with pytest.raises(ConfigError) as info:
        load_config(configs / "variants" / names[0])
    err = info.value
    assert err.key == "extends" and "leads back" in str(err)
    assert all(name in str(err) for name in names)


def test_an_error_names_the_file_that_wrote_the_key(configs):
    child = write(
        configs / "variants" / "typo.toml",
        'extends = "../configs/national.toml"\n[run]\nresolutoin = 1000\n',
    )
    with pytest.raises(UnknownKeyError) as info:
        load_config(child)
    assert info.value.file.endswith("typo.toml") and "did you mean 'resolution'" in str(info.value)
    # A key the child does not touch is the parent's.
    national = configs / "configs" / "national.toml"
    national.write_text(national.read_text().replace("[run]\n", "[run]\ngird = 1\n", 1))
    child.write_text('extends = "../configs/national.toml"\n' + HOUSING_IN_UTRECHT)
    with pytest.raises(UnknownKeyError) as info:
        load_config(child)
    assert info.value.file.endswith("national.toml") and info.value.key == "run.gird"


def test_a_province_file_may_extend_another(configs):
    child = write(
        configs / "configs" / "provinces" / "utrecht-more.toml",
        'extends = "utrecht.toml"\n[targets.housing]\nlower = 90000\n',
    )
    config = load_config(child)
    base = load_config(configs / "configs" / "provinces" / "utrecht.toml")
    assert config.scope == base.scope == "utrecht"
    assert config.provinces["utrecht"].targets["housing"].unit == "homes"
    assert (
        config.provinces["utrecht"].targets["housing"].lower_ha
        > base.provinces["utrecht"].targets["housing"].lower_ha
    )


def test_check_shows_what_a_config_extends(configs, capsys):
    child = write(
        configs / "variants" / "utrecht-homes.toml",
        'extends = "../configs/national.toml"\n' + HOUSING_IN_UTRECHT,
    )
    assert cli.main(["check", str(child), "--resolution", "1000"]) == 0
    out = capsys.readouterr().out
    assert "extends " in out and "national.toml" in out
    assert "GM0344" in out or "Utrecht" in out


def test_the_manifest_records_the_chain_and_the_merged_config(configs, tmp_path):
    import json

    parent = configs / "configs" / "provinces" / "utrecht.toml"
    child = write(
        configs / "configs" / "provinces" / "utrecht-more.toml",
        'extends = "utrecht.toml"\n[targets.housing]\nlower = 90000\n',
    )
    out = tmp_path / "run"
    assert cli.main(["run", str(child), "--resolution", "1000", "--out", str(out), "--quiet"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["extends"] == [str(parent.resolve())]
    assert (
        manifest["config"]["resolved"]["provinces"]["utrecht"]["targets"]["housing"]["lower"]
        == 90000
    )
    inputs = {entry["path"] for entry in manifest["inputs"] if entry["role"] == "config"}
    assert {str(child.resolve()), str(parent.resolve())} <= inputs


def test_a_grid_path_names_the_same_file_from_a_child_and_from_a_province(configs):
    # run.grid relative to the file that says it, not to where the run starts; a shipped
    # grid's name stays a name.
    national = configs / "configs" / "national.toml"
    definition = configs / "configs" / "grids" / "mine.toml"
    definition.parent.mkdir()
    definition.write_text((ROOT / "grids" / "nl.toml").read_text())
    assert load_config(national).grid == "nl"
    national.write_text(national.read_text().replace('grid = "nl"', 'grid = "grids/mine.toml"', 1))
    child = write(configs / "variants" / "v.toml", 'extends = "../configs/national.toml"\n')
    province = configs / "configs" / "provinces" / "utrecht.toml"
    for config in (national, child, province):
        assert Path(load_config(config).grid) == definition.resolve(), config


def test_a_province_run_finds_the_national_files_replaced_layers(configs):
    # [layers.X] path is relative to national.toml; a province run validates from the
    # province's folder, where the same text named a file that is not there.
    national = configs / "configs" / "national.toml"
    national.write_text(
        national.read_text()
        + '\n[layers.peat]\npath = "data/peat.tif"\nreason = "eigen veenkaart"\n'
        + 'dataset = "veen"\n'
    )
    province = configs / "configs" / "provinces" / "utrecht.toml"
    want = (configs / "configs" / "data" / "peat.tif").resolve()
    assert load_config(national).layers["peat"].path == want
    assert load_config(province).layers["peat"].path == want
