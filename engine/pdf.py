"""Printing a page to PDF through headless Chromium, where one is installed.

The page's own print stylesheet (A4, a section per page, maps whole) does the layout; Chromium
only prints. No browser is downloaded: a machine without one gets a clear error that says how
to install it (Debian: ``apt-get install chromium``) or to print from any browser.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

from engine.errors import RuimtepuzzelError

log = logging.getLogger(__name__)

__all__ = ["find_chromium", "print_pdf", "NoChromium"]

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT_S = 120


class NoChromium(RuimtepuzzelError):
    """No headless Chromium on this machine."""


def find_chromium() -> str:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    raise NoChromium(
        "--pdf needs headless Chromium and none is on PATH ("
        + ", ".join(CANDIDATES)
        + "); install it (Debian/Ubuntu: apt-get install chromium) or open report.html in a "
        "browser and print it: the page has an A4 print stylesheet"
    )


def print_pdf(html: Path, pdf: Path) -> Path:
    """Print ``html`` to ``pdf`` (A4, the page's print stylesheet); returns ``pdf``."""
    chromium = find_chromium()
    html, pdf = Path(html).resolve(), Path(pdf).resolve()
    cmd = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-pdf-header-footer",
        f"--print-to-pdf={pdf}",
        html.as_uri(),
    ]
    log.debug("printing: %s", " ".join(cmd))
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
    if done.returncode != 0 or not pdf.is_file() or pdf.stat().st_size == 0:
        raise RuimtepuzzelError(
            f"{html}: Chromium could not print it to {pdf} (exit {done.returncode}): "
            f"{done.stderr.strip()[-300:]}"
        )
    return pdf
