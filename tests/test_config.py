"""The policy configuration: what the shipped files say, and a clear error for each bad input."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from engine.config import ConfigError, from_ha, load_config, to_ha

ROOT = Path(__file__).resolve().parents[1]
NATIONAL = ROOT / "configs" / "national.toml"
PROVINCES = sorted((ROOT / "configs" / "provinces").glob("*.toml"))


@pytest.fixture(scope="module")
def national():
    return load_config(NATIONAL)


def test_national_config_holds_the_targets_of_the_source(national):
    t = national.national_targets
    c = national.claims
    assert from_ha(t["housing"].lower_ha, c["housing"]) == pytest.approx(900_000)
    assert t["housing"].source == "L3057"
    assert from_ha(t["renewable_energy"].lower_ha, c["renewable_energy"]) == pytest.approx(35)
    assert t["forest"].lower_ha == 37_400 and t["forest"].source == "L422"
    assert t["nature"].lower_ha == 40_571 and t["nature"].source == "L423"
    assert t["work"].lower_ha == 7_000
    assert t["water_storage"].rule == "deep_polder_storage" and t["water_storage"].source == "L188"


def test_all_twelve_provinces_with_their_housing_bids(national):
    assert len(national.provinces) == 12 and len(PROVINCES) == 12
    homes = {
        s: from_ha(p.targets["housing"].lower_ha, national.claims["housing"])
        for s, p in national.provinces.items()
    }
    assert sum(homes.values()) == pytest.approx(917_193)  # the digest's check sum
    assert homes["zuid-holland"] == pytest.approx(235_460)
    for p in national.provinces.values():
        assert re.fullmatch(r"L\d+", p.targets["housing"].source)
        # Shares are a scenario choice and say what they rest on.
        assert p.shares and p.shares_basis
    for claim in ("renewable_energy", "nature", "forest", "work"):
        assert sum(p.shares[claim] for p in national.provinces.values()) == pytest.approx(1.0)


def test_every_rule_and_assumption_says_where_it_comes_from(national):
    for rule in national.rules:
        assert re.fullmatch(r"L\d+(-L?\d+)?", rule.source), rule.id
    for a in national.assumptions.values():
        assert "assumption" in a.note.lower() and a.unit
    kinds = {r.kind for r in national.rules}
    assert kinds == {"exclusions", "penalties", "ladders", "reservations"}
    ids = {r.id for r in national.rules}
    assert {
        "no_building_in_floodplains",
        "einstein_telescope_no_wind",
        "barracks_at_zeewolde",
        "deep_polder_storage",
        "solar_preference_order",
    } <= ids


def test_every_province_file_loads_on_its_own():
    for path in PROVINCES:
        cfg = load_config(path)
        assert cfg.scope == path.stem
        assert cfg.province_slugs == [path.stem]


def test_overrides_reach_assumptions_and_the_contribution_matrix(national):
    dense = load_config(NATIONAL, overrides={"assumptions.housing_density_urban": 70})
    o = dense.option_names.index("housing_urban")
    k = dense.claim_names.index("housing")
    assert dense.contribution_matrix()[o, k] == pytest.approx(70 / 35)
    density = national.assumptions["housing_density_urban"].value
    assert density != 70 and national.contribution_matrix()[o, k] == pytest.approx(density / 35)
    off = load_config(NATIONAL, overrides={"rules.exclusions.natura2000.enabled": False})
    assert "natura2000" not in {r.id for r in off.rules}


def test_unit_conversions_round_trip(national):
    c = national.claims
    for claim, unit, amount in [
        ("housing", "homes", 83_500),
        ("renewable_energy", "TWh", 35.0),
        ("renewable_energy", "GWh", 1234.5),
        ("forest", "ha", 37_400),
        ("forest", "km2", 12.5),
    ]:
        ha = to_ha(amount, unit, c[claim])
        back = from_ha(ha, c[claim])
        own = amount * {"GWh": 1e-3, "km2": 100}.get(unit, 1.0)
        assert back == pytest.approx(own, rel=1e-12)
    # 35 homes/ha at the edge is the reference: 35 homes are one claim hectare.
    assert to_ha(35, "homes", c["housing"]) == pytest.approx(1.0)
    # 1 GWh/ha solar is the energy reference: 35 TWh are 35,000 claim hectares.
    assert to_ha(35, "TWh", c["renewable_energy"]) == pytest.approx(35_000)


# -- bad configs: each gives a clear error naming file, key and fix -----------------------------


def _error(overrides=None, path=NATIONAL) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides=overrides)
    return info.value


def test_unknown_key_suggests_the_right_one(tmp_path):
    # A key an override adds is the override's; a key in a file is that file's.
    err = _error({"rules.exclusions.natura2000.wher": {"layer": "natura2000"}})
    assert err.file == "overrides" and err.key == "rules.exclusions.natura2000.wher"
    assert "did you mean 'where'" in str(err)
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    rules = tmp_path / "configs" / "rules.toml"
    rules.write_text(
        rules.read_text().replace(
            "[exclusions.natura2000]", "[exclusions.natura2000]\nenabeld = true", 1
        )
    )
    err = _error(path=tmp_path / "configs" / "national.toml")
    assert err.file.endswith("rules.toml") and err.key == "rules.exclusions.natura2000.enabeld"
    assert "did you mean 'enabled'" in str(err)


def test_unknown_override_path_suggests_the_right_one():
    err = _error({"asumptions.solar_yield": 2})
    assert "did you mean 'assumptions'" in str(err)
    err = _error({"assumptions.solar_yeild": 2})
    assert "did you mean 'solar_yield'" in str(err)


def test_wrong_units_are_named():
    err = _error({"targets.housing.unit": "TWh"})
    assert err.file.endswith("national.toml") and err.key == "targets.housing.unit"
    assert "homes" in str(err)
    err = _error({"assumptions.housing_density_urban.unit": "GWh/ha"})
    assert "homes" in str(err)
    err = _error({"assumptions.solar_yield.unit": "furlongs"})
    assert "unknown unit" in str(err)


def test_a_province_that_does_not_exist():
    err = _error({"provinces.utrect.shares.nature": 0.1})
    assert "did you mean 'utrecht'" in str(err)


def test_shares_over_one_are_refused():
    err = _error({"provinces.utrecht.shares.nature": 0.99})
    assert "add up to" in str(err) and "nature" in err.key


def test_targets_cite_their_source():
    err = _error({"targets.forest.source": "somewhere"})
    assert err.key == "targets.forest.source" and "L123" in str(err)


def test_an_assumption_must_say_it_is_one():
    err = _error({"assumptions.solar_yield.note": "1 GWh per ha"})
    assert "assumption" in str(err) and err.file.endswith("claims.toml")


def test_toml_syntax_error_names_the_file(tmp_path):
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    bad = tmp_path / "configs" / "rules.toml"
    bad.write_text(bad.read_text() + "\n[broken\n")
    err = _error(path=tmp_path / "configs" / "national.toml")
    assert err.file.endswith("rules.toml") and "TOML" in str(err)


def test_province_file_with_unknown_section(tmp_path):
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    p = tmp_path / "configs" / "provinces" / "zeeland.toml"
    p.write_text(p.read_text() + '\n[exclusion.no_wind]\nsource = "L1"\n')
    err = _error(path=p)
    assert err.file.endswith("zeeland.toml") and "did you mean 'exclusions'" in str(err)


def test_config_text_is_never_evaluated():
    # A value that looks like code stays text and fails validation as text.
    from engine.config import parse_overrides

    ov = parse_overrides(["assumptions.solar_yield=__import__('os').getcwd()"])
    assert ov["assumptions.solar_yield"] == "__import__('os').getcwd()"
    err = _error(ov)
    assert "expected a number" in str(err)


def test_a_deviation_from_the_base_data_needs_a_reason(tmp_path):
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    nat = tmp_path / "configs" / "national.toml"
    nat.write_text(
        nat.read_text() + '\n[layers.peat]\npath = "peat.tif"\nreason = ""\n'
        'dataset = "Bodemkaart 1:50.000"\n'
    )
    err = _error(path=nat)
    assert err.key == "layers.peat.reason" and "pas toe of leg uit" in str(err)


# -- overrides reach only what the schema has ----------------------------------------------------


@pytest.mark.parametrize(
    "overrides, key, words",
    [
        ({"foo": 1}, "foo", "unknown key"),
        ({"rules.exclusion": {}}, "rules.exclusion", "did you mean 'exclusions'"),
        ({"run.resolutoin": 1000}, "run.resolutoin", "did you mean 'resolution'"),
        ({"targets.housing.lowr": 5}, "targets.housing.lowr", "did you mean 'lower'"),
        (
            {"provinces.utrecht.province.nmae": "x"},
            "provinces.utrecht.province.nmae",
            "did you mean 'name'",
        ),
        ({"assumptions.new_density": 80}, "assumptions.new_density", "no such assumption"),
        ({"assumptions.new_density.value": 80}, "assumptions.new_density.value", "not a key"),
        ({"targets.housing.lower.x": 1}, "targets.housing.lower.x", "not a table"),
    ],
    ids=[
        "top",
        "rule-kind",
        "run",
        "target",
        "province-meta",
        "new-assumption",
        "new-assumption-value",
        "into-a-value",
    ],
)
def test_an_override_must_name_a_key_the_config_can_have(overrides, key, words):
    from engine.config import UnknownKeyError

    with pytest.raises(UnknownKeyError) as info:
        load_config(NATIONAL, overrides=overrides)
    assert info.value.file == "overrides" and info.value.key == key
    assert words in str(info.value)


def test_an_override_may_add_what_the_schema_allows():
    cfg = load_config(
        NATIONAL,
        overrides={"targets.forest.upper": 50_000, "rules.exclusions.natura2000.note": "why"},
    )
    assert cfg.national_targets["forest"].upper_ha == 50_000
    assert next(r for r in cfg.rules if r.id == "natura2000").note == "why"


@pytest.mark.parametrize(
    "overrides, words",
    [
        ({"run.resolution": 250.5}, "expected a whole number"),
        ({"run.targets": "hrad"}, "did you mean 'hard'"),
        ({"rules.exclusions.natura2000.options": "housing_urban"}, "expected a list of names"),
        ({"rules.reservations.deep_polder_storage.order.ascending": "yes"}, "true or false"),
        ({"targets.housing.lower": -5}, "is below 0"),
        ({"assumptions.solar_yield": True}, "expected a number"),
    ],
)
def test_wrong_types_and_ranges_are_named(overrides, words):
    assert words in str(_error(overrides))


# -- the environment ----------------------------------------------------------------------------


def test_environment_settings_are_checked(tmp_path):
    from engine.config import SettingError, check_environment

    check_environment(
        {"RUIMTEPUZZEL_ANALYSIS": "Quick", "RUIMTEPUZZEL_CACHE": str(tmp_path), "OTHER": "x"}
    )
    for env, words in (
        ({"RUIMTEPUZZEL_ANALYSIS": "fulll"}, "did you mean 'full'"),
        ({"RUIMTEPUZZEL_CACHE": str(NATIONAL)}, "a file, not a folder"),
        ({"RUIMTEPUZZEL_CAHCE": "x"}, "did you mean 'RUIMTEPUZZEL_CACHE'"),
    ):
        with pytest.raises(SettingError, match=words):
            check_environment(env)
