"""Progress of long work: every stage of a run in order, the analysis one of its own, the
work inside a stage with the time left; lines for a log, one redrawn line for a terminal,
nothing when progress is off."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from engine import progress
from engine.progress import Stages, _Work, advance, remaining
from engine.run import run

ROOT = Path(__file__).resolve().parents[1]
NATIONAL = ROOT / "configs" / "national.toml"
STAGES = ["config", "grid", "compile", "solve", "compact", "write", "analysis", "manifest"]


@pytest.fixture
def every_line(monkeypatch):
    """A log line for every step of work, not one per ten seconds."""
    monkeypatch.setattr(progress, "LOG_EVERY", 0.0)


def test_remaining_reads_as_a_person_says_it():
    assert [remaining(s) for s in (0.4, 8, 90, 120, 3900)] == [
        "0 s",
        "8 s",
        "1 min 30 s",
        "2 min",
        "1 h 5 min",
    ]


def test_lines_for_a_log_with_the_time_left(every_line, clock):
    """Times set by the test: read from the wall clock, a count told microseconds after its
    stage started said its rest takes microseconds, and a slow machine printed "longer than
    estimated" (CI at 3b0ef75)."""
    out = io.StringIO()
    with Stages(["grid", "solve"], show=True, stream=out, tty=False) as stages:
        stages.start("grid")
        for done in range(1, 5):
            clock[0] = 2.0 * done
            advance(done, 4, "tiles")
        stages.done()
        stages.start("solve")
        clock[0] = 18.0
        advance(30, 300, "price evaluations", at_most=True)
        stages.done()
    advance(1, 2, "tiles")  # after the run: nobody listens
    assert out.getvalue().splitlines() == [
        "ruimtepuzzel: [1/2] grid: started",
        "ruimtepuzzel: [1/2] grid: 1/4 tiles, 6 s left (2 s)",
        "ruimtepuzzel: [1/2] grid: 2/4 tiles, 4 s left (4 s)",
        "ruimtepuzzel: [1/2] grid: 3/4 tiles, 2 s left (6 s)",
        "ruimtepuzzel: [1/2] grid: 4/4 tiles, 0 s left (8 s)",
        "ruimtepuzzel: [1/2] grid: done in 8 s",
        "ruimtepuzzel: [2/2] solve: started",
        "ruimtepuzzel: [2/2] solve: 30/300 price evaluations, at most 1 min 30 s left (10 s)",
        "ruimtepuzzel: [2/2] solve: done in 10 s",
    ]
    assert "\r" not in out.getvalue()
    assert set(stages.timings) == {"grid", "solve"}


def test_the_next_kind_of_work_in_a_stage_is_shown_at_once_in_a_log():
    """A log shows a line every LOG_EVERY seconds, but a stage's next kind of work at once:
    the last line's time left was the previous kind's."""
    out = io.StringIO()
    with Stages(["analysis"], show=True, stream=out, tty=False) as stages:
        stages.start("analysis")
        advance(1, 2, "rules re-solved")  # the stage's first work: within LOG_EVERY
        advance(2, 2, "rules re-solved")
        advance(0, 3, "exchanges verified")
        advance(1, 3, "exchanges verified")
        stages.done()
    lines = out.getvalue().splitlines()
    assert lines == [
        "ruimtepuzzel: [1/1] analysis: started",
        "ruimtepuzzel: [1/1] analysis: 0/3 exchanges verified (0 s)",
        "ruimtepuzzel: [1/1] analysis: done",
    ]


def test_work_that_expects_to_end_before_its_budget_says_about(every_line, monkeypatch):
    now = [0.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: now[0])
    out = io.StringIO()
    with Stages(["solve"], show=True, stream=out, tty=False) as stages:
        stages.start("solve")
        # 10 s an LP: four more expected of a budget of 40 -> about 40 s, not 6 min 20 s.
        for done, expected, gaining in [(1, None, "36,094"), (2, 6, "2,085"), (3, None, "2,100")]:
            now[0] = 10.0 * done
            advance(
                done,
                40,
                "repair LPs",
                at_most=True,
                expected=expected,
                note=f"{gaining} cells still gain",
            )
    head = "ruimtepuzzel: [1/1] solve: "
    assert out.getvalue().splitlines()[1:] == [
        head + "1/40 repair LPs (36,094 cells still gain), at most 6 min 30 s left (10 s)",
        head + "2/40 repair LPs (2,085 cells still gain), about 40 s left (20 s)",
        # No estimate of its own: the budget again.
        head + "3/40 repair LPs (2,100 cells still gain), at most 6 min 10 s left (30 s)",
    ]


def test_work_that_says_when_it_starts_counts_its_rate_from_then(every_line, clock):
    """A repair that tells it started (none done) after minutes of other work in its stage
    (national 25 m: the price stage and the aggregated LP, 2.5 min): its time left is its
    own LPs' rate, not the stage's."""
    out = io.StringIO()
    with Stages(["solve"], show=True, stream=out, tty=False) as stages:
        stages.start("solve")
        clock[0] = 150.0
        advance(0, 40, "repair LPs", at_most=True)
        clock[0] = 160.0
        advance(1, 40, "repair LPs", at_most=True)
    lines = out.getvalue().splitlines()
    assert lines[-1].endswith("1/40 repair LPs, at most 6 min 30 s left (2 min 40 s)")


def test_a_log_gets_the_line_again_when_the_work_tells_nothing(monkeypatch):
    """One long LP tells nothing for minutes: the log gets the current line again after
    LOG_QUIET seconds, with the time spent, and nothing once the stage is done."""
    import time

    monkeypatch.setattr(progress, "TICK", 0.01)
    monkeypatch.setattr(progress, "LOG_QUIET", 0.05)
    out = io.StringIO()
    with Stages(["solve"], show=True, stream=out, tty=False) as stages:
        stages.start("solve")
        advance(0, 1, "aggregated LPs")
        slept = time.perf_counter()
        time.sleep(0.5)
        slept = time.perf_counter() - slept
        stages.done()
        ended = out.getvalue()
        time.sleep(0.2)
        assert out.getvalue() == ended
    lines = ended.splitlines()
    again = [line for line in lines if line.startswith("ruimtepuzzel: [1/1] solve: 0/1 aggregated")]
    # One per LOG_QUIET (a loaded machine may oversleep), not one per TICK (about 50).
    assert 3 <= len(again) <= slept / 0.05 + 2
    assert lines[-1] == "ruimtepuzzel: [1/1] solve: done"


def test_the_time_left_counts_down_while_the_work_tells_nothing(monkeypatch, clock):
    """A line shown again between two counts says the last count's time left less the time
    since (a rate taken then would climb while one LP runs: 7 min 30 s, 10 min, 15 min)."""
    import time

    monkeypatch.setattr(progress, "TICK", 0.01)
    monkeypatch.setattr(progress, "LOG_QUIET", 5.0)
    out = io.StringIO()
    with Stages(["solve"], show=True, stream=out, tty=False) as stages:
        stages.start("solve")
        advance(0, 40, "repair LPs", at_most=True)
        clock[0] = 10.0
        advance(1, 40, "repair LPs", at_most=True)  # 10 s an LP: at most 6 min 30 s
        clock[0] = 40.0
        for _ in range(200):  # the display's thread shows the line again
            if out.getvalue().count("1/40 repair LPs") == 2:
                break
            time.sleep(0.01)
        clock[0] = 500.0
        for _ in range(200):
            if out.getvalue().count("1/40 repair LPs") == 3:
                break
            time.sleep(0.01)
        stages.done()
    lines = [line for line in out.getvalue().splitlines() if "1/40 repair LPs" in line]
    assert lines == [
        "ruimtepuzzel: [1/1] solve: 1/40 repair LPs, at most 6 min 30 s left (10 s)",
        "ruimtepuzzel: [1/1] solve: 1/40 repair LPs, at most 6 min left (40 s)",
        # Late: neither a negative time nor "0 s left" for as long as the work goes on.
        "ruimtepuzzel: [1/1] solve: 1/40 repair LPs, longer than estimated (8 min 20 s)",
    ]


def test_a_stage_an_interrupt_ends_is_not_shown_again(monkeypatch):
    """Ctrl-C in a stage: the display's thread ends with the run and shows nothing more; a
    stream that breaks (a closed pipe) ends it too, without a traceback."""
    import threading
    import time

    monkeypatch.setattr(progress, "TICK", 0.01)
    monkeypatch.setattr(progress, "LOG_QUIET", 0.02)
    out = io.StringIO()
    with (
        pytest.raises(KeyboardInterrupt),
        Stages(["solve"], show=True, stream=out, tty=False) as stages,
    ):
        stages.start("solve")
        raise KeyboardInterrupt
    ended = out.getvalue()
    time.sleep(0.1)
    assert out.getvalue() == ended
    assert not [t for t in threading.enumerate() if t.name == "progress"]

    class Closed(io.StringIO):
        def write(self, text):
            raise BrokenPipeError("the reader went")

    raised = []
    monkeypatch.setattr(threading, "excepthook", raised.append)
    stages = Stages(["solve"], show=True, stream=Closed(), tty=False)
    stages.__enter__()
    stages._running = True  # a stage under way, started before the pipe closed
    time.sleep(0.1)
    assert not stages._ticker.is_alive() and not raised
    stages.close()


def test_a_terminal_line_goes_on_while_the_work_tells_nothing(monkeypatch):
    """On a terminal the line is redrawn every TICK seconds without any work told; the
    display's thread ends with it."""
    import threading
    import time

    monkeypatch.setattr(progress, "TICK", 0.01)
    out = io.StringIO()
    with Stages(["solve"], show=True, stream=out, tty=True) as stages:
        stages.start("solve")
        time.sleep(0.3)
        redrawn = out.getvalue().count("\rruimtepuzzel [1/1] solve (0 s)")
        stages.done()
    assert redrawn >= 5
    assert not [t for t in threading.enumerate() if t.name == "progress"]


@pytest.mark.parametrize(
    "gaining, expected",
    [
        # National 100 m: the cells free before the first LP, then the counts after each LP
        # (it ended after the fourth).
        ([538760, 36094], 5),
        ([538760, 36094, 2085], 5),
        ([538760, 36094, 2085, 2], 4),
        # National 250 m: the count fell to none, then rose where a price met its box.
        ([82575, 32013], 12),
        ([82575, 32013, 14394], 14),
        ([82575, 32013, 14394, 0], 3),
        ([82575, 32013, 14394, 0, 3604], None),
        ([82575, 32013, 14394, 0, 3604, 17], 6),
        # National 25 m: the first LP took 87 s; the budget alone said "at most 56 min".
        ([9061160, 483567], 6),
        ([9061160, 483567, 642], 3),
        ([9, 5, 1], 3),
        ([100, 100], None),
        ([5, 9, 10], None),
    ],
)
def test_the_repair_expects_its_end_from_how_fast_its_count_falls(gaining, expected):
    from engine.solve.fast import expected_repairs

    done = len(gaining) - 1
    assert expected_repairs(done, gaining, 40) == expected
    bounded = expected_repairs(done, gaining, done + 1)
    assert bounded is None or done <= bounded <= done + 1


def test_a_terminal_gets_one_line_redrawn(monkeypatch):
    monkeypatch.setattr(progress, "REDRAW_EVERY", 0.0)
    out = io.StringIO()
    with Stages(["compile", "solve"], show=True, stream=out, tty=True) as stages:
        stages.start("compile")
        advance(1, 2, "option values")
        advance(2, 2, "option values")
        stages.done()
        stages.start("solve")
        assert "\n" not in out.getvalue()
        stages.done()
    text = out.getvalue()
    assert text.endswith("\n") and text.count("\n") == 1
    assert "\rruimtepuzzel [1/2] compile: 2/2 option values, 0 s left" in text
    assert text.rstrip().endswith("[2/2] solve: done")


def test_nothing_shown_when_progress_is_off(every_line):
    out = io.StringIO()
    with Stages(["grid"], show=False, stream=out, tty=False) as stages:
        stages.start("grid")
        advance(1, 4, "tiles")
        stages.done()
    assert out.getvalue() == ""
    assert "grid" in stages.timings


@pytest.fixture(scope="module")
def grid():
    from engine.grid import open_grid

    return open_grid("nl", resolution=1000)


def _stage_lines(err: str) -> list[str]:
    return re.findall(r"^ruimtepuzzel: \[\d/\d\] (\w+): started$", err, flags=re.M)


def test_a_run_shows_every_stage_in_order_with_the_analysis_its_own(
    grid, tmp_path, capsys, every_line
):
    run(NATIONAL, tmp_path / "out", grid=grid, analysis="quick")
    err = capsys.readouterr().err  # not a terminal: lines
    assert _stage_lines(err) == STAGES
    assert "[8/8] manifest: done" in err
    # The solver's rounds, with what is left of them.
    assert re.search(
        r"\[4/8\] solve: \d+/\d+ (price evaluations|repair LPs).*, (at most|about) .+ left", err
    )
    # The repair says how many cells still gain, which falls to none as it settles, and
    # from how fast it falls when it expects to end.
    gaining = re.findall(r"\[4/8\] solve: \d+/\d+ repair LPs \(([\d,]+) cells still gain\)", err)
    assert gaining and gaining[-1] == "0"
    assert re.search(r"\[4/8\] solve: \d+/\d+ repair LPs \(.+\), about .+ left", err)
    # Every stage's long work counts: the cells given values and the rules applied, the
    # repair said before its first LP (minutes at 25 m), the write stage's outputs.
    assert re.search(r"\[3/8\] compile: [\d,]+/[\d,]+ cells valued, .+ left", err)
    assert re.search(r"\[3/8\] compile: (\d+)/\1 rules applied, 0 s left", err)
    assert re.search(r"\[4/8\] solve: 0/40 repair LPs \([\d,]+ cells free\)", err)
    assert "[6/8] write: 4/4 core outputs, 0 s left" in err
    # The report's bound of the minimum patches is part of its work, not a count of its own.
    assert not re.search(r"\[6/8\] write: .*rules priced", err)
    # The analysis's maps and page after its re-solves: a count of their own.
    assert "[7/8] analysis: 0/6 outputs written" in err
    assert "[7/8] analysis: 6/6 outputs written" in err


def test_a_run_without_the_analysis_has_no_such_stage(grid, tmp_path, capsys):
    run(NATIONAL, tmp_path / "out", grid=grid, analysis="off")
    err = capsys.readouterr().err
    assert _stage_lines(err) == [
        "config",
        "grid",
        "compile",
        "solve",
        "compact",
        "write",
        "manifest",
    ]
    assert "[7/7] manifest: done" in err


def test_a_run_with_progress_off_prints_nothing(grid, tmp_path, capsys, every_line):
    run(NATIONAL, tmp_path / "out", grid=grid, analysis="quick", progress=False)
    assert capsys.readouterr().err == ""


def test_a_muted_thread_shows_nothing_while_the_others_do(every_line):
    import threading

    out = io.StringIO()
    with Stages(["analysis"], show=True, stream=out, tty=False) as stages:
        stages.start("analysis")

        def inner():
            with progress.muted():
                advance(1, 40, "repair LPs")
            advance(1, 2, "rules re-solved")

        worker = threading.Thread(target=inner)
        worker.start()
        worker.join()
        with progress.muted():
            advance(2, 40, "repair LPs")
        advance(2, 2, "rules re-solved")
    shown = out.getvalue()
    assert "repair LPs" not in shown
    assert "1/2 rules re-solved" in shown and "2/2 rules re-solved" in shown


def test_a_tally_made_where_progress_is_muted_stays_muted_in_its_workers(every_line):
    """The report's bound of the minimum patches prices its rule in a pool's thread: made
    in a muted thread, the count shows nothing from there either."""
    from concurrent.futures import ThreadPoolExecutor

    out = io.StringIO()
    with Stages(["write"], show=True, stream=out, tty=False) as stages:
        stages.start("write")
        with progress.muted():
            quiet = progress.Tally([1.0, 2.0], "rules priced")
        shown = progress.Tally([1.0], "exchanges verified")

        def finish(tally, index):
            with tally.piece(index):
                pass

        with ThreadPoolExecutor(2) as pool:
            list(pool.map(finish, [quiet, quiet, shown], [0, 1, 0]))
    text = out.getvalue()
    assert "rules priced" not in text
    assert "1/1 exchanges verified" in text


def test_the_analysis_counts_its_re_solves_not_their_rounds(every_line):
    """Two re-solves at a time, each with its own price evaluations and repair LPs: the
    line counts the re-solves."""
    import numpy as np

    import engine
    from engine.analysis import exchange_suggestions, rule_costs
    from engine.synthetic import allocation_problem

    p = allocation_problem(600, 5, 4, seed=3)
    sol = engine.solve(p, method="fast")
    relaxations = {}
    for o in range(1, p.n_options):
        lifted = p.allowed.copy()
        lifted[:, o] = True
        relaxations[f"lift option {o}"] = lifted
    out = io.StringIO()
    with Stages(["analysis"], show=True, stream=out, tty=False) as stages:
        stages.start("analysis")
        costs = rule_costs(p, sol, relaxations, method="fast", workers=2)
        exchanges = exchange_suggestions(p, sol, method="fast", max_suggestions=3, workers=2)
        stages.done()
    work = [line.split(": ", 2)[2] for line in out.getvalue().splitlines()[1:-1]]
    re_solved = sum(c["method"] == "re-solve" for c in costs)
    assert re_solved >= 2 and exchanges
    kinds = r"\d+/\d+ (rules priced|rules re-solved|exchanges verified)"
    assert all(re.match(kinds, w) for w in work), work
    # Once a re-solve is done the line says the time left from the pieces' own pace.
    assert all(re.search(r", about .* left", w) for w in work if not w.startswith("0/")), work
    assert sum(w.startswith(f"{re_solved}/{re_solved} rules re-solved") for w in work) == 1
    assert np.isfinite([c["gain"] for c in costs]).all()


def test_pieces_finished_by_many_threads_count_up(every_line):
    import threading

    out = io.StringIO()
    with Stages(["analysis"], show=True, stream=out, tty=False) as stages:
        stages.start("analysis")
        tally = progress.Tally([1.0] * 400, "rules re-solved", workers=8)

        def finish(pieces):
            for index in pieces:
                with tally.piece(index):
                    pass

        threads = [threading.Thread(target=finish, args=(range(k, 400, 8),)) for k in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    counts = [int(c) for c in re.findall(r"(\d+)/400 rules re-solved", out.getvalue())]
    assert counts == list(range(0, 401))


@pytest.fixture
def clock(monkeypatch):
    """The seconds the display and a Tally read, set by the test."""
    now = [0.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: now[0])
    return now


def _shown_left(out: io.StringIO) -> str:
    return re.findall(r"rules re-solved, (.*) left", out.getvalue())[-1]


def test_pieces_of_different_sizes_tell_the_time_left_by_their_costs(every_line, clock):
    """Two workers on two large re-solves and four small ones: when the first large one
    is done after 20 s, the other is done too by its pace and the small ones take 2 s each,
    two at a time: 4 s left, where the count's rate says 1 min 40 s."""
    out = io.StringIO()
    with Stages(["analysis"], show=True, stream=out, tty=False) as stages:
        stages.start("analysis")
        tally = progress.Tally([10, 10, 1, 1, 1, 1], "rules re-solved", workers=2)
        first, second = tally.piece(0), tally.piece(1)
        first.__enter__()
        second.__enter__()
        clock[0] = 20.0
        first.__exit__(None, None, None)
        assert _shown_left(out) == "about 4 s"
        # A small one in 2 s: 2 s a cost. The other large one is late (22 s of 20): its
        # end is not known; the three small ones left, 2 s each, end 4 s from now on two.
        with tally.piece(2):
            clock[0] = 22.0
        assert _shown_left(out) == "about 4 s"
        clock[0] = 30.0
        second.__exit__(None, None, None)
        # 52 s for 21 of cost: the three small ones at 2.5 s each, two at a time.
        assert _shown_left(out) == "about 5 s"


def test_a_large_piece_beside_small_ones_leaves_its_own_rest(every_line, clock):
    """A large piece on one worker, the small ones one after the other on the other: the
    time left is what the large one has left, and it falls as the small ones finish (shared
    over the two workers it said 12, 10 and 8 s, then 12 s)."""
    out = io.StringIO()
    with Stages(["analysis"], show=True, stream=out, tty=False) as stages:
        stages.start("analysis")
        tally = progress.Tally([10, 1, 1, 1, 1], "rules re-solved", workers=2)
        large = tally.piece(0)
        large.__enter__()
        shown = []
        for index in range(1, 5):
            with tally.piece(index):
                clock[0] += 2.0
            shown.append(_shown_left(out))
        assert shown == ["about 18 s", "about 16 s", "about 14 s", "about 12 s"]
        large.__exit__(None, None, None)


def test_pieces_of_one_size_one_at_a_time_tell_the_count_s_rate(every_line, clock):
    out = io.StringIO()
    with Stages(["analysis"], show=True, stream=out, tty=False) as stages:
        stages.start("analysis")
        tally = progress.Tally([3.0] * 4, "rules re-solved")
        for index in range(3):
            with tally.piece(index):
                clock[0] += 10.0
            assert _shown_left(out) == f"about {10 * (3 - index)} s"


def test_a_piece_that_fails_is_neither_counted_nor_under_way(every_line, clock):
    out = io.StringIO()
    with Stages(["analysis"], show=True, stream=out, tty=False) as stages:
        stages.start("analysis")
        tally = progress.Tally([1.0, 1.0, 1.0], "rules re-solved", workers=2)
        with pytest.raises(RuntimeError, match="infeasible"), tally.piece(0):
            clock[0] = 5.0
            raise RuntimeError("infeasible")
        with tally.piece(1):
            clock[0] = 10.0
        # One done in 5 s: piece 2 is left (piece 0 failed: it will not run), none under way.
        assert "1/3 rules re-solved, about 5 s left" in out.getvalue()


@pytest.mark.parametrize("costs", [[1.0, 0.0], [1.0, -2.0], [float("inf")], [float("nan")]])
def test_a_tally_refuses_a_cost_that_is_not_positive_and_finite(costs):
    with pytest.raises(ValueError, match="cost must be > 0 and finite"):
        progress.Tally(costs, "rules re-solved")


def test_a_countdown_that_runs_out_says_the_work_takes_longer():
    """Between two counts the time left counts down; once it has run out with work still to
    do, the line says the work takes longer than estimated (not "0 s left" for minutes),
    for a rate's estimate and for the work's own; all work done is "0 s left"."""
    rate = _Work("uses compacted", 12, 14, False, None, None, 0.0, 0, 120.0)
    assert rate.left(130.0) == "12/14 uses compacted, 10 s left"
    assert rate.left(141.0) == "12/14 uses compacted, longer than estimated"
    own = _Work("rules re-solved", 1, 3, False, None, None, 0.0, 0, 10.0, told_left=5.0)
    assert own.left(12.0) == "1/3 rules re-solved, about 3 s left"
    assert own.left(16.0) == "1/3 rules re-solved, longer than estimated"
    done = _Work("tiles", 4, 4, False, None, None, 0.0, 0, 10.0)
    assert done.left(30.0) == "4/4 tiles, 0 s left"
