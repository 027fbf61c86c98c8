"""Progress of a long run: its stages, the work done inside each, and the time left.

    stages = Stages(["config", "grid", "compile"], show=True)
    stages.start("grid")
    advance(3, 40, "tiles")        # anywhere below, from any thread
    stages.done()
    stages.close()

On a terminal the progress is one line, redrawn in place::

    ruimtepuzzel [4/8] solve: 1,200/15,000 price evaluations, at most 1 min 30 s left (12 s)

Anywhere else (a batch job's log, a pipe) it is whole lines, like the engine's log lines: one
when a stage starts, one when it ends, one when its work turns to another kind (the rules
priced, then the re-solves, then the maps) and one at most every :data:`LOG_EVERY`
seconds in between, so that a cluster's log file holds lines and no carriage returns. With ``show``
False nothing is shown and only the timings are kept.

Work that tells nothing for a while (one LP of HiGHS, minutes at 25 m) does not freeze the
display: a terminal's line is redrawn every :data:`TICK` seconds with the time spent, and a
log gets the current line again after :data:`LOG_QUIET` seconds without one.

Work deep in the engine (grid tiles, price evaluations, repair LPs, compaction) tells
:func:`advance` how far it is; with no display active that is one global read. The time
left is the stage's rate so far applied to the work still to do; where ``total`` is a budget
the work may end before (the solver's evaluation budget, its repair rounds) it is said as
"at most", or as "about" where the work can tell how much of the budget it expects to use
(``expected``: the repair from how fast its count of cells still to settle falls) or the time
left itself (``left``: a :class:`Tally` of pieces that differ in size).
"""

from __future__ import annotations

import heapq
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

from engine.thread_flag import ThreadFlag

__all__ = ["Stages", "Tally", "advance", "muted", "remaining"]

# Seconds between two log lines of one stage when the output is not a terminal.
LOG_EVERY = 10.0
# Seconds between two redraws of the terminal line.
REDRAW_EVERY = 0.1
# Seconds between two redraws of a terminal's line while the work tells nothing: its time
# spent goes on.
TICK = 1.0
# Seconds without a line after which a log gets the current one again: a batch job's log
# that says nothing for minutes (the first LPs of a 25 m solve) looks like a hung job.
LOG_QUIET = 60.0

_active: Stages | None = None
# Per thread: whether its work is counted by a caller instead (see muted).
_muted = ThreadFlag()


def advance(
    done: int,
    total: int,
    unit: str,
    *,
    at_most: bool = False,
    expected: int | None = None,
    note: str | None = None,
    left: float | None = None,
) -> None:
    """Tell the active display that ``done`` of ``total`` ``unit`` of the current stage are
    done (the rest as :meth:`Stages.advance` takes them)."""
    stages = _active
    if stages is not None and not _muted:
        stages.advance(done, total, unit, at_most=at_most, expected=expected, note=note, left=left)


def muted():
    """Within, this thread's :func:`advance` shows nothing: for work counted as a whole by
    its caller (each re-solve of the analysis counts as one; their own price evaluations and
    repair LPs, two re-solves at a time, would take turns on the one line)."""
    return _muted.within()


class Tally:
    """Pieces of work done by ``workers`` threads at once and finished in any order, told as
    they finish, each with a cost: an estimate of its work in any unit (only the ratios
    count). The count only goes up (two threads that took their numbers and then told them
    in the other order would show a count going down, which starts a new rate).

    The time left comes from the workers as they would go on: the seconds per cost of the
    pieces finished so far give each piece under way what it has left (nothing, once it is
    late) and each piece waiting its time, handed in order (as a pool starts them) to the
    worker free first; the last to be free says it. A count's rate would mislead where
    pieces differ in size: an analysis re-solves its most costly rules first (national
    100 m: 13-25 s each, the last ones 1 s), and the first of 19 finished said "10 min 48 s
    left" when 50 s were. A piece that fails is dropped: it is neither counted nor waited for.
    A tally made where progress is muted stays muted in the threads that finish its pieces
    (the report's bound of the minimum patches prices its rule in a pool).
    """

    def __init__(self, costs, unit: str, *, workers: int = 1):
        self.costs = [float(c) for c in costs]
        if not all(0 < c < float("inf") for c in self.costs):
            raise ValueError(f"{unit}: a piece's cost must be > 0 and finite, got {self.costs}")
        self.unit, self.workers = unit, max(1, workers)
        self._shown = not _muted
        self._lock = threading.Lock()
        self._started: dict[int, float] = {}  # piece under way -> when it started
        self._over: set[int] = set()  # pieces finished or failed
        self._done, self._seconds, self._cost_done = 0, 0.0, 0.0
        if self.costs:
            advance(0, len(self.costs), unit)

    @contextmanager
    def piece(self, index: int):
        """Within, piece ``index`` is under way; it is finished when the block ends without
        an error."""
        with self._lock:
            self._started[index] = time.perf_counter()
        try:
            yield
        except BaseException:
            with self._lock:
                del self._started[index]
                self._over.add(index)
            raise
        with self._lock:
            now = time.perf_counter()
            self._seconds += now - self._started.pop(index)
            self._over.add(index)
            self._cost_done += self.costs[index]
            self._done += 1
            if self._shown:
                advance(self._done, len(self.costs), self.unit, left=self._left(now))

    def _left(self, now: float) -> float:
        per_cost = self._seconds / self._cost_done
        # Per worker: the seconds until it is free (idle workers: now).
        free = [max(per_cost * self.costs[i] - (now - t), 0.0) for i, t in self._started.items()]
        free += [0.0] * max(0, self.workers - len(free))
        heapq.heapify(free)
        for i, cost in enumerate(self.costs):
            if i not in self._over and i not in self._started:
                heapq.heappush(free, heapq.heappop(free) + per_cost * cost)
        return max(free)


def remaining(seconds: float) -> str:
    """A duration as a person reads it: 8 s, 1 min 30 s, 1 h 5 min."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s" if s % 60 else f"{s // 60} min"
    return f"{s // 3600} h {s % 3600 // 60} min"


@dataclass(frozen=True)
class _Work:
    """The work of the current stage as last told, and where its rate is counted from."""

    unit: str
    done: int
    total: int
    at_most: bool
    expected: int | None
    note: str | None
    since: float
    done_since: int
    told: float  # when this count was told
    # Seconds left as the work itself told them.
    told_left: float | None = None

    def left(self, now: float) -> str:
        count = f"{self.done:,}/{self.total:,} {self.unit}"
        if self.note:
            count += f" ({self.note})"
        # Until the next count the time left counts down from what this one said: a rate
        # taken at any moment would climb while one long step (an LP) tells nothing.
        waited = now - self.told
        if self.told_left is not None:
            return _time_left(count, "about ", self.told_left, waited)
        elapsed = self.told - self.since
        if self.done <= self.done_since or elapsed <= 0:
            return count
        per_unit = elapsed / (self.done - self.done_since)
        if self.expected is not None:
            end, word = max(self.expected, self.done), "about "
        else:
            end, word = self.total, "at most " if self.at_most else ""
        return _time_left(count, word, (end - self.done) * per_unit, waited)


def _time_left(count: str, word: str, told: float, waited: float) -> str:
    """The count with the time it said was left less the time since, or, where that has run
    out while work was still to do, that it takes longer than estimated: "0 s left" stood
    for minutes (national 25 m, a use compacted that took 6 min where the others took 1)."""
    if told > 0 and waited > told:
        return f"{count}, longer than estimated"
    return f"{count}, {word}{remaining(told - waited)} left"


class Stages:
    """Times the stages of a run and shows their progress when ``show``.

    ``names``: the stages in order (the display counts them); ``on_start(name)`` is told of
    each stage as it starts; ``stream``: where progress goes (``sys.stderr`` when the
    display is made); ``tty``: whether it is a terminal (default: ask the stream)."""

    def __init__(self, names, *, show: bool, on_start=None, stream=None, tty: bool | None = None):
        self.names = list(names)
        self.timings: dict[str, float] = {}
        self.on_start = on_start
        self.show = show
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self._lock = threading.Lock()
        self._name: str | None = None
        self._t = 0.0
        self._work: _Work | None = None
        self._shown_at = 0.0
        self._line_width = 0
        self._running = False  # a stage started and not done
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def __enter__(self) -> Stages:
        global _active
        if self.show and self._ticker is None:
            _active = self
            self._stop.clear()
            self._ticker = threading.Thread(target=self._tick, name="progress", daemon=True)
            self._ticker.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self, name: str) -> None:
        with self._lock:
            self._name, self._t = name, time.perf_counter()
            self._work = None
            self._running = True
        if self.on_start is not None:
            self.on_start(name)
        self._show(force=True, event="started")

    def done(self) -> None:
        seconds = time.perf_counter() - self._t
        self.timings[self._name] = seconds
        with self._lock:
            self._running = False
        self._show(force=True, event=f"done in {remaining(seconds)}" if seconds >= 1 else "done")

    def advance(
        self,
        done: int,
        total: int,
        unit: str,
        at_most: bool = False,
        expected: int | None = None,
        note: str | None = None,
        left: float | None = None,
    ) -> None:
        """``done`` of ``total`` ``unit`` are done; ``at_most``: ``total`` is a budget the
        work may end before; ``expected``: the work's own estimate of where it ends within
        that budget (the time left is then said "about", from it); ``note``: what the count
        alone does not tell, shown beside it; ``left``: the work's own estimate of the
        seconds left (said "about"), instead of its rate's."""
        with self._lock:
            now = time.perf_counter()
            # A stage's next kind of work is shown at once in a log too: the last line's time
            # left was the previous kind's ("19/19 rules re-solved, about 0 s left" stood for
            # 18 s of exchanges and maps at national 100 m).
            next_kind = self._work is not None and self._work.unit != unit
            if self._work is None and done > 0:
                # The stage's first work counts from the stage's start, unless it said when
                # it started (none done yet).
                since, done_since = self._t, 0
            elif self._work is None:
                since, done_since = now, 0
            elif self._work.unit != unit or done < self._work.done:
                # A new kind of work (or a new count) starts its own rate.
                since, done_since = now, done
            else:
                since, done_since = self._work.since, self._work.done_since
            self._work = _Work(
                unit, done, total, at_most, expected, note, since, done_since, now, left
            )
        self._show(force=next_kind)

    def close(self) -> None:
        global _active
        if _active is self:
            _active = None
        with self._lock:
            self._running = False  # a stage an error ended is not redrawn
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None
        if self.show and self.tty and self._line_width:
            self.stream.write("\n")
            self.stream.flush()
            self._line_width = 0

    # -- display

    def _text(self, event: str | None) -> str:
        number = self.names.index(self._name) + 1 if self._name in self.names else 0
        head = f"[{number}/{len(self.names)}] {self._name}"
        if event is not None:
            return f"{head}: {event}"
        elapsed = remaining(time.perf_counter() - self._t)
        if self._work is None:
            return f"{head} ({elapsed})"
        return f"{head}: {self._work.left(time.perf_counter())} ({elapsed})"

    def _tick(self) -> None:
        """Until closed: the current line again where nothing was shown for a while."""
        while not self._stop.wait(TICK):
            if self._running:
                try:
                    self._show(quiet=TICK if self.tty else LOG_QUIET)
                except (OSError, ValueError):
                    return  # the stream went (a closed pipe): the run goes on without it

    def _show(
        self, force: bool = False, event: str | None = None, quiet: float | None = None
    ) -> None:
        """The current line, if ``force`` or if the last was longer ago than the display's
        interval (``quiet``: this one instead)."""
        if not self.show:
            return
        with self._lock:
            now = time.perf_counter()
            every = quiet if quiet is not None else REDRAW_EVERY if self.tty else LOG_EVERY
            if not force and now - self._shown_at < every:
                return
            if quiet is not None and not self._running:
                return  # the stage ended while the ticker waited for the lock
            self._shown_at = now
            if not self.tty:
                self.stream.write(f"ruimtepuzzel: {self._text(event)}\n")
                self.stream.flush()
                return
            # A terminal keeps one line: the stage and its work, not the event.
            text = f"ruimtepuzzel {self._text(None if event == 'started' else event)}"
            pad = max(0, self._line_width - len(text))
            self.stream.write("\r" + text + " " * pad)
            self.stream.flush()
            self._line_width = len(text)
