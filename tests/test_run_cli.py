"""``ruimtepuzzel run`` and ``ruimtepuzzel check`` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import engine.cli as cli

ROOT = Path(__file__).resolve().parents[1]
NATIONAL = ROOT / "configs" / "national.toml"
UTRECHT = ROOT / "configs" / "provinces" / "utrecht.toml"


def test_check_prints_targets_against_the_land_allowed(capsys):
    assert cli.main(["check", str(NATIONAL), "--resolution", "1000"]) == 0
    out = capsys.readouterr().out
    assert "target ha / land allowed ha" in out and "Zuid-Holland" in out and "ok:" in out


def test_check_fails_on_a_target_the_land_cannot_take(capsys):
    too_many = ["--set", "provinces.utrecht.targets.housing.lower=90000000"]
    rc = cli.main(
        ["check", str(UTRECHT), "--resolution", "1000", "--set", "run.targets=hard", *too_many]
    )
    assert rc == 2  # as run: the one exit status of a refusal
    out, err = capsys.readouterr()
    assert "target ha / land allowed ha" in out  # the table shows where
    assert "utrecht.toml" in err and "targets.housing" in err and "lower the target" in err
    # Elastic targets (the default): a shortfall to report, not an error (DESIGN).
    assert cli.main(["check", str(UTRECHT), "--resolution", "1000", *too_many]) == 0
    out = capsys.readouterr().out
    assert "note: housing in Utrecht (province)" in out and "reports the shortfall" in out
    # ... and its last line does not say that everything fits.
    assert out.splitlines()[-1].startswith(
        "ok: the config is valid; 1 target is above the land its rules"
    )


def test_check_and_run_refuse_targets_that_fit_one_by_one_alike(tmp_path, capsys):
    from test_inputs import joint_overrides

    from engine.grid import open_grid

    joint = joint_overrides(open_grid("nl", resolution=1000))
    sets = [arg for key, value in joint.items() for arg in ("--set", f"{key}={json.dumps(value)}")]
    rc = cli.main(["check", str(UTRECHT), "--resolution", "1000", *sets])
    checked = capsys.readouterr().err
    assert rc == 2 and "ruimtepuzzel check: error: the hard targets cannot all be met" in checked
    assert "in zone 'Utrecht'" in checked
    rc = cli.main(
        [
            "run",
            str(UTRECHT),
            "--resolution",
            "1000",
            "--quiet",
            "--out",
            str(tmp_path / "out"),
            "--analysis",
            "off",
            *sets,
        ]
    )
    ran = capsys.readouterr().err
    assert rc == 2
    assert ran[ran.index("error:") :] == checked[checked.index("error:") :]


def test_unknown_set_keys_are_refused_with_a_suggestion(capsys):
    for key, words in (
        ("foo=1", "overrides: foo: unknown key"),
        ("rules.exclusion.natura2000.enabled=false", "did you mean 'exclusions'"),
        ("run.resolutoin=1000", "did you mean 'resolution'"),
        ("assumptions.new_density=80", "no such assumption"),
        ("=1", "expected KEY=VALUE"),
    ):
        assert cli.main(["check", str(UTRECHT), "--resolution", "1000", "--set", key]) == 2
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err, key


def test_a_bad_environment_setting_stops_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RUIMTEPUZZEL_ANALYSIS", "fulll")
    out = tmp_path / "out"
    assert (
        cli.main(["run", str(UTRECHT), "--resolution", "1000", "--out", str(out), "--quiet"]) == 2
    )
    assert "RUIMTEPUZZEL_ANALYSIS='fulll'" in capsys.readouterr().err and not out.exists()
    monkeypatch.setenv("RUIMTEPUZZEL_ANALYSIS", "quick")
    monkeypatch.setenv("RUIMTEPUZZEL_ANALYSYS", "off")
    assert cli.main(["check", str(UTRECHT), "--resolution", "1000"]) == 2
    assert "did you mean 'RUIMTEPUZZEL_ANALYSIS'" in capsys.readouterr().err
    monkeypatch.delenv("RUIMTEPUZZEL_ANALYSYS")
    monkeypatch.setenv("RUIMTEPUZZEL_CACHE", str(NATIONAL))  # a file, not a folder
    assert cli.main(["check", str(UTRECHT), "--resolution", "1000"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_a_programming_error_keeps_its_traceback(monkeypatch):
    # Only a RuimtepuzzelError is the user's; a KeyError inside the engine is a bug.
    import engine.run

    def broken(*args, **kwargs):
        return {}["x"]

    monkeypatch.setattr(engine.run, "check", broken)
    with pytest.raises(KeyError):
        cli.main(["check", str(UTRECHT)])


def test_version_and_log_levels(capsys):
    import logging

    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.startswith("ruimtepuzzel ")
    engine_log = logging.getLogger("engine")
    for flags, level in (
        ([], logging.INFO),
        (["-q"], logging.WARNING),
        (["--verbose"], logging.DEBUG),
    ):
        cli.main([*flags, "check", str(UTRECHT), "--resolution", "1000"])
        assert engine_log.level == level, flags
    capsys.readouterr()


def test_the_highs_banner_stays_off_stdout():
    import subprocess
    import sys

    main = "import sys; from engine.cli import main; sys.exit(main())"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            main,
            "check",
            str(UTRECHT),
            "--resolution",
            "1000",
            "--set",
            "run.targets=hard",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0 and "ok:" in done.stdout
    assert "HiGHS" not in done.stdout


def test_a_bad_config_is_an_error_without_traceback(capsys):
    rc = cli.main(["check", str(NATIONAL), "--set", "targets.housing.unit=TWh"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "national.toml: targets.housing.unit" in err and "Traceback" not in err


def test_run_writes_the_outputs(tmp_path, capsys):
    rc = cli.main(
        [
            "run",
            str(UTRECHT),
            "--resolution",
            "1000",
            "--out",
            str(tmp_path),
            "--quiet",
            "--set",
            "assumptions.housing_density_urban=80",
        ]
    )
    assert rc == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["status"] == "optimal" and report["scope"] == "utrecht"
    # The default method is auto: which backend it took, and by what estimates, is on record.
    assert report["method_choice"]["method"] == report["method"]
    assert report["method_choice"]["fast_estimate_s"] > 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["solver"]["method_choice"] == report["method_choice"]
    assert manifest["config"]["overrides"] == {"assumptions.housing_density_urban": 80}
    assert "geschreven in" in capsys.readouterr().out


def test_compare_names_a_folder_that_is_no_run(tmp_path, capsys):
    assert (
        cli.main(
            ["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "c")]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "not a run folder" in err and "Traceback" not in err


def test_solve_demo_refuses_sizes_it_cannot_make(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["solve-demo", "--cells", "0"])
    assert info.value.code == 2 and "--cells: 0 is below 100" in capsys.readouterr().err
