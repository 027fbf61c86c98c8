"""The first run as fast as the next: the kernels compiled once into the package's cache.

Fresh interpreters on an empty cache folder (``RUIMTEPUZZEL_CACHE``; ``NUMBA_CACHE_DIR``
unset, so the package's default places numba's cache): the first compiles, the second must
compile nothing. The evidence is numba's own: its compile events and its cache index files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.solve import class_kernels, kernels, warmup

ROOT = Path(__file__).resolve().parents[1]
NATIONAL = ROOT / "configs" / "national.toml"

# One interpreter: national runs at 1000 m (the parallel builds forced by PARALLEL_CELLS=0
# when asked), then the background warm-up waited for; prints what numba compiled meanwhile.
RUNS = """
import json, sys
from numba.core import event
from engine.run import run
from engine.solve import class_kernels, kernels, warmup

grid, out, parallel_too = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
with event.install_recorder("numba:compile") as recorder:
    run(sys.argv[4], out + "/serial", grid=grid, progress=False, analysis="off")
    if parallel_too:
        kernels.PARALLEL_CELLS = 0
        run(sys.argv[4], out + "/parallel", grid=grid, progress=False, analysis="off")
    warmup.in_background().join()
assert all(k.parallel_ready for k in kernels.SOLVER_KERNELS + class_kernels.CLASS_KERNELS)
compiled = sorted(
    {e.data["dispatcher"].py_func.__qualname__ for _, e in recorder.buffer if e.is_start}
)
print(json.dumps(compiled))
"""


def _start(args: list[str], cache: Path) -> subprocess.Popen:
    env = {**os.environ, "RUIMTEPUZZEL_CACHE": str(cache)}
    env.pop("NUMBA_CACHE_DIR", None)  # the package's default: numba/ of the cache
    return subprocess.Popen(
        [sys.executable, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def _output(process: subprocess.Popen) -> str:
    stdout, stderr = process.communicate()
    assert process.returncode == 0, stderr
    return stdout


def _interpreter(args: list[str], cache: Path) -> str:
    return _output(_start(args, cache))


def _index_files(cache: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in (cache / "numba").rglob("*.nbi")}


@pytest.fixture(scope="module")
def grid_folder():
    from engine.grid.build import grid_folder

    return grid_folder("nl", 1000)


def _run_args(grid_folder, out: Path, parallel_too: bool) -> list[str]:
    return ["-c", RUNS, str(grid_folder), str(out), "1" if parallel_too else "0", str(NATIONAL)]


def _compiled(output: str) -> list[str]:
    return json.loads(output.splitlines()[-1])


def _runs(grid_folder, cache: Path, out: Path, parallel_too: bool) -> list[str]:
    return _compiled(_interpreter(_run_args(grid_folder, out, parallel_too), cache))


@pytest.fixture(scope="module")
def empty_caches(grid_folder, tmp_path_factory):
    """Each way of filling an empty cache, started side by side: a first run, and
    ``ruimtepuzzel setup``. Numba compiles on one thread, so the two take the time of one
    on two cores (each alone about 50 s, most of this file's time).

    Returns (folder, cache, output) per way."""
    folder = tmp_path_factory.mktemp("startup")
    ways = {
        "run": _run_args(grid_folder, folder / "first", parallel_too=False),
        "setup": ["-m", "engine.cli", "setup", "--quiet"],
    }
    started = {way: _start(args, folder / way / "cache") for way, args in ways.items()}
    try:
        return {way: (folder, folder / way / "cache", _output(p)) for way, p in started.items()}
    finally:
        for process in started.values():
            if process.poll() is None:  # the other failed first
                process.kill()
                process.communicate()


@pytest.mark.slow
def test_a_second_interpreter_compiles_nothing(grid_folder, empty_caches):
    folder, cache, output = empty_caches["run"]
    first = _compiled(output)
    # The first run on an empty cache compiled every kernel into numba/ of the cache.
    kernels_compiled = {d.py_func.__qualname__ for d, *_ in warmup._jobs()}
    assert kernels_compiled <= set(first)
    index = _index_files(cache)
    assert len(index) >= len(kernels_compiled)
    # The next interpreter loads them, serial and parallel builds alike, and writes nothing.
    assert _runs(grid_folder, cache, folder / "second", parallel_too=True) == []
    assert _index_files(cache) == index
    # The command an install or a cluster image runs finds them all too.
    said = _interpreter(["-m", "engine.cli", "setup", "--quiet"], cache)
    assert f": 0 compiled, {len(warmup._jobs())} loaded" in said


@pytest.mark.slow
def test_setup_compiles_into_an_empty_cache_what_a_run_then_loads(grid_folder, empty_caches):
    """``ruimtepuzzel setup`` on an empty cache, then a run: nothing left to compile."""
    folder, cache, said = empty_caches["setup"]
    assert f": {len(warmup._jobs())} compiled, 0 loaded" in said
    assert _runs(grid_folder, cache, folder / "after-setup", parallel_too=True) == []


def test_the_warm_up_covers_both_builds_of_every_solver_kernel():
    solver = [
        k
        for module in (kernels, class_kernels)
        for k in vars(module).values()
        if isinstance(k, kernels._BySize)
    ]
    assert set(solver) == set(kernels.SOLVER_KERNELS + class_kernels.CLASS_KERNELS)
    warmed = {d for d, *_ in warmup._jobs()}
    for kernel in solver:
        assert kernel.serial in warmed and kernel.parallel in warmed, kernel


def test_a_large_pass_runs_serially_until_the_parallel_build_is_ready(monkeypatch):
    """The same numbers either way; the pass starts the warm-up that readies the other."""
    args = (np.arange(12.0, dtype=np.float32).reshape(6, 2), np.ones(6, np.int16))
    args += (np.ones(6, bool), np.arange(1.0, 7.0))
    expected = kernels.assigned_value.serial(*args)
    monkeypatch.setattr(kernels, "PARALLEL_CELLS", 0)
    fresh = kernels._BySize(kernels._assigned_value)
    assert fresh(*args) == expected
    assert not fresh.parallel.overloads  # never compiled nor loaded here: it did not run
    warmup.in_background().join()
    assert kernels.assigned_value.parallel_ready
    assert kernels.assigned_value(*args) == expected
    assert kernels.assigned_value.parallel.overloads


def test_the_cache_folder_follows_the_settings(tmp_path, monkeypatch):
    from engine import caches

    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("RUIMTEPUZZEL_CACHE", str(tmp_path))
    assert caches.numba_cache_dir() == tmp_path / "numba"
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "own"))
    assert caches.numba_cache_dir() == tmp_path / "own"
    monkeypatch.delenv("RUIMTEPUZZEL_CACHE")
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    assert caches.numba_cache_dir().parts[-2:] == ("ruimtepuzzel", "numba")
