"""Scenario sweeps on a real LocalCluster: resume after a kill, 1 vs 2 workers, failures, schema.

Small: the 1000 m demo grid, 3-4 variants, single-threaded workers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.sweep import RESULT_COLUMNS, ScenarioError, load_scenario, sweep

ROOT = Path(__file__).resolve().parents[1]
NATIONAL = ROOT / "configs" / "national.toml"

GRID = f"""
[sweep]
name = "t-grid"
warm_start = true
base = "{NATIONAL}"
resolution = 1000

[[axis]]
name = "storage"
key = "assumptions.deep_polder_storage_share"
values = [0.05, 0.10]
labels = ["5pct", "10pct"]

[[axis]]
name = "n2000"
key = "rules.exclusions.natura2000.enabled"
values = [true, false]
"""

LIST = f"""
[sweep]
name = "t-list"
base = "{NATIONAL}"
resolution = 1000
combine = "list"

[[variant]]
id = "base"

[[variant]]
set = {{ "assumptions.deep_polder_storage_share" = 0.1 }}
warm_from = "base"

[[variant]]
id = "impossible"
set = {{ "run.targets" = "hard", "targets.housing.lower" = 90000000 }}
"""


def scenario(tmp_path, text, name="s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def frame(out):
    import pandas as pd

    return pd.read_parquet(Path(out) / "results.parquet").drop(columns=["seconds", "solve_seconds"])


def test_variant_ids_are_stable_readable_and_neighbours_form_a_tree(tmp_path):
    s = load_scenario(scenario(tmp_path, GRID))
    assert [v.id for v in s.variants] == [
        "storage-5pct__n2000-on",
        "storage-5pct__n2000-off",
        "storage-10pct__n2000-on",
        "storage-10pct__n2000-off",
    ]
    assert [v.warm_from for v in s.variants] == [
        None,
        "storage-5pct__n2000-on",
        "storage-5pct__n2000-on",
        "storage-10pct__n2000-on",
    ]
    assert s.variants[3].overrides == {
        "assumptions.deep_polder_storage_share": 0.10,
        "rules.exclusions.natura2000.enabled": False,
    }
    listed = load_scenario(scenario(tmp_path, LIST, "l.toml"))
    assert [v.id for v in listed.variants] == [
        "base",
        "deep_polder_storage_share-0.1",
        "impossible",
    ]
    with pytest.raises(ScenarioError, match="axis.storage.labels"):
        load_scenario(
            scenario(
                tmp_path, GRID.replace('labels = ["5pct", "10pct"]', 'labels = ["a"]'), "bad.toml"
            )
        )


def test_shipped_scenarios_load_and_their_overrides_are_valid():
    from engine.config import load_config

    for name, n in (("demo-sweep.toml", 4), ("national-sweep.toml", 108)):
        s = load_scenario(ROOT / "scenarios" / name)
        assert len(s.variants) == n
        for v in s.variants[:: max(1, n // 10)] + s.variants[-1:]:
            load_config(s.base, v.overrides)


@pytest.fixture(scope="module")
def list_sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("list")
    out = tmp / "out2"
    summary = sweep(scenario(tmp, LIST), out, workers=2, progress=False)
    return tmp, out, summary


def test_a_failing_variant_is_recorded_and_the_others_complete(list_sweep):
    _, out, summary = list_sweep
    assert summary["variants"] == 3 and summary["failed"] == 1
    rec = json.loads((out / "impossible.variant.json").read_text())
    assert rec["status"] == "error" and "housing" in rec["error"]
    for vid in ("base", "deep_polder_storage_share-0.1"):
        assert (out / vid / "report.json").is_file() and (out / vid / "allocation.tif").is_file()
        assert json.loads((out / f"{vid}.variant.json").read_text())["status"] == "optimal"
    assert json.loads((out / "deep_polder_storage_share-0.1.variant.json").read_text())[
        "warm_started"
    ]


def test_every_variant_folder_is_one_whole_run(list_sweep):
    from engine.outputs import verify_run_folder

    _, out, _ = list_sweep
    folders = sorted(
        p for p in out.iterdir() if p.is_dir() and p.name not in ("report", "robustness")
    )
    # the failed variant's run never swapped in a folder, so there is none to be half there
    assert [p.name for p in folders] == ["base", "deep_polder_storage_share-0.1"]
    for folder in folders:
        verify_run_folder(folder)
        assert not (folder / "variant.json").exists()
        assert (out / f"{folder.name}.variant.json").is_file()


def test_a_variant_whose_folder_is_not_whole_is_run_again(list_sweep):
    tmp, _, _ = list_sweep
    out = tmp / "out-whole"
    sweep(tmp / "s.toml", out, workers=1, progress=False)
    record = out / "base.variant.json"
    before = record.stat().st_mtime_ns
    (out / "base" / "summary.md").write_text("edited by hand\n")
    summary = sweep(tmp / "s.toml", out, workers=1, progress=False)
    assert summary["computed"] == 1 and summary["reused"] == 2
    assert record.stat().st_mtime_ns != before
    from engine.outputs import verify_run_folder

    verify_run_folder(out / "base")


def test_results_table_schema(list_sweep):
    import pandas as pd

    _, out, _ = list_sweep
    data = pd.read_parquet(out / "results.parquet")
    assert list(data.columns) == RESULT_COLUMNS[:9] + ["axis_variant"] + RESULT_COLUMNS[9:]
    assert data["variant_index"].dtype == "int64"
    for col in (
        "objective",
        "gap",
        "lower_ha",
        "upper_ha",
        "allocated_ha",
        "shortfall_ha",
        "shadow_price",
    ):
        assert data[col].dtype == "float64", col
    failed = data[data["variant"] == "impossible"]
    assert len(failed) == 1 and failed["zoning"].isna().all()
    ok = data[data["status"] == "optimal"]
    # one row per variant x zoning x zone x claim, each variant once
    assert not ok.duplicated(["variant", "zoning", "zone", "claim"]).any()
    report = json.loads((out / "base" / "report.json").read_text())
    assert (ok["variant"] == "base").sum() == len(report["targets"])
    csv = pd.read_csv(out / "results.csv")
    assert len(csv) == len(data) and list(csv.columns) == list(data.columns)


def test_one_and_two_workers_give_identical_results(list_sweep):
    import pandas.testing as pdt

    tmp, out2, _ = list_sweep
    out1 = tmp / "out1"
    summary = sweep(tmp / "s.toml", out1, workers=1, progress=False)
    assert summary["computed"] == 3
    pdt.assert_frame_equal(frame(out1), frame(out2), check_exact=True)
    # and a rerun computes nothing, and gives the same table
    again = sweep(tmp / "s.toml", out1, workers=1, progress=False)
    assert again["computed"] == 0 and again["reused"] == 3
    pdt.assert_frame_equal(frame(out1), frame(out2), check_exact=True)


def test_the_report_page(list_sweep):
    from engine.sweep import write_report

    _, out, _ = list_sweep
    page = write_report(out)
    text = page.read_text()
    assert "impossible" in text and "objective.png" in text
    assert (out / "report" / "objective.png").is_file()


def test_resume_after_a_kill(tmp_path):
    path = scenario(tmp_path, GRID)
    out = tmp_path / "out"
    main = "import sys; from engine.cli import main; sys.exit(main())"
    cmd = [
        sys.executable,
        "-c",
        main,
        "sweep",
        str(path),
        "--out",
        str(out),
        "--workers",
        "1",
        "--quiet",
    ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.time() + 90
        while time.time() < deadline and not list(out.glob("*.variant.json")):
            time.sleep(0.1)
        assert list(out.glob("*.variant.json")), "no variant finished in 90 s"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its workers, mid-way
        proc.wait()
    before = {
        p.name.removesuffix(".variant.json"): p.stat().st_mtime_ns
        for p in out.glob("*.variant.json")
    }
    assert 1 <= len(before) < 4
    assert not (out / "results.parquet").exists()
    from engine.sweep import write_report

    page = write_report(out).read_text()  # a report of the variants done so far
    assert all(vid in page for vid in before)
    (out / "results.parquet").unlink()
    summary = sweep(path, out, workers=1, progress=False)
    assert summary["computed"] == 4 - len(before) and summary["reused"] == len(before)
    for vid, mtime in before.items():  # finished variants were not recomputed
        assert (out / f"{vid}.variant.json").stat().st_mtime_ns == mtime
    data = frame(out)
    assert sorted(data["variant"].unique()) == sorted(v.id for v in load_scenario(path).variants)
    assert not data.duplicated(["variant", "zoning", "zone", "claim"]).any()
    assert (data["status"] == "optimal").all()
    assert not list(out.glob("*/.*.tmp-*"))
    from engine.outputs import verify_run_folder

    for v in load_scenario(path).variants:  # the killed one's too: run swapped it in whole
        verify_run_folder(out / v.id)


def test_an_existing_scheduler_gives_the_same_results(list_sweep):
    import pandas.testing as pdt
    from dask.distributed import LocalCluster

    tmp, out2, _ = list_sweep
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
    ) as cluster:
        summary = sweep(
            tmp / "s.toml", tmp / "out3", scheduler=cluster.scheduler_address, progress=False
        )
    assert summary["computed"] == 3 and summary["failed"] == 1
    pdt.assert_frame_equal(frame(tmp / "out3"), frame(out2), check_exact=True)


def test_the_command_line(list_sweep, capsys):
    import engine.cli as cli

    tmp, out, _ = list_sweep
    assert cli.main(["sweep", str(tmp / "s.toml"), "--out", str(out), "--list"]) == 0
    listed = capsys.readouterr().out
    assert "optimal   base" in listed and "error     impossible" in listed
    # everything done: nothing recomputed; a failed variant makes the exit status 1
    assert cli.main(["sweep", str(tmp / "s.toml"), "--out", str(out), "--quiet"]) == 1
    assert "0 computed, 3 already done, 1 failed" in capsys.readouterr().out
    assert cli.main(["sweep-report", str(out)]) == 0
    assert "index.html" in capsys.readouterr().out


# -- bad scenarios and options: refused before any work, with what and where --------------------


@pytest.mark.parametrize(
    "old, new, words",
    [
        (
            "resolution = 1000",
            "resolutoin = 1000",
            ["sweep.resolutoin", "did you mean 'resolution'"],
        ),
        (
            "warm_start = true",
            "warm_strat = true",
            ["sweep.warm_strat", "did you mean 'warm_start'"],
        ),
        ("warm_start = true", 'methd = "highs"', ["sweep.methd", "did you mean 'method'"]),
        ("values = [0.05, 0.10]", "valeus = [0.05, 0.10]", ["did you mean 'values'"]),
        ("[[axis]]", "[[axes]]", ["axes", "did you mean 'axis'"]),
        ("warm_start = true", 'method = "hihgs"', ["sweep.method", "did you mean 'highs'"]),
        ("warm_start = true", 'warm_start = "yes"', ["sweep.warm_start", "true or false"]),
        ("resolution = 1000", 'resolution = "fine"', ["sweep.resolution", "expected a number"]),
        (
            'key = "assumptions.deep_polder_storage_share"',
            'key = "assumptions.deep_polder_storage_shar"',
            ["axis.storage.key", "no such assumption", "did you mean 'deep_polder_storage_share'"],
        ),
        (
            'key = "rules.exclusions.natura2000.enabled"',
            'key = "rules.exclusions.natura2000.enabeld"',
            ["axis.n2000.key", "rules.exclusions.natura2000.enabeld", "did you mean 'enabled'"],
        ),
        ("resolution = 1000", "resolution = 300", ["sweep.resolution", "300 m is not one of"]),
    ],
    ids=[
        "resolution",
        "warm_start",
        "method-key",
        "values",
        "axes",
        "method-value",
        "warm-start-type",
        "resolution-type",
        "unknown-assumption",
        "unknown-rule-key",
        "resolution-not-built",
    ],
)
def test_bad_scenarios_are_refused_with_a_suggestion(tmp_path, old, new, words):
    assert old in GRID
    with pytest.raises(ScenarioError) as info:
        load_scenario(scenario(tmp_path, GRID.replace(old, new, 1)))
    text = str(info.value)
    assert text.startswith(str(tmp_path / "s.toml"))
    for word in words:
        assert word in text


def test_a_listed_variant_with_an_unknown_key_is_refused(tmp_path):
    bad = LIST.replace('"run.targets" = "hard"', '"run.target" = "hard"')
    with pytest.raises(
        ScenarioError,
        match=r"variant\[2\].set: run.target: unknown key; "
        "did you mean 'targets'",
    ):
        load_scenario(scenario(tmp_path, bad))
    with pytest.raises(ScenarioError, match="file not found"):
        load_scenario(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    "args, words",
    [
        (["--threads", "0"], "threads = 0: a sweep needs at least 1"),
        (["--workers", "-1"], "workers = -1: a sweep needs at least 1"),
        (["--workers", "0"], "workers = 0"),
        (
            ["--scheduler", "tcp://127.0.0.1:9", "--timeout", "1"],
            "no Dask scheduler answers at tcp://127.0.0.1:9 within 1 s",
        ),
    ],
    ids=["threads-0", "workers-negative", "workers-0", "unreachable-scheduler"],
)
def test_bad_sweep_options_are_refused_quickly(tmp_path, capsys, args, words):
    import engine.cli as cli

    started = time.perf_counter()
    rc = cli.main(
        ["sweep", str(scenario(tmp_path, GRID)), "--out", str(tmp_path / "out"), "--quiet", *args]
    )
    err = capsys.readouterr().err
    assert rc == 2 and words in err and "Traceback" not in err
    assert time.perf_counter() - started < 30
    assert not list((tmp_path / "out").glob("*.variant.json"))


def test_the_report_of_a_folder_that_holds_no_sweep(tmp_path, capsys):
    import engine.cli as cli

    assert cli.main(["sweep-report", str(tmp_path)]) == 2
    assert "no sweep.json there" in capsys.readouterr().err
    (tmp_path / "sweep.json").write_text("{ broken")
    assert cli.main(["sweep-report", str(tmp_path)]) == 2
    assert "sweep.json: cannot be read" in capsys.readouterr().err
