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

from engine.sweep import RESULT_COLUMNS, ScenarioError, load_scenario, sweep, write_report

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

    for name, n in (
        ("demo-sweep.toml", 4),
        ("national-sweep.toml", 108),
        ("national-sample.toml", 100),
    ):
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
    assert "impossible" in text
    # the maps first, then the trade-offs; every link relative, no path of this machine
    assert text.index('id="spijtvrij"') < text.index('id="afwegingen"')
    assert 'href="../robustness/no_regret.tif"' in text and 'href="../base/"' in text
    for path in (str(out), str(ROOT)):
        assert path not in text, text[text.find(path) - 300 : text.find(path) + 100]
    assert "geen paren" in text  # a list of variants has no axes to compare along


def test_numbers_below_the_solver_tolerance_are_zero_not_a_trend():
    import pandas as pd

    from engine.sweep.report import SHORTFALL_ZERO_HA, _gap, _zeroed

    shortfall = pd.Series([1e-12, -3e-13, 0.0, 2.5])
    assert _zeroed(shortfall, SHORTFALL_ZERO_HA).tolist() == [0.0, 0.0, 0.0, 2.5]
    assert _gap(-1e-16) == "0" and _gap(2e-6) == "2e-06"


def test_the_page_names_no_folder_of_the_machine():
    from engine.sweep.report import _without_folders

    text = "ConfigError: /work/x/configs/national.toml: targets.housing: lower it (rules.toml)"
    assert _without_folders(text) == text.replace("/work/x/configs/", "")


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
    refused(tmp_path, GRID, old, new, words)


def refused(tmp_path, text, old, new, words):
    """The scenario ``text`` with ``old`` replaced is refused, naming its file and ``words``."""
    assert old in text
    with pytest.raises(ScenarioError) as info:
        load_scenario(scenario(tmp_path, text.replace(old, new, 1)))
    message = str(info.value)
    assert message.startswith(str(tmp_path / "s.toml"))
    for word in words:
        assert word in message, message


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


# -- sampled sweeps -------------------------------------------------------------------------------

UTRECHT = ROOT / "configs" / "provinces" / "utrecht.toml"

SAMPLED = f"""
[sweep]
name = "t-sample"
base = "{UTRECHT}"
resolution = 1000
combine = "sample"
samples = 6
seed = 11
warm_start = false

[[axis]]
name = "density"
key = "assumptions.housing_density_urban"
distribution = "triangular"
min = 45.0
mode = 60.0
max = 80.0

[[axis]]
name = "storage"
key = "assumptions.deep_polder_storage_share"
distribution = "normal"
mean = 0.075
sd = 0.03
min = 0.05
max = 0.10

[[axis]]
name = "wind"
distribution = "weighted"
points = [
    {{ label = "base", set = {{}} }},
    {{ label = "dense", set = {{ "assumptions.wind_yield" = 0.5 }} }},
]
weights = [3, 1]

[[axis]]
name = "n2000"
key = "rules.exclusions.natura2000.enabled"
values = [true, false]
"""


def test_a_sample_is_reproducible_and_more_samples_keep_the_first(tmp_path):
    a = load_scenario(scenario(tmp_path, SAMPLED))
    b = load_scenario(scenario(tmp_path, SAMPLED, "again.toml"))
    more = load_scenario(
        scenario(tmp_path, SAMPLED.replace("samples = 6", "samples = 9"), "m.toml")
    )
    other = load_scenario(scenario(tmp_path, SAMPLED.replace("seed = 11", "seed = 12"), "o.toml"))
    assert len(a.variants) == 12  # 6 samples x the two points of the list axis
    assert [(v.id, v.overrides) for v in a.variants] == [(v.id, v.overrides) for v in b.variants]
    assert [(v.id, v.overrides) for v in more.variants[:12]] == [
        (v.id, v.overrides) for v in a.variants
    ]
    assert [v.overrides for v in other.variants] != [v.overrides for v in a.variants]
    first = a.variants[0]
    assert first.id == "sample-0000__n2000-on" and first.position == (0, 0)
    assert set(first.axes) == {"sample", "density", "storage", "wind", "n2000"}
    # the list axis gets the same draw: its pairs differ in that axis only
    on, off = a.variants[2].overrides, a.variants[3].overrides
    assert {k: x for k, x in on.items() if on[k] != off.get(k)} == {
        "rules.exclusions.natura2000.enabled": True
    }
    assert [d["name"] for d in a.design] == ["sample", "n2000"]
    for v in more.variants:
        assert 45.0 <= v.overrides["assumptions.housing_density_urban"] <= 80.0
        assert 0.05 <= v.overrides["assumptions.deep_polder_storage_share"] <= 0.10


def test_distributions_draw_what_they_say():
    import numpy as np

    from engine.sweep.sampling import Distribution, uniforms

    u = uniforms(3, 0, 20000)
    tri = Distribution("triangular", {"min": 0.0, "mode": 1.0, "max": 4.0}, ("k",))
    draws = np.array([tri.quantile(x) for x in u[:4000]])
    assert draws.min() >= 0 and draws.max() <= 4 and abs(draws.mean() - 5 / 3) < 0.05
    normal = Distribution("normal", {"mean": 0.0, "sd": 1.0, "min": -0.5, "max": 2.0}, ("k",))
    draws = np.array([normal.quantile(x) for x in u[:4000]])
    assert draws.min() >= -0.5 and draws.max() <= 2.0
    weighted = Distribution("weighted", {}, points=(("a", {}), ("b", {})), weights=(3.0, 1.0))
    labels = [weighted.draw(float(x))[0] for x in u]
    assert abs(labels.count("a") / len(labels) - 0.75) < 0.02
    assert Distribution("uniform", {"min": 2.0, "max": 4.0}, ("k",)).draw(0.5) == (
        "3",
        {"k": 3.0},
    )


@pytest.mark.parametrize(
    "old, new, words",
    [
        ("samples = 6\n", "", ["sweep.samples", "missing for a sampled sweep"]),
        ("seed = 11", "seed = -1", ["sweep.seed", "below 0"]),
        ("samples = 6", "samples = 2.5", ["sweep.samples", "whole number"]),
        ('"triangular"', '"triangle"', ["axis.density.distribution", "did you mean 'triangular'"]),
        ("mode = 60.0", "mode = 90.0", ["axis.density.mode", "outside [45, 80]"]),
        ("mode = 60.0\n", "", ["axis.density.mode", "missing for a triangular distribution"]),
        ("sd = 0.03", "sd = 0", ["axis.storage.sd", "not positive"]),
        ("min = 0.05", "min = 0.2", ["axis.storage.max", "not above min"]),
        ("weights = [3, 1]", "weights = [3]", ["axis.wind.weights", "1 weights for 2 values"]),
        ("weights = [3, 1]", "weights = [0, 0]", ["axis.wind.weights", "not all 0"]),
        ("mode = 60.0", "mode = 60.0\nvalues = [1, 2]", ["axis.density.values", "draws its"]),
        ("mode = 60.0", "mode = 60.0\nsd = 2.0", ["axis.density.sd", "has no sd"]),
        ('combine = "sample"', 'combine = "grid"', ["sweep.samples", 'combine = "sample"']),
        ("\nsd = 0.03", "\nsd = 0.03\nsde = 1", ["axis[1].sde", "unknown key"]),
        ("seed = 11", "seed = 11\nno_regret_share = 0.4", ["no_regret_share", "above 0.5"]),
        (
            'key = "assumptions.housing_density_urban"',
            'key = "assumptions.housing_density_urbn"',
            ["axis.density.key", "did you mean 'housing_density_urban'"],
        ),
    ],
    ids=[
        "no-samples",
        "negative-seed",
        "fractional-samples",
        "unknown-kind",
        "mode-outside",
        "mode-missing",
        "sd-zero",
        "empty-range",
        "weights-count",
        "weights-zero",
        "values-with-continuous",
        "parameter-of-another-kind",
        "samples-in-grid",
        "unknown-parameter",
        "no-regret-share",
        "unknown-config-key",
    ],
)
def test_bad_sampled_scenarios_are_refused_with_the_key_and_the_fix(tmp_path, old, new, words):
    refused(tmp_path, SAMPLED, old, new, words)
    grid = GRID.replace("values = [0.05, 0.10]", 'distribution = "uniform"\nmin = 0.05\nmax = 0.1')
    with pytest.raises(ScenarioError, match='axis.storage.distribution: .*combine = "sample"'):
        load_scenario(scenario(tmp_path, grid.replace('labels = ["5pct", "10pct"]', ""), "g.toml"))


# -- robustness counts ----------------------------------------------------------------------------


def _uses():
    import numpy as np

    from engine.sweep.tally import Uses

    # codes 0 keep, 1 housing, 2 wind (energy), 3 water storage + nature
    serves = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=bool)
    return Uses(
        names={0: "keep", 1: "housing", 2: "wind", 3: "water_nature"},
        colours={0: "#eeeeee", 1: "#cc0000", 2: "#88bbee", 3: "#44ccaa"},
        keep=0,
        claims=["housing", "energy", "water"],
        serves=serves,
    )


def test_counts_do_not_depend_on_the_order_the_variants_finish(tmp_path):
    import numpy as np

    from engine.sweep.robustness import CONTESTED, summarise
    from engine.sweep.tally import NODATA, Tally

    s = load_scenario(scenario(tmp_path, GRID))  # a 2 x 2 grid: 4 pairs, 2 per axis
    rng = np.random.default_rng(0)
    province = np.repeat(np.array([[0, 0, 1, 1, -1]]), 4, axis=0)
    rasters = {v.id: rng.integers(0, 4, size=(4, 5)).astype(np.uint8) for v in s.variants}
    for r in rasters.values():
        r[:, 4] = NODATA  # off the land
        r[0, 0], r[0, 1], r[1, 0] = 2, 0, 1  # wind always; never needed; housing 3 of 4
    rasters[s.variants[0].id][1, 0] = 3
    positions = {v.position: v.id for v in s.variants}

    def tally(order):
        t = Tally(
            uses=_uses(), province=province, axes=["a", "b"], positions=positions, n_variants=4
        )
        for v in order:
            pairs = [
                (a, rasters[positions[p]])
                for a in range(2)
                for step in (-1, 1)
                if (p := tuple(x + step * (i == a) for i, x in enumerate(v.position))) in positions
                and positions[p] in t.included
            ]
            t.add(v.id, {"key": v.id}, rasters[v.id], (1000.0, 0, 0, 0, -1000.0, 0), pairs)
        return t

    one, other = tally(s.variants), tally(s.variants[::-1])
    for name in ("counts", "changes", "pairs", "moved"):
        assert np.array_equal(getattr(one, name), getattr(other, name)), name
    assert one.pairs.tolist() == [2, 2] and one.counts.sum() == 4 * 16
    maps = summarise(one, 0.75)
    assert maps["no_regret"][0, 0] == 2  # wind in 4 of 4
    assert maps["no_regret"][0, 1] == 0  # kept in every variant: never needed
    assert maps["no_regret"][1, 0] == 1  # housing in 3 of 4 >= 0.75
    assert summarise(one, 0.9)["no_regret"][1, 0] == CONTESTED
    assert maps["no_regret"][0, 4] == NODATA and maps["uses"][1, 0] == 2


def _sweep_cmd(path, out):
    # The counts are saved after every variant here, so that the kill lands between saves
    # with some variants counted in the checkpoint and others only in their folders.
    main = (
        "import sys; import engine.sweep.driver as d; d.CHECKPOINT_EVERY_S = 0.0; "
        "from engine.cli import main; sys.exit(main())"
    )
    return [sys.executable, "-c", main, "sweep", str(path), "--out", str(out), "--workers", "1"]


def test_a_killed_sampled_sweep_resumes_to_the_same_counts_bit_for_bit(tmp_path, caplog):
    import logging

    import numpy as np

    from engine.config import load_config
    from engine.sweep import done_record, variant_key
    from engine.sweep.tally import (
        CHECKPOINT,
        NODATA,
        Tally,
        province_grid,
        read_codes,
        tally_sweep,
        uses_of,
    )

    path = scenario(tmp_path, SAMPLED)
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        _sweep_cmd(path, out) + ["--quiet"],
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 90
        while time.time() < deadline and not (out / CHECKPOINT).is_file():
            time.sleep(0.02)
        assert (out / CHECKPOINT).is_file(), "no variant counted in 90 s"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its worker, mid-way
        proc.wait()
    s = load_scenario(path)
    done = len(list(out.glob("*.variant.json")))
    assert 1 <= done < len(s.variants), "the kill came after the end"
    assert not (out / "robustness").exists()
    with caplog.at_level(logging.INFO, logger="engine.sweep.tally"):
        resumed = sweep(path, out, workers=1, progress=False)
    assert resumed["computed"] == len(s.variants) - done
    assert "counted again" not in caplog.text  # the checkpoint was taken and added to
    whole = tmp_path / "whole"
    assert sweep(path, whole, workers=2, progress=False)["computed"] == len(s.variants)
    tifs = sorted(p.name for p in (whole / "robustness").glob("*.tif"))
    assert {"counts.tif", "frequency.tif", "no_regret.tif", "axis_change.tif"} <= set(tifs)
    # The page plots drawn numbers as points and drawn labels (the weighted "wind") in order.
    page = write_report(whole).read_text()
    for axis in ("density", "storage", "wind"):
        assert f'alt="Afwegingen langs {axis}"' in page, axis
    for name in tifs + ["robustness.json"]:
        assert (out / "robustness" / name).read_bytes() == (
            whole / "robustness" / name
        ).read_bytes(), name
    # a variant no longer there as counted: the counts are made again without it
    (out / f"{s.variants[3].id}.variant.json").unlink()

    records = {
        v.id: r for v in s.variants if (r := done_record(out / v.id, variant_key(s, v))) is not None
    }
    province, _ = province_grid(s)
    again = tally_sweep(s, out, records, uses_of(load_config(s.base)), province)
    assert again.n == len(s.variants) - 1 and s.variants[3].id not in again.included
    full = Tally(uses=again.uses, province=province, axes=again.axes, positions={}, n_variants=12)
    assert full.load(whole)
    land = read_codes(whole / s.variants[3].id)[0] != NODATA
    assert np.array_equal(
        full.counts.sum(0)[land] - again.counts.sum(0)[land], np.ones(int(land.sum()))
    )


def test_a_variant_key_does_not_tell_an_int_resolution_from_its_float(tmp_path):
    """The 100-sample benchmark set ``resolution = 250`` from code, the TOML gives 250.0:
    its finished variants must still count as done for the page and a resume."""
    from engine.sweep import variant_key

    s = load_scenario(scenario(tmp_path, SAMPLED))
    v = s.variants[0]
    as_read = variant_key(s, v)
    s.resolution = int(s.resolution)
    assert variant_key(s, v) == as_read
    s.resolution = 250.0
    assert variant_key(s, v) != as_read
