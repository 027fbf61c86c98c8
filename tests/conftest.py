"""What the tests share: a grid cache of their own for the session (never the user's), the
shipped national config, and the small synthetic grid."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from engine.resources import shipped_dir

# Set before any test imports the grid code's cache_root; subprocesses inherit it too.
_CACHE = Path(tempfile.mkdtemp(prefix="ruimtepuzzel-test-cache-"))
os.environ["RUIMTEPUZZEL_CACHE"] = str(_CACHE)


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def national_config() -> Path:
    """The shipped national config."""
    return shipped_dir("configs") / "national.toml"


@pytest.fixture(scope="session")
def synthetic():
    """The 12-province synthetic grid of tests/rp_grid.py (fast, in memory)."""
    from rp_grid import synthetic_grid

    return synthetic_grid()


@pytest.fixture
def tmpfs(tmp_path):
    """A real 4 MB file system (tmpfs), mounted for the test (root): a disk that fills."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mount
    if subprocess.run(["umount", str(mount)], capture_output=True).returncode:
        subprocess.run(["umount", "-l", str(mount)], check=True)
