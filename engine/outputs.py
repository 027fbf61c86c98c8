"""How files leave the engine: one place for the formats and for writing them safely.

- **Rasters**: every GeoTIFF the engine writes (a run's maps, a comparison's change map, a
  grid export) is a Cloud-Optimised GeoTIFF with one profile (:data:`COG_OPTIONS`,
  :func:`write_cog`); category names for a GIS go in a GDAL PAM sidecar
  (:func:`pam_categories`).
- **JSON** without NaN (:func:`dumps_json`): NaN and infinity are not JSON; a missing number
  is ``null``. :func:`clean_json` is the one cleaner.
- **Single files** (:func:`write_file`): written to a temporary name beside the target, flushed
  to disk and renamed over it, so a reader sees the old file or the new one. A full disk or a
  read-only folder is a :class:`DiskError` naming the file and what to do.
- **Run folders** (:class:`RunFolder`): all outputs of a run, core and analysis, are written
  to a staging folder beside the run folder and swapped in at once, under a lock.
  ``manifest.json`` lists every other file of the folder with its sha256, so
  :func:`verify_run_folder` proves a folder whole: nothing missing, changed or foreign.

**The swap.** The stage is ``DIR.tmp-<pid>-<rand>`` in DIR's parent (the same file system,
so renames are atomic). On Linux the stage and DIR change places in one ``renameat2(...,
RENAME_EXCHANGE)`` call: at every instant DIR is the complete previous run or the complete
new one, and a reader never finds DIR missing. The previous run, now under the stage's name,
is then deleted. A new DIR (absent or empty) is a single ``rename``. Where the exchange is not
available (another OS, a file system without it), DIR is renamed aside to ``DIR.old-...`` and
the stage into its place: between the two renames DIR is absent (DESIGN.md: a run folder is
whole or absent), never a mix; a crash right there is repaired by the next run, which puts
the previous run back before it starts. Any ``DIR.tmp-*`` left by a killed run is deleted
by the next run into DIR.

**The lock.** ``DIR.lock`` beside DIR, held with ``fcntl.flock`` from before any work until
the swap is done. flock rather than O_EXCL + a pid check: the kernel drops the lock when its
process dies, however it dies (kill -9 included), so a lock file left behind is stale by
construction and simply taken over; there is no pid liveness guess, no pid reuse, and it
works for processes on other hosts of a shared file system where the pid means nothing
(NFS carries flock as a POSIX lock). The file says who holds it (pid, host, start time and
the stage the run is at), for the message that refuses a second run.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import hashlib
import io
import json
import logging
import math
import os
import re
import secrets
import shutil
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from engine.errors import RuimtepuzzelError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: runs are not kept apart there
    fcntl = None

log = logging.getLogger(__name__)

__all__ = [
    "COG_OPTIONS", "CRS", "cog_options", "write_cog", "cog_bytes", "pam_categories",
    "colormap", "grid_transform", "json_float", "clean_json", "dumps_json", "sha256_file",
    "copy_as_cog", "npz_bytes", "write_file", "DiskError", "RunFolder", "RunFolderBusy",
    "RunFolderError",
    "check_out_dir", "verify_run_folder", "run_folder_problems", "listed_outputs",
    "MANIFEST",
]  # fmt: skip

CRS = "EPSG:28992"
MANIFEST = "manifest.json"

# -- rasters --------------------------------------------------------------------------------------

#: The creation options of every GeoTIFF the engine writes: tiled, DEFLATE with the predictor
#: GDAL picks for the type (horizontal for integers, floating point for floats), overviews.
COG_OPTIONS = {
    "driver": "COG",
    "compress": "DEFLATE",
    "predictor": "YES",
    "blocksize": 512,
    "bigtiff": "IF_SAFER",
}


def cog_options(*, categorical: bool, threads: int | None = None) -> dict:
    """The COG creation options; categories and masks must not be averaged in overviews.
    The tiles are compressed on ``threads`` (default: as many as the solver's kernels may
    use, ``NUMBA_NUM_THREADS``, which a sweep sets per worker): the same bytes whatever their
    number (national 100 m: the analysis's four maps 5.3 s -> 3.5 s on two cores)."""
    if threads is None:
        import numba

        threads = numba.config.NUMBA_NUM_THREADS
    return {
        **COG_OPTIONS,
        "overview_resampling": "nearest" if categorical else "average",
        "num_threads": threads,
    }


def cog_bytes(
    bands,
    *,
    transform,
    dtype,
    nodata,
    categorical: bool,
    count: int | None = None,
    crs=CRS,
    descriptions=(),
    colormap=None,
    tags=None,
    band_tags=None,
    threads: int | None = None,
) -> bytes:
    """A COG in memory: ``bands`` 2-D arrays, one per band (a generator, with ``count``, is
    drawn one band at a time). Built in memory and then written by :func:`write_file`, so
    that a full disk is an ``OSError`` with its errno: GDAL reports it only as a write error
    at some scanline. ``threads``: as :func:`cog_options`."""
    from rasterio.io import MemoryFile

    count = len(bands) if count is None else count
    bands = iter(bands)
    first = np.asarray(next(bands), dtype=dtype)
    profile = {
        **cog_options(categorical=categorical, threads=threads),
        "width": first.shape[1],
        "height": first.shape[0],
        "count": count,
        "dtype": dtype,
        "nodata": nodata,
        "crs": crs,
        "transform": transform,
    }
    with MemoryFile() as mem:
        with mem.open(**profile) as dst:
            dst.write(first, 1)
            del first
            for j, band in enumerate(bands, start=2):
                dst.write(np.asarray(band, dtype=dtype), j)
            for j, text in enumerate(descriptions, start=1):
                dst.set_band_description(j, text)
            if colormap is not None:
                dst.write_colormap(1, colormap)
            if band_tags:
                dst.update_tags(1, **band_tags)
            if tags:
                dst.update_tags(**tags)
        return mem.read()


def write_cog(path, bands, **kwargs) -> Path:
    """Write a COG (see :func:`cog_bytes`) to ``path`` atomically."""
    return write_file(path, cog_bytes(bands, **kwargs))


def copy_as_cog(src, path, *, categorical: bool) -> Path:
    """A GDAL-readable raster copied to ``path`` as a COG with the engine's profile."""
    import rasterio.shutil
    from rasterio.io import MemoryFile

    with MemoryFile() as mem:
        rasterio.shutil.copy(src, mem.name, **cog_options(categorical=categorical))
        return write_file(path, mem.read())


def colormap(colours: dict[int, str]) -> dict[int, tuple[int, int, int, int]]:
    """A GDAL colour table from ``{code: "#rrggbb"}``; every other value transparent."""
    table = {i: (0, 0, 0, 0) for i in range(256)}
    for code, colour in colours.items():
        table[code] = (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16), 255)
    return table


def pam_categories(names) -> str:
    """GDAL PAM sidecar (``<file>.aux.xml``) naming the categories of band 1 (index = code)."""
    cats = "".join(f"<Category>{escape(n)}</Category>" for n in names)
    return (
        '<PAMDataset>\n  <PAMRasterBand band="1">\n'
        f"    <CategoryNames>{cats}</CategoryNames>\n"
        "  </PAMRasterBand>\n</PAMDataset>\n"
    )


def grid_transform(ds):
    """The affine transform of a grid Dataset (rioxarray's, else from the cell centres)."""
    import rasterio

    try:
        return ds.rio.transform()
    except Exception:  # a Dataset without rioxarray metadata
        x, y = np.asarray(ds["x"].values), np.asarray(ds["y"].values)
        dx, dy = float(x[1] - x[0]), float(y[1] - y[0])
        return rasterio.Affine(dx, 0, x[0] - dx / 2, 0, dy, y[0] - dy / 2)


# -- JSON -----------------------------------------------------------------------------------------


def json_float(x):
    """A number for JSON: None for None, NaN and infinity."""
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else x


def clean_json(x):
    """Plain JSON types all the way down: numpy scalars and arrays to Python, NaN to None."""
    if isinstance(x, dict):
        return {
            clean_json(k) if isinstance(k, np.generic) else k: clean_json(v) for k, v in x.items()
        }
    if isinstance(x, (list, tuple)):
        return [clean_json(v) for v in x]
    if isinstance(x, np.ndarray):
        return clean_json(x.tolist())
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return json_float(x)
    if isinstance(x, Path):
        return str(x)
    return x


def dumps_json(data) -> str:
    """The engine's JSON text: cleaned, indented by one, a newline at the end."""
    return json.dumps(clean_json(data), indent=1, allow_nan=False, default=str) + "\n"


# -- single files ---------------------------------------------------------------------------------


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}


class DiskError(RuimtepuzzelError):
    """A file could not be written: the disk is full or the folder is not writable."""

    def __init__(self, message: str, path, code: int):
        super().__init__(message)
        self.path, self.errno = Path(path), code


def disk_error(err: BaseException, path) -> DiskError | None:
    """The user's version of an OSError from writing ``path``, or None if it is not theirs."""
    code = getattr(err, "errno", None)
    if not isinstance(err, OSError) or code not in _FULL | _READ_ONLY:
        return None
    reason, fix = _reason_fix(code)
    return DiskError(f"{path}: cannot write it ({reason}); {fix}", path, code)


def _reason_fix(code: int) -> tuple[str, str]:
    if code in _FULL:
        return os.strerror(code).lower(), "free space there, or give --out a folder elsewhere"
    return os.strerror(code).lower(), "give --out a folder you can write to"


def write_file(path, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` atomically: a temporary name beside it, flushed to disk,
    then renamed over it. Raises :class:`DiskError` for a full disk or a read-only folder."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        mapped = disk_error(err, path)
        if mapped is not None:
            raise mapped from err
        raise
    return path


def npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


# -- signals --------------------------------------------------------------------------------------


@contextlib.contextmanager
def _sigint_deferred():
    """Hold Ctrl-C back while the folder is swapped or cleaned, then deliver it: half a
    swap or half a clean-up is what a reader must never find. Only the main thread can."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught and callable(previous):
            previous(signal.SIGINT, caught[0])


# -- the lock -------------------------------------------------------------------------------------


class RunFolderBusy(RuimtepuzzelError):
    """Another process is writing the same run folder."""


class RunLock:
    """``DIR.lock``: an flock held while a run prepares and swaps its folder (see the module
    docstring for why flock); the file names the holder."""

    def __init__(self, path: Path, folder: Path, shown: str):
        self.path, self.folder, self.shown = path, folder, shown
        self.fd: int | None = None
        self.info: dict = {}

    def acquire(self) -> RunLock:
        while True:
            # Held on a read-only descriptor: flock needs no write access, and a descriptor
            # open for writing would keep the file system from being remounted read-only.
            fd = os.open(self.path, os.O_RDONLY | os.O_CREAT, 0o644)
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise self._busy(holder) from None
            except BaseException:
                os.close(fd)
                raise
            # The previous holder deletes the file when it is done; a lock taken on a file
            # already deleted guards nothing, so take it again on the file now there.
            if _same_file(fd, self.path):
                break
            os.close(fd)
        stale = _read_holder(fd, wait=False)
        if stale:
            log.info(
                "%s: taking over the lock left by pid %s on %s (started %s), which is gone",
                self.shown,
                stale.get("pid"),
                stale.get("host"),
                stale.get("started"),
            )
        self.fd = fd
        self.info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "folder": str(self.folder),
            "stage": "start",
        }
        try:
            self._write()
        except BaseException:
            self.release()
            raise
        return self

    def note(self, stage: str) -> None:
        """Record the stage the run is at: the refusal message of a second run shows it."""
        if self.fd is not None:
            self.info["stage"] = stage
            with contextlib.suppress(OSError):  # only a courtesy to the next reader
                self._write()

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)  # while still held: see acquire
        os.close(self.fd)
        self.fd = None

    def _write(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, (json.dumps(self.info) + "\n").encode())
        finally:
            os.close(fd)

    def _busy(self, holder: dict) -> RunFolderBusy:
        who = (
            f"pid {holder.get('pid')} on {holder.get('host')}, started "
            f"{holder.get('started')}, at stage '{holder.get('stage')}'"
            if holder
            else "a process that has not yet written its name"
        )
        return RunFolderBusy(
            f"{self.shown}: another run is writing this folder ({who}; lock {self.path}). "
            f"Wait for it to finish or give --out another folder; the lock goes when that "
            f"process ends, however it ends."
        )


def _same_file(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _read_holder(fd: int, *, wait: bool = True) -> dict:
    """Who holds (or held) the lock; a holder may be writing it at this very moment."""
    for _ in range(10 if wait else 1):
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            return json.loads(os.read(fd, 4096).decode("utf-8", "replace"))
        except ValueError:
            if wait:
                time.sleep(0.02)
    return {}


# -- the run folder -------------------------------------------------------------------------------


class RunFolderError(RuimtepuzzelError):
    """A folder that is not a whole run folder, or cannot be one."""


def _refuse(shown, problem: str, fix: str) -> RunFolderError:
    return RunFolderError(f"{shown}: {problem}; {fix}")


def check_out_dir(out) -> Path:
    """The run folder ``out`` as an absolute path, checked before any work: not empty, not a
    file, not the root or a mount point, not around the current folder; its parent is
    created. Raises :class:`RunFolderError` or :class:`DiskError`."""
    if out is None or not str(out).strip():
        raise RunFolderError(
            'the output folder is empty (--out ""); give the folder the '
            "run writes to, e.g. --out out/national"
        )
    shown = str(out)
    path = Path(os.path.realpath(Path(shown).expanduser()))
    if path.exists() and not path.is_dir():
        raise _refuse(
            shown,
            "is an existing file, not a folder",
            "give --out a folder (it is created if missing) or move the file away",
        )
    if path.parent == path or os.path.ismount(path):
        raise _refuse(
            shown,
            "is the root of a file system; a run replaces its whole folder",
            f"give --out a folder inside it, e.g. {Path(shown) / 'run'}",
        )
    try:
        cwd = Path(os.path.realpath(os.getcwd()))
    except FileNotFoundError:
        cwd = None
    if cwd is not None and (cwd == path or path in cwd.parents):
        raise _refuse(
            shown,
            "holds the current folder, and a run replaces its whole folder",
            "run from another folder or give --out another folder",
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise _refuse(
            shown, "a part of this path is a file, not a folder", "give --out a path of folders"
        ) from None
    except OSError as err:
        error = disk_error(err, path.parent)
        if error is None:
            raise
        raise error from err
    return path


def _check_replaceable(path: Path, shown: str) -> None:
    """A run replaces its folder as a whole: refuse a folder that holds anything else."""
    if not path.exists():
        return
    names = sorted(n for n in os.listdir(path) if not _OLD_TEMP.match(n))
    if not names or {MANIFEST, "report.json"} & set(names):
        return
    listed = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    raise _refuse(
        shown,
        f"holds files that are not a ruimtepuzzel run ({listed}), and a run "
        "replaces its whole folder",
        "give --out a new or empty folder, or the folder of an earlier run",
    )


# Temporary files of the writers before whole-folder runs: part of an old run folder.
_OLD_TEMP = re.compile(r"^\..+\.tmp-\d+$")


def _leftover_pattern(path: Path) -> re.Pattern:
    return re.compile(rf"^{re.escape(path.name)}\.(tmp|old)-\d+-[0-9a-f]{{8}}$")


def _recover(path: Path, shown: str) -> None:
    """Repair what a killed run left beside ``path`` (called under the lock, so nothing
    else is writing there): the previous run put back if a fallback swap stopped between
    its renames, and every staging folder deleted."""
    pattern = _leftover_pattern(path)
    leftovers = sorted(p for p in path.parent.iterdir() if pattern.match(p.name))
    aside = [p for p in leftovers if ".old-" in p.name]
    if aside and not path.exists():
        os.rename(aside[-1], path)
        log.warning(
            "%s: put the previous run back from %s (a run was stopped in the middle "
            "of replacing it)",
            shown,
            aside[-1].name,
        )
        leftovers.remove(aside[-1])
    for p in leftovers:
        log.info("%s: removing %s, left by a run that was stopped", shown, p.name)
        _remove_tree(p)


def _remove_tree(path: Path) -> bool:
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        pass
    except OSError as err:  # the caller says so where it matters; this is the detail
        log.debug(
            "could not remove %s (%s); the next run into the same folder removes it", path, err
        )
        return False
    return True


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@functools.cache
def _renameat2():
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # a libc without it (glibc < 2.28, some musl)
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders in one step; False where the system or file system cannot."""
    fn = _renameat2()
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _outputs(folder: Path) -> list[dict]:
    """Every file of the folder but the manifest, with its size and sha256, in name order."""
    out = []
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != MANIFEST:
            out.append(
                {
                    "path": p.relative_to(folder).as_posix(),
                    "bytes": p.stat().st_size,
                    "sha256": sha256_file(p),
                }
            )
    return out


class RunFolder:
    """One run's folder, written whole or not at all::

        with RunFolder("out/national") as folder:   # checks, locks, stages
            ...write every output into folder.stage...
            folder.commit(manifest)                  # manifest.json, then the swap

    Leaving the block without :meth:`commit` (an exception, Ctrl-C) deletes the stage and
    leaves the folder as it was. A full disk or a read-only folder is a :class:`DiskError`.
    """

    def __init__(self, out_dir):
        self.shown = str(out_dir) if out_dir is not None else ""
        self.path = check_out_dir(out_dir)
        self.lock = RunLock(self.path.with_name(self.path.name + ".lock"), self.path, self.shown)
        self.stage: Path | None = None
        self.committed = False
        self._trash: Path | None = None
        self.had_run = False

    def __enter__(self) -> RunFolder:
        try:
            with _sigint_deferred():  # a Ctrl-C here is delivered below, and cleaned up
                self._open()
        except BaseException as err:
            self._close()
            if isinstance(err, OSError):
                self._cannot_start(err)
            raise
        log.debug("%s: staging in %s", self.shown, self.stage)
        return self

    def _open(self) -> None:
        self.lock.acquire()
        _recover(self.path, self.shown)
        _check_replaceable(self.path, self.shown)
        self.had_run = self.path.exists() and any(self.path.iterdir())
        self.stage = self.path.with_name(
            f"{self.path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
        )
        self.stage.mkdir()

    def _close(self) -> bool:
        """Remove the stage unless committed, release the lock; False if a stage is left."""
        removed = True
        with _sigint_deferred():
            try:
                if not self.committed and self.stage is not None:
                    removed = _remove_tree(self.stage)
            finally:
                self.lock.release()
        return removed

    def _cannot_start(self, err: OSError):
        if disk_error(err, self.path) is None:
            raise err
        reason, fix = _reason_fix(err.errno)
        raise DiskError(
            f"{self.shown}: cannot write in {self.path.parent} ({reason}); {fix}; "
            "nothing was changed",
            self.path.parent,
            err.errno,
        ) from err

    def note(self, stage: str) -> None:
        self.lock.note(stage)

    def commit(self, manifest: dict) -> list[dict]:
        """Write ``manifest.json`` (with every other file's sha256) and swap the stage in;
        returns the outputs listed."""
        outputs = _outputs(self.stage)
        write_file(self.stage / MANIFEST, dumps_json({**manifest, "outputs": outputs}))
        _fsync_dir(self.stage)
        with _sigint_deferred():
            self._swap()
            self.committed = True
            self.lock.note("done")
            if self._trash is not None:
                _remove_tree(self._trash)
        log.debug("%s: swapped in, %d files", self.shown, len(outputs) + 1)
        return outputs

    def _swap(self) -> None:
        stage, path = self.stage, self.path
        if not path.exists():
            os.rename(stage, path)
        elif _exchange(stage, path):
            self._trash = stage  # now holds the previous run
        else:
            aside = path.with_name(f"{path.name}.old-{os.getpid()}-{secrets.token_hex(4)}")
            os.rename(path, aside)
            os.rename(stage, path)  # a crash before this line: _recover puts `aside` back
            self._trash = aside
        _fsync_dir(path.parent)

    def __exit__(self, exc_type, exc, tb):
        left = not self._close()
        if exc is None:
            return False
        mapped = exc if isinstance(exc, DiskError) else disk_error(exc, self.path)
        if mapped is None:
            return False
        raise DiskError(self._as_it_was(mapped, left), mapped.path, mapped.errno) from exc

    def _as_it_was(self, err: DiskError, left: bool) -> str:
        shown = err.path
        if self.stage is not None and self.stage in err.path.parents:
            shown = Path(self.shown) / err.path.relative_to(self.stage)
        text = str(err).replace(str(err.path), str(shown), 1)
        kept = (
            f"{self.shown} keeps its previous run"
            if self.had_run
            else f"nothing was written to {self.shown}"
        )
        if left:
            kept += (
                f"; the temporary folder {self.stage} could not be removed, the next run "
                f"into {self.shown} removes it"
            )
        return f"{text}; {kept}"


# -- reading a run folder -------------------------------------------------------------------------


def run_folder_problems(folder, *, allow=(), inputs: bool = False) -> list[str]:
    """What keeps ``folder`` from being one whole run: files missing, changed or not listed
    in its manifest.json; with ``inputs`` also inputs changed since. [] if whole. ``allow``:
    names of files a caller keeps beside the run's own (a sweep's variant.json)."""
    folder = Path(folder)
    if not folder.is_dir():
        return [f"{folder}: no such folder"]
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return [f"{folder}: no {MANIFEST}"]
    except ValueError as err:
        return [f"{folder / MANIFEST}: not valid JSON ({err})"]
    if "outputs" not in manifest:
        return [f"{folder / MANIFEST}: lists no outputs (written before runs were whole)"]
    problems = []
    listed = {o["path"]: o for o in manifest["outputs"]}
    present = set()
    for p in folder.rglob("*"):
        name = p.relative_to(folder).as_posix()
        if p.is_file() and name != MANIFEST:
            present.add(name)
        elif p.is_dir() and not any(p.iterdir()):
            problems.append(f"{name}/: an empty folder the manifest does not list")
    for name in sorted(present - listed.keys() - set(allow)):
        problems.append(f"{name}: not listed in {MANIFEST} (stale or foreign)")
    for name, entry in sorted(listed.items()):
        problems += _file_problems(folder / name, name, entry, "listed in " + MANIFEST)
    if inputs:
        for entry in manifest.get("inputs", []):
            problems += _file_problems(Path(entry["path"]), entry["path"], entry, "an input")
    return problems


def _file_problems(path: Path, name: str, entry: dict, what: str) -> list[str]:
    if not path.is_file():
        return [f"{name}: {what} but missing"]
    if "bytes" in entry and path.stat().st_size != entry["bytes"]:
        return [f"{name}: {path.stat().st_size} bytes, {entry['bytes']} in {MANIFEST}"]
    if sha256_file(path) != entry["sha256"]:
        return [f"{name}: changed since the run (sha256 differs from {MANIFEST})"]
    return []


def verify_run_folder(folder, *, allow=(), inputs: bool = False) -> dict:
    """Prove ``folder`` one whole run (see :func:`run_folder_problems`); returns its manifest,
    raises :class:`RunFolderError` listing what is wrong."""
    problems = run_folder_problems(folder, allow=allow, inputs=inputs)
    if problems:
        raise RunFolderError(f"{folder} is not a whole run folder: " + "; ".join(problems))
    return json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))


def listed_outputs(folder) -> list[str]:
    """The files a run wrote to ``folder``, as its manifest lists them, the manifest last."""
    manifest = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    return [o["path"] for o in manifest.get("outputs", [])] + [MANIFEST]
