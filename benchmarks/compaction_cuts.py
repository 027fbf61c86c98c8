"""Where the compaction's time goes: its minimum cuts, step by step of the count's search.

The ruimtepuzzel CLI with every minimum cut of the compaction timed
(:meth:`engine.solve.compact._CutGraph.solve`, PyMaxflow's Boykov-Kolmogorov), grouped by
the search it belongs to (:func:`engine.solve.compact._counted_cut`: one per cell group
whose count is held; the first cut is over the group's whole band, each next one over the
cells still open). Printed at the end: the cuts' share of the run's compaction, the time per
step of the searches in microseconds a node, and the slowest searches cut by cut (nodes,
cells taken, offset, seconds).

    python benchmarks/compaction_cuts.py -- --quiet run national --resolution 100 \\
        --analysis off --out OUT
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

from engine.solve import compact

SLOWEST = 5  # searches printed cut by cut
STEPS = 8  # steps of a search shown apart; later ones are summed in the last row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cli", nargs=argparse.REMAINDER, help="-- and the CLI's arguments")
    args = parser.parse_args()
    cli = args.cli[1:] if args.cli[:1] == ["--"] else args.cli

    searches, free_cuts = [], []
    searching = False  # a cut belongs to the search running, else it is a free group's
    solve, counted_cut = compact._CutGraph.solve, compact._counted_cut

    def timed_solve(graph, offset):
        clock = time.perf_counter()
        labels = solve(graph, offset)
        cut = (graph.n, int(labels.sum()), offset, time.perf_counter() - clock)
        (searches[-1]["cuts"] if searching else free_cuts).append(cut)
        return labels

    def timed_search(graph, need, reach):
        nonlocal searching
        searches.append({"nodes": graph.n, "need": need, "cuts": []})
        searching = True
        try:
            return counted_cut(graph, need, reach)
        finally:
            searching = False

    compact._CutGraph.solve, compact._counted_cut = timed_solve, timed_search
    from engine.cli import main as run_cli

    clock = time.perf_counter()
    try:
        run_cli(cli)
    finally:
        report(searches, free_cuts, time.perf_counter() - clock)


def report(searches: list[dict], free_cuts: list[tuple], seconds: float) -> None:
    cuts = [cut for s in searches for cut in s["cuts"]]
    searched, free = sum(c[3] for c in cuts), sum(c[3] for c in free_cuts)
    print(
        f"run {seconds:.1f} s; minimum cuts {searched + free:.1f} s: {len(cuts)} in "
        f"{len(searches)} count searches ({searched:.1f} s), {len(free_cuts)} free ({free:.1f} s)"
    )
    steps = defaultdict(lambda: [0, 0, 0.0])
    for s in searches:
        for step, (nodes, _, _, t) in enumerate(s["cuts"]):
            row = steps[min(step, STEPS)]
            row[0], row[1], row[2] = row[0] + 1, row[1] + nodes, row[2] + t
    print("step  cuts        nodes  seconds  us/node")
    for step in sorted(steps):
        n, nodes, t = steps[step]
        label = f"{step + 1}" if step < STEPS else f"{STEPS + 1}+"
        print(f"{label:>4} {n:5d} {nodes:12,d} {t:8.1f} {1e6 * t / max(nodes, 1):8.2f}")
    for s in sorted(searches, key=lambda s: -sum(c[3] for c in s["cuts"]))[:SLOWEST]:
        print(f"search over {s['nodes']:,} nodes for {s['need']:,} cells:")
        for nodes, taken, offset, t in s["cuts"]:
            print(f"    {nodes:10,d} nodes -> {taken:10,d} in at {offset:.12g}: {t:.2f} s")


if __name__ == "__main__":
    main()
