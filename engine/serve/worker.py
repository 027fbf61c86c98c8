"""The child process that solves the praatkaart's variants, killed when a solve runs too long.

A solve is numpy, HiGHS and numba code that no thread can interrupt; a process can be
killed. :class:`SolveProcess` keeps one spawned child (a fresh interpreter: no copy of the
server's threads and sockets, as a fork would make) that runs one job at a time, sent over a
pipe as a module-level function and its arguments. :meth:`SolveProcess.call` waits at most
``timeout`` seconds for the answer; past it the child is killed, a new one is started and
:class:`TimeLimit` raised, so the next variant finds a working process.

    worker = SolveProcess(warm=(warm_up, args))
    result = worker.call(solve_variant, job, timeout=60)
    worker.close()
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import time
import traceback

from engine.errors import RuimtepuzzelError

log = logging.getLogger(__name__)

__all__ = ["SolveProcess", "TimeLimit", "ChildFailed"]

WARM_LIMIT = 300.0  # seconds the warm-up of a new child may take before it is given up


class TimeLimit(RuimtepuzzelError):
    """A job ran over its time limit: the child was killed."""


class ChildFailed(RuimtepuzzelError):
    """The job raised an error the child could not turn into an answer, or the child died."""


def _serve(conn) -> None:
    """The child's loop: a (function, args) in, ("ok", result) or ("error", text) out."""
    while True:
        try:
            message = conn.recv()
        except EOFError:  # the server went away
            return
        if message is None:
            return
        fn, args = message
        try:
            answer = ("ok", fn(*args))
        except BaseException as err:  # noqa: BLE001 - the parent logs it and carries on
            answer = ("error", f"{type(err).__name__}: {err}\n{traceback.format_exc()}")
        conn.send(answer)


class SolveProcess:
    """One child process, started on the first call and again after every kill."""

    def __init__(self, warm=None):
        self._ctx = multiprocessing.get_context("spawn")
        self._warm = warm  # (function, args): imports, grids, compiled kernels of a new child
        self._proc = None
        self._conn = None
        self.started = 0  # children started so far
        self._closed = False

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.is_alive() else None

    def _start(self) -> None:
        self._spawn()
        if self._warm is not None:
            clock = time.perf_counter()
            try:
                self._ask(self._warm[0], *self._warm[1], timeout=WARM_LIMIT)
                log.info("solve process warmed up in %.1f s", time.perf_counter() - clock)
            except RuimtepuzzelError as err:  # a cold child still solves, only slower
                log.warning("solve process warm-up: %s", str(err).splitlines()[0])
                if self._proc is None:  # killed at the limit
                    self._spawn()

    def _spawn(self) -> None:
        parent, child = self._ctx.Pipe()
        self._proc = self._ctx.Process(
            target=_serve, args=(child,), name="praatkaart-solve", daemon=True
        )
        self._proc.start()
        child.close()
        self._conn = parent
        self.started += 1
        if self._closed:  # the server stopped while this child was starting
            self.kill()
            raise ChildFailed("the praatkaart is stopping")

    def _ask(self, fn, *args, timeout: float):
        self._conn.send((fn, args))
        if not self._conn.poll(timeout):
            self.kill()
            raise TimeLimit(f"over the time limit of {timeout:g} s")
        try:
            kind, value = self._conn.recv()
        except (EOFError, OSError) as err:
            self.kill()
            raise ChildFailed(f"the solve process ended ({err or 'no answer'})") from err
        if kind == "error":
            log.error("solve process: %s", value)
            raise ChildFailed(value.splitlines()[0])
        return value

    def call(self, fn, *args, timeout: float):
        """``fn(*args)`` in the child; raises :class:`TimeLimit` after ``timeout`` seconds
        (the child killed) and :class:`ChildFailed` when it raised or died."""
        if self._proc is None or not self._proc.is_alive():
            self._start()
        return self._ask(fn, *args, timeout=timeout)

    def kill(self) -> None:
        # Also called from the server's thread while the solve thread may be starting a
        # child: take the handles first, then end what they hold.
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if proc is not None:
            with contextlib.suppress(AttributeError, ValueError, OSError):  # not started yet
                proc.kill()
                proc.join(timeout=10)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        self._closed = True
        proc, conn = self._proc, self._conn
        if proc is not None and conn is not None and proc.is_alive():
            with contextlib.suppress(OSError, ValueError):
                conn.send(None)
                proc.join(timeout=2)
        self.kill()
