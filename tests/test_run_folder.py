"""A run folder is whole or absent, under real faults.

kill -9 and Ctrl-C of a ``ruimtepuzzel run`` process at several points (folder staged, solve,
analysis), a full file system, one turned read-only while the run writes, two runs into one
folder, and a run without the analysis over one with it. Every check ends in
:func:`engine.outputs.verify_run_folder`: every file listed in manifest.json with its sha256,
nothing unlisted. The file systems are real: a small tmpfs, mounted for the test (root).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import engine.cli as cli
from engine import outputs
from engine.outputs import (
    RunFolder,
    RunFolderBusy,
    RunFolderError,
    run_folder_problems,
    verify_run_folder,
    write_file,
)

ARGS = ["run", "national", "--resolution", "1000", "--quiet"]
RUN = [sys.executable, "-m", "engine.cli", *ARGS]
ANALYSIS_FILES = {
    "conflict.tif",
    "conflict.tif.aux.xml",
    "margin.tif",
    "scarcity.tif",
    "regret.tif",
    "report.html",
}
# Files that carry timings (report.json, summary.md) or the manifest's creation time.
TIMED = {"report.json", "summary.md", "report.html"}


def _ctrl_c_as_in_a_terminal() -> None:
    # A job started in the background (`.ci/run &`) has SIGINT ignored, and its children
    # inherit that: a run would ignore the test's Ctrl-C and end 0.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(out: Path, cwd: Path, analysis: str = "quick") -> subprocess.Popen:
    return subprocess.Popen(
        RUN + ["--analysis", analysis, "--out", str(out)],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ctrl_c_as_in_a_terminal,
    )


def _hashes(folder: Path) -> dict[str, str]:
    """The folder's files and hashes, once it is proven whole."""
    return {o["path"]: o["sha256"] for o in verify_run_folder(folder)["outputs"]}


def _beside(folder: Path) -> list[str]:
    """What a run leaves next to its folder: staging folders, a lock. Nothing, when done."""
    return sorted(p.name for p in folder.parent.iterdir() if p.name.startswith(folder.name + "."))


def _stages(folder: Path) -> list[Path]:
    return [p for p in folder.parent.glob(folder.name + ".tmp-*") if p.is_dir()]


def _lock_stage(folder: Path) -> str | None:
    try:
        return json.loads((folder.parent / (folder.name + ".lock")).read_text()).get("stage")
    except (OSError, ValueError):  # not there, or being written
        return None


# Points in a run, told by what a run shows from outside: its staging folder (after the
# --out check, before the grid is opened), the stage its lock file names, an analysis map.
POINTS = {
    "staged": lambda d: bool(_stages(d)),
    "solve": lambda d: _lock_stage(d) == "solve",
    "analysis": lambda d: any((s / "conflict.tif").exists() for s in _stages(d)),
}


def _wait_for(point: str, proc: subprocess.Popen, folder: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not POINTS[point](folder):
        if proc.poll() is not None:
            pytest.fail(
                f"the run ended (exit {proc.returncode}) before '{point}': {proc.stderr.read()}"
            )
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no '{point}' within {timeout} s")
        time.sleep(0.005)


@pytest.fixture(scope="module")
def previous(tmp_path_factory):
    """A complete earlier run (with the quick analysis) and its files' hashes."""
    root = tmp_path_factory.mktemp("previous")
    out = root / "national"
    done = subprocess.run(
        RUN + ["--analysis", "quick", "--out", str(out)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert f"geschreven in {out}/: report.json, allocation.tif, manifest.json" in done.stdout
    hashes = _hashes(out)
    assert set(hashes) >= ANALYSIS_FILES
    return out, hashes


@pytest.fixture
def folder(previous, tmp_path) -> Path:
    """A copy of the earlier run, to be overwritten."""
    out = tmp_path / "national"
    shutil.copytree(previous[0], out)
    return out


def _remount(mount: Path, mode: str, timeout: float = 5) -> None:
    """Remount ro or rw; busy while a file there is open for writing, so try again."""
    deadline = time.monotonic() + timeout
    while subprocess.run(
        ["mount", "-o", f"remount,{mode}", str(mount)], capture_output=True
    ).returncode:
        assert time.monotonic() < deadline, f"cannot remount {mount} {mode}"
        time.sleep(0.002)


# -- killed and interrupted runs ------------------------------------------------------------------


def test_kill_9_at_any_point_leaves_the_previous_run_and_the_next_run_cleans_up(
    previous, folder, tmp_path
):
    before, hashes = previous
    for point in POINTS:
        proc = _start(folder, tmp_path)
        _wait_for(point, proc, folder)
        proc.kill()
        proc.wait()
        assert _hashes(folder) == hashes, f"killed at '{point}': not the previous run"
    # The last killed run left its staging folder, and the lock file of a dead process.
    assert len(_stages(folder)) == 1  # each run removes what the one before it left
    assert (tmp_path / "national.lock").exists()
    done = subprocess.run(
        RUN + ["--analysis", "quick", "--out", str(folder)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert _beside(folder) == []
    new = _hashes(folder)
    assert new["report.json"] != hashes["report.json"]  # a new run, with its own timings
    # Same inputs, same bytes, but for the timings.
    assert {k: v for k, v in new.items() if k not in TIMED} == {
        k: v for k, v in hashes.items() if k not in TIMED
    }


def test_ctrl_c_at_any_point_exits_130_with_one_line_and_leaves_the_previous_run(
    previous, folder, tmp_path
):
    _, hashes = previous
    for point in POINTS:
        proc = _start(folder, tmp_path)
        _wait_for(point, proc, folder)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, (point, err)
        assert err.splitlines() == ["ruimtepuzzel run: interrupted"], (point, err)
        assert _hashes(folder) == hashes, point
        assert _beside(folder) == [], point


# -- full and read-only file systems --------------------------------------------------------------


def test_a_full_disk_is_a_message_and_the_previous_run_stays(previous, tmpfs, capsys):
    _, hashes = previous
    out = tmpfs / "national"
    shutil.copytree(previous[0], out)
    free = os.statvfs(tmpfs).f_bavail * os.statvfs(tmpfs).f_frsize
    # Room for the lock and the first maps of the new run, not for all of it.
    (tmpfs / "filler").write_bytes(b"\0" * (free - 150_000))
    assert cli.main(ARGS + ["--analysis", "quick", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"ruimtepuzzel run: error: {out}/" in err and "no space left on device" in err
    assert "free space there" in err and f"{out} keeps its previous run" in err
    assert _hashes(out) == hashes
    assert _beside(out) == []


def test_a_read_only_out_is_refused_before_the_grid_is_opened(previous, tmpfs, capsys):
    out = tmpfs / "national"
    shutil.copytree(previous[0], out)
    _remount(tmpfs, "ro")
    # A grid that does not exist: the error names --out, so it came first.
    rc = cli.main(["run", "national", "--out", str(out), "--grid", str(tmpfs / "no-grid")])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.splitlines()) == 1
    assert f"{out}: cannot write in {tmpfs} (read-only file system" in err
    assert "give --out a folder you can write to" in err and "no-grid" not in err
    assert _hashes(out) == previous[1]


def test_a_file_system_turned_read_only_while_writing(previous, tmpfs, tmp_path):
    out = tmpfs / "national"
    shutil.copytree(previous[0], out)
    proc = _start(out, tmp_path)
    _wait_for("analysis", proc, out)
    _remount(tmpfs, "ro")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and len(err.splitlines()) == 1, err
    assert "read-only file system" in err and f"{out} keeps its previous run" in err
    # A read-only folder keeps the stage too; the message says the next run removes it.
    assert "could not be removed, the next run into" in err and _stages(out)
    assert _hashes(out) == previous[1]
    _remount(tmpfs, "rw")
    with RunFolder(out):  # what every run does first: clean up after the one before
        pass
    assert _beside(out) == [] and _hashes(out) == previous[1]


# -- two runs, and a run without the analysis -----------------------------------------------------


def test_two_runs_into_one_folder_one_runs_the_other_is_refused(previous, folder, tmp_path):
    procs = [_start(folder, tmp_path, analysis="off") for _ in range(2)]
    results = [(p, *p.communicate(timeout=600)) for p in procs]
    codes = sorted(p.returncode for p, _, _ in results)
    assert codes == [0, 2], [err for _, _, err in results]
    ((winner, *_),) = [r for r in results if r[0].returncode == 0]
    ((_, _, refused),) = [r for r in results if r[0].returncode == 2]
    assert refused.startswith(
        f"ruimtepuzzel run: error: {folder}: another run is writing "
        f"this folder (pid {winner.pid} on {socket.gethostname()}, "
        f"started "
    ), refused
    verify_run_folder(folder)
    assert _beside(folder) == []


def test_a_run_without_analysis_over_one_with_it_leaves_no_analysis_file(folder, capsys):
    assert set(os.listdir(folder)) >= ANALYSIS_FILES
    assert cli.main(ARGS + ["--analysis", "off", "--out", str(folder)]) == 0
    assert not ANALYSIS_FILES & set(os.listdir(folder))
    listed = set(_hashes(folder)) | {"manifest.json"}
    assert listed == set(os.listdir(folder))
    wrote = capsys.readouterr().out.splitlines()[-1]
    assert wrote == (
        f"geschreven in {folder}/: report.json, allocation.tif, manifest.json, summary.md, "
        "prices.npz, allocation.qml, allocation.tif.aux.xml"
    )


# -- --out checked before any work ----------------------------------------------------------------


@pytest.mark.parametrize("case, words", [
    ("empty", ["the output folder is empty", "--out out/national"]),
    ("file", ["is an existing file, not a folder", "give --out a folder"]),
    ("foreign", ["holds files that are not a ruimtepuzzel run (notes.txt)",
                 "give --out a new or empty folder"]),
])  # fmt: skip
def test_a_bad_out_is_refused_before_the_grid_is_opened(case, words, tmp_path, capsys):
    out = {"empty": "", "file": tmp_path / "a.txt", "foreign": tmp_path / "mine"}[case]
    if case == "file":
        out.write_text("not a folder")
    if case == "foreign":
        out.mkdir()
        (out / "notes.txt").write_text("keep me")
    rc = cli.main(["run", "national", "--out", str(out), "--grid", str(tmp_path / "no-grid")])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.splitlines()) == 1 and "no-grid" not in err, err
    for w in words:
        assert w in err
    assert (
        sorted(os.listdir(tmp_path)) == {"empty": [], "file": ["a.txt"], "foreign": ["mine"]}[case]
    )


def test_a_missing_parent_is_created_and_nothing_is_left_when_the_run_fails(tmp_path, capsys):
    out = tmp_path / "a" / "b" / "run"
    rc = cli.main(["run", "national", "--out", str(out), "--grid", str(tmp_path / "no-grid")])
    assert rc == 2 and "no-grid" in capsys.readouterr().err  # past the --out check
    assert os.listdir(tmp_path / "a" / "b") == []


# -- the lock, the swap and the proof, in one process ---------------------------------------------


def _write_run(out, text="x") -> dict:
    with RunFolder(out) as folder:
        write_file(folder.stage / "report.json", json.dumps({"text": text}))
        folder.commit({"run": text})
    return verify_run_folder(out)


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path, caplog):
    dead = subprocess.Popen(["true"])
    dead.wait()
    lock = tmp_path / "run.lock"
    lock.write_text(
        json.dumps(
            {
                "pid": dead.pid,
                "host": socket.gethostname(),
                "started": "2024-01-01T00:00:00",
                "stage": "solve",
            }
        )
    )
    with caplog.at_level(logging.INFO, logger="engine.outputs"):
        _write_run(tmp_path / "run")
    assert f"taking over the lock left by pid {dead.pid}" in caplog.text
    assert not lock.exists()


def test_a_held_lock_refuses_a_second_run_by_name(tmp_path):
    out = tmp_path / "run"
    with RunFolder(out) as first:
        first.note("analysis")
        with (
            pytest.raises(
                RunFolderBusy,
                match=rf"pid {os.getpid()} on "
                rf"{socket.gethostname()}, started .*, at stage 'analysis'",
            ),
            RunFolder(out),
        ):
            pass
        first.commit({"run": "first"})
    verify_run_folder(out)


def test_the_two_rename_swap_and_its_repair(tmp_path, monkeypatch):
    """Where folders cannot be exchanged in one step, DIR goes aside and the stage into its
    place; a crash between the two renames is repaired by the next run."""
    out = tmp_path / "run"
    _write_run(out, "first")
    monkeypatch.setattr(outputs, "_exchange", lambda a, b: False)
    assert _write_run(out, "second")["run"] == "second"
    assert _beside(out) == []
    # The state a crash between the renames leaves: DIR aside, a complete stage, no DIR.
    os.rename(out, tmp_path / "run.old-123-0123abcd")
    (tmp_path / "run.tmp-123-0123abcd").mkdir()
    with RunFolder(out):
        pass
    assert verify_run_folder(out)["run"] == "second" and _beside(out) == []


def test_verify_finds_what_is_missing_changed_or_foreign(previous, folder):
    assert run_folder_problems(folder) == []
    (folder / "stale.tif").write_bytes(b"old")
    (folder / "summary.md").write_text("edited")
    (folder / "regret.tif").unlink()
    problems = run_folder_problems(folder)
    assert problems == [
        "stale.tif: not listed in manifest.json (stale or foreign)",
        "regret.tif: listed in manifest.json but missing",
        f"summary.md: 6 bytes, {(previous[0] / 'summary.md').stat().st_size} in manifest.json",
    ]
    with pytest.raises(RunFolderError, match="is not a whole run folder"):
        verify_run_folder(folder)
