"""The project stands on its own: a real (non-editable) install carries the configs, grids,
data and source text, and runs the national job from an empty folder by the config's name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from engine.resources import find_config, shipped_configs, shipped_dir

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_lists_every_package_of_the_engine():
    with (ROOT / "pyproject.toml").open("rb") as fh:
        listed = set(tomllib.load(fh)["tool"]["setuptools"]["packages"])
    found = {
        ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "engine").rglob("__init__.py")
    }
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages"


def test_shipped_configs_are_found_by_name_and_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing of the checkout in the working folder
    assert find_config("national") == shipped_dir("configs") / "national.toml"
    assert find_config("utrecht").name == "utrecht.toml"
    assert {"national", "national-gemeenten", "utrecht", "zuid-holland"} <= set(shipped_configs())
    assert not {"claims", "rules", "suitability"} & set(shipped_configs())  # pieces, not runs
    own = tmp_path / "mine.toml"
    own.write_text("[run]\n")
    assert find_config(own) == own


def test_an_unknown_config_name_lists_the_shipped_ones():
    from engine.errors import RuimtepuzzelError

    with pytest.raises(RuimtepuzzelError, match="shipped configs are .*national"):
        find_config("natonal")
    with pytest.raises(RuimtepuzzelError, match="does not exist"):
        find_config("configs/nowhere.toml")


def test_no_shipped_definition_reads_outside_the_repository():
    from engine.grid.definition import load_definition

    definition = load_definition("nl")
    root = shipped_dir("data").resolve()
    for spec in definition.layers.values():
        files = [spec.path] + [v for v in spec.params.values() if isinstance(v, Path)]
        for f in filter(None, files):
            assert f.resolve().is_relative_to(root), f"{spec.name} reads {f}"


def test_the_grid_cache_key_is_content_not_place(tmp_path):
    """A second checkout (another folder, the same files) shares the first one's build."""
    import shutil

    from engine.grid.build import cache_folder
    from engine.grid.definition import load_definition

    copy = tmp_path / "checkout"
    shutil.copytree(shipped_dir("grids"), copy / "grids")
    shutil.copytree(shipped_dir("data"), copy / "data")
    here, there = load_definition("nl"), load_definition(copy / "grids" / "nl.toml")
    assert there.data_dir == (copy / "data").resolve()
    assert cache_folder(here, 1000, tmp_path) == cache_folder(there, 1000, tmp_path)
    with (copy / "data" / "admin" / "cbs_provincies_2022_rd.gpkg").open("ab") as fh:
        fh.write(b"\0")  # new content, same place
    changed = load_definition(copy / "grids" / "nl.toml")
    assert cache_folder(changed, 1000, tmp_path) != cache_folder(here, 1000, tmp_path)


@pytest.mark.slow
def test_an_installed_wheel_runs_the_national_job_from_an_empty_folder(tmp_path):
    """``pip install .`` (not editable) into its own folder, then the console script of that
    install runs ``national`` at 1000 m in an empty folder: nothing read from the checkout."""
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    assert (target / "engine" / "data" / "source" / "provinciaal-startpakket-2022.txt").is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    probe = subprocess.run(
        [sys.executable, "-c", "import engine.resources as r; print(r.shipped_dir('data'))"],
        cwd=empty,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(probe.stdout.strip()) == target / "engine" / "data"  # the wheel's, not ours
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine.cli",
            "run",
            "national",
            "--resolution",
            "1000",
            "--analysis",
            "off",
            "--quiet",
            "--out",
            "out",
        ],
        cwd=empty,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads((empty / "out" / "report.json").read_text())
    assert report["status"] == "optimal"
    manifest = json.loads((empty / "out" / "manifest.json").read_text())
    assert manifest["source_document"]["title"] == "Provinciaal Startpakket fysieke leefomgeving"
    read = [i["path"] for i in manifest["inputs"] if i["role"] == "config"]
    assert read and all(p.startswith(str(target)) for p in read)


def test_a_config_is_runnable_when_it_or_a_file_it_extends_has_a_run_table(tmp_path):
    from engine.resources import _is_runnable

    def write(name, text):
        (tmp_path / name).write_text(text)
        return tmp_path / name

    national = write("national.toml", '[run]\ngrid = "nl"\n')
    variant = write("variant.toml", 'extends = "national.toml"\n[zonings]\n')
    piece = write("more-claims.toml", 'extends = "claims.toml"\n')
    write("claims.toml", "[claims.housing]\nunit = 'homes'\n")
    # "extends" inside a table is no extends of the file.
    nested = write("nested.toml", '[notes]\nextends = "national.toml"\n')
    cycle = write("a.toml", 'extends = "a.toml"\n')
    assert _is_runnable(national) and _is_runnable(variant)
    assert not any(_is_runnable(p) for p in (piece, nested, cycle))
