"""report.html of a real 1000 m run in the system's headless Chromium: no console errors, no
element wider than the page (on screen and on A4), every image loaded, lang="nl"; the print
PDF; run names cannot inject markup."""

from __future__ import annotations

import base64
import json
import shutil

import pytest
from chromium import Chromium

from engine.html import render_report
from engine.outputs import verify_run_folder
from engine.pdf import NoChromium, find_chromium
from engine.report import rewrite_pages
from engine.run import run

pytestmark = pytest.mark.skipif(
    shutil.which("chromium") is None, reason="no chromium (CI installs Debian's)"
)

# Elements wider than the page, images not loaded, the page's language: one JSON answer.
PROBE = """JSON.stringify({
  lang: document.documentElement.lang,
  width: document.documentElement.clientWidth,
  scroll: document.documentElement.scrollWidth,
  wide: [...document.querySelectorAll('body *')].filter(
      e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1
  ).map(e => e.tagName + '.' + e.className + ':' + e.textContent.slice(0, 40)).slice(0, 3),
  images: document.images.length,
  broken: [...document.images].filter(i => !i.complete || i.naturalWidth === 0).length,
})"""
A4_TEXT_WIDTH_PX = 690  # 210 mm - 2 x 14 mm at 96 dpi


@pytest.fixture(scope="module")
def national(tmp_path_factory):
    out = tmp_path_factory.mktemp("national") / "run"
    run("national", out, resolution=1000, progress=False, analysis="quick")
    return out


@pytest.fixture(scope="module")
def browser():
    chromium = Chromium()
    yield chromium
    chromium.close()


def test_report_in_chromium_on_screen_and_on_a4(national, browser):
    session = browser.open((national / "report.html").as_uri())
    screen = json.loads(browser.evaluate(session, PROBE))
    assert screen["lang"] == "nl"
    assert screen["images"] >= 5 and screen["broken"] == 0
    assert screen["scroll"] <= screen["width"] and not screen["wide"], screen
    browser.send("Emulation.setEmulatedMedia", session, media="print")
    browser.send(
        "Emulation.setDeviceMetricsOverride",
        session,
        width=A4_TEXT_WIDTH_PX,
        height=1000,
        deviceScaleFactor=1,
        mobile=False,
    )
    paper = json.loads(browser.evaluate(session, PROBE))
    assert paper["scroll"] <= paper["width"] and not paper["wide"], paper
    pdf = base64.b64decode(
        browser.send("Page.printToPDF", session, paperWidth=8.27, paperHeight=11.69)["data"]
    )
    assert pdf[:5] == b"%PDF-" and pdf.count(b"/Type /Page") > 5
    assert browser.errors() == []


def test_a_run_name_cannot_inject_markup(national, tmp_path):
    report = json.loads((national / "report.json").read_text())
    manifest = json.loads((national / "manifest.json").read_text())
    report["name"] = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    manifest["config"]["path"] = '"><script>alert(2)</script>'
    html = render_report(report, manifest, national, "nl")
    assert (
        "<script" not in html
        and "onerror=alert" not in html.replace("&#34;", '"').split("&lt;img")[0]
    )
    assert "&lt;script&gt;" in html


def test_report_command_writes_english_pages_and_a_pdf_and_keeps_the_folder_whole(
    national, tmp_path
):
    import shutil as sh

    folder = tmp_path / "copy"
    sh.copytree(national, folder)
    written = rewrite_pages(folder, lang="en", pdf=True)
    assert {"report.html", "summary.md", "allocation.qml", "report.pdf"} <= set(written)
    verify_run_folder(folder)  # every file listed with its sha256, the pdf included
    assert '<html lang="en">' in (folder / "report.html").read_text()
    assert (folder / "report.pdf").read_bytes()[:5] == b"%PDF-"


def test_no_chromium_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(NoChromium, match="apt-get install chromium"):
        find_chromium()
