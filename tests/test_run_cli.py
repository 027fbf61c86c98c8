"""``ruimtepuzzel run`` and ``ruimtepuzzel check`` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NATIONAL = ROOT / "configs" / "national.toml"
UTRECHT = ROOT / "configs" / "provinces" / "utrecht.toml"

import engine.cli as cli


def test_check_prints_targets_against_the_land_allowed(capsys):
    assert cli.main(["check", str(NATIONAL), "--resolution", "1000"]) == 0
    out = capsys.readouterr().out
    assert "target ha / land allowed ha" in out and "Zuid-Holland" in out and "ok:" in out


def test_check_fails_on_a_target_the_land_cannot_take(capsys):
    rc = cli.main(["check", str(UTRECHT), "--resolution", "1000",
                   "--set", "provinces.utrecht.targets.housing.lower=90000000"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "utrecht.toml" in err and "targets.housing" in err and "lower the target" in err


def test_a_bad_config_is_an_error_without_traceback(capsys):
    rc = cli.main(["check", str(NATIONAL), "--set", "targets.housing.unit=TWh"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "national.toml: targets.housing.unit" in err and "Traceback" not in err


def test_run_writes_the_outputs(tmp_path, capsys):
    rc = cli.main(["run", str(UTRECHT), "--resolution", "1000", "--out", str(tmp_path),
                   "--quiet", "--set", "assumptions.housing_density_urban=80"])
    assert rc == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["status"] == "optimal" and report["scope"] == "utrecht"
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["config"]["overrides"] == {"assumptions.housing_density_urban": 80}
    assert "wrote" in capsys.readouterr().out
