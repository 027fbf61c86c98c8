"""What the compaction stage adds to a solved run's resident memory, and where it peaks.

The national config compiled and solved at a resolution, then the compaction alone
(:func:`engine.compactness.cluster`) with a thread sampling VmRSS and the main thread's
stack every 10 ms: the peak over the solved run's memory, and the places of the highest
samples, one per place in the code.

    python benchmarks/compaction_memory.py --resolution 100
"""

from __future__ import annotations

import argparse
import gc
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rss_stacks import resident_kb, where  # noqa: E402

import engine  # noqa: E402
from engine.compactness import cluster  # noqa: E402
from engine.run import prepare  # noqa: E402

PERIOD = 0.01  # seconds between samples
SHOWN = 12  # distinct places printed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="national")
    parser.add_argument("--resolution", type=float, default=100)
    args = parser.parse_args()

    compiled, _ = prepare(args.config, resolution=args.resolution)
    solution = engine.solve(compiled.problem)
    gc.collect()
    before = resident_kb()
    samples, done = [], threading.Event()
    main_thread = threading.main_thread().ident

    def sample():
        while not done.is_set():
            samples.append((resident_kb(), where(sys._current_frames().get(main_thread))))
            time.sleep(PERIOD)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    clock = time.perf_counter()
    cluster(compiled, solution)
    seconds = time.perf_counter() - clock
    done.set()
    sampler.join()
    cells = compiled.problem.n_cells
    peak = max(kb for kb, _ in samples) - before
    print(
        f"{cells:,} cells; the solved run {before:,} kB; the compaction {seconds:.1f} s, "
        f"+{peak / 1e3:,.0f} MB at its peak ({peak * 1e3 / cells:.0f} bytes a cell)"
    )
    seen = set()
    for kb, stack in sorted(samples, key=lambda s: -s[0]):
        if stack[:1] and stack[0] not in seen:
            seen.add(stack[0])
            print(f"+{(kb - before) / 1e3:8,.0f} MB  {' < '.join(stack[:5])}")
        if len(seen) >= SHOWN:
            break


if __name__ == "__main__":
    main()
