"""The README's pictures of report.html, made with the system's headless Chromium over the
DevTools pipe (``tests/chromium.py``) and nothing else:

- ``docs/report.png``: the first screen of the page;
- ``docs/report-print.png``: the first two pages of the page printed to A4 (its print
  stylesheet, as ``ruimtepuzzel report DIR --pdf`` prints it), as Chromium's own PDF viewer
  shows them: the verdict table goes on on page 2 under its repeated header.

    python docs/screenshots.py out/national    # a finished run folder (1000 m is enough)
"""

from __future__ import annotations

import base64
import sys
import tempfile
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent / "tests"))

from chromium import Chromium  # noqa: E402

from engine.pdf import print_pdf  # noqa: E402

SCREEN = (1100, 900)
PRINT = (900, 2440)  # two A4 pages fitted to the width, one above the other
VIEWER_SETTLE_S = 4.0  # the PDF viewer draws its pages after the load event


def _shot(browser: Chromium, url: str, size: tuple[int, int], settle: float = 0.0) -> bytes:
    session = browser.open(url)
    browser.send(
        "Emulation.setDeviceMetricsOverride",
        session,
        width=size[0],
        height=size[1],
        deviceScaleFactor=1,
        mobile=False,
    )
    time.sleep(settle)
    return base64.b64decode(browser.send("Page.captureScreenshot", session, format="png")["data"])


def main(folder: str) -> None:
    page = Path(folder).resolve() / "report.html"
    browser = Chromium()
    try:
        (DOCS / "report.png").write_bytes(_shot(browser, page.as_uri(), SCREEN, 0.5))
        with tempfile.TemporaryDirectory() as tmp:
            pdf = print_pdf(page, Path(tmp) / "report.pdf")
            url = pdf.as_uri() + "#toolbar=0&navpanes=0&view=FitH"
            (DOCS / "report-print.png").write_bytes(_shot(browser, url, PRINT, VIEWER_SETTLE_S))
    finally:
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1])
