"""Where a run's resident memory peaks: the ruimtepuzzel CLI with a sampler beside it.

Every 20 ms a thread reads the process's VmRSS and the main thread's stack. At the end the
samples with the most resident memory are printed, one per distinct place in the code, and
with ``--timeline FILE`` every fifth sample (time, GB, the innermost frames) is written to
FILE. Unlike memray, it sees the pages of a file the kernel maps (``--memory``'s paged
values), and a spike shorter than ``rsswatch.sh``'s second.

    python benchmarks/rss_stacks.py --timeline OUT.timeline -- --quiet run national \\
        --resolution 25 --analysis off --memory 8GB --out OUT
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import traceback
from pathlib import Path

PERIOD = 0.02  # seconds between samples
SHOWN = 25  # distinct places printed


def resident_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def where(frame) -> list[str]:
    """The innermost eight frames, innermost first, as file:line:function."""
    stack = traceback.extract_stack(frame)[-8:] if frame is not None else []
    return [f"{Path(f.filename).name}:{f.lineno}:{f.name}" for f in reversed(stack)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeline", type=Path, help="write every fifth sample here")
    parser.add_argument("cli", nargs=argparse.REMAINDER, help="-- and the CLI's arguments")
    args = parser.parse_args()
    cli = args.cli[1:] if args.cli[:1] == ["--"] else args.cli

    samples, done = [], threading.Event()
    main_thread = threading.main_thread().ident

    def sample():
        while not done.is_set():
            frame = sys._current_frames().get(main_thread)
            samples.append((time.time(), resident_kb(), where(frame)))
            time.sleep(PERIOD)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    from engine.cli import main as run_cli

    try:
        run_cli(cli)
    finally:
        done.set()
        sampler.join()
    if args.timeline is not None:
        with args.timeline.open("w") as out:
            for when, kb, stack in samples[::5]:
                out.write(f"{time.strftime('%H:%M:%S', time.localtime(when))} {kb / 1e6:.2f} "
                          f"{' < '.join(stack[:3])}\n")  # fmt: skip
    seen = set()
    for when, kb, stack in sorted(samples, key=lambda s: -s[1]):
        if tuple(stack[:4]) in seen:
            continue
        seen.add(tuple(stack[:4]))
        clock = time.strftime("%H:%M:%S", time.localtime(when))
        print(f"{clock} {kb / 1e6:.2f} GB", " < ".join(stack), file=sys.stderr)
        if len(seen) == SHOWN:
            break


if __name__ == "__main__":
    main()
