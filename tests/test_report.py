"""The reproduction report (issue 11, begun): claims judged from the numbers of real sweeps."""
import re
import shutil
import subprocess

import pandas as pd

import analysis
from analysis.report import VERDICT_WORDS, median_t_gen
from conftest import run_grok


def test_median_t_gen_counts_runs_that_never_generalised_as_latest():
    members = pd.DataFrame({"t_gen": [100, None, 300]})
    assert median_t_gen(members) == 300
    assert median_t_gen(pd.DataFrame({"t_gen": [100, None, None]})) == float("inf")


def test_report_of_a_quick_headline_sweep_matches_its_tables(tmp_path):
    storage = tmp_path / "s"
    sweep = run_grok("sweep", "headline", "--quick", "--seeds", "0,1", "--storage", storage)
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    report = run_grok("report", storage)
    assert report.returncode == 0, report.stderr[-3000:]
    page = (storage / "report" / "index.html").read_text()
    for image in re.findall(r'<img src="([^"]+)"', page):
        assert (storage / "report" / image).stat().st_size > 10_000
    loaded = analysis.load(str(storage / "headline-quick"))
    ticket, dense = median_t_gen(loaded.members), median_t_gen(loaded.base)
    held = ticket * 10 <= dense
    row = re.search(r'<td><a href="#headline">headline</a></td><td>.*?</td>'
                    r'<td class="verdict">(.*?)</td>', page).group(1)
    assert f">{VERDICT_WORDS[held][0]}<" in row  # the verdict follows from the numbers
    assert f"all: ticket median t_gen</td><td>{round(ticket, 1)}" in page
    assert "not run" in page  # the studies this storage lacks are listed, not drawn
    assert "headline" in report.stdout and "report:" in report.stdout


def test_reproduce_runs_the_named_studies_then_skips_them_and_writes_the_report(tmp_path):
    storage = tmp_path / "r"
    first = run_grok("reproduce", "--quick", "--only", "headline,text", "--storage", storage)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "reproduce [1/2] headline: running" in first.stderr
    assert (storage / "report" / "index.html").exists() and "report:" in first.stdout
    again = run_grok("reproduce", "--quick", "--only", "headline,text", "--storage", storage)
    assert again.returncode == 0 and again.stderr.count("finished before, skipped") == 2
    bad = run_grok("reproduce", "--only", "headlin", "--storage", storage)
    assert bad.returncode == 2 and "did you mean 'headline'" in bad.stderr
    _open_in_chromium(storage / "report", tmp_path / "report.png")


CHECKER = """<!doctype html><html><body><iframe id="f" src="index.html" width="1200" height="900">
</iframe><pre id="out">pending</pre><script>
document.getElementById("f").onload = function () {
  var images = this.contentDocument.images, broken = [];
  for (var i = 0; i < images.length; i++)
    if (!images[i].complete || images[i].naturalWidth === 0) broken.push(images[i].src);
  document.getElementById("out").textContent = images.length + " images, broken: " +
    JSON.stringify(broken);
};</script></body></html>"""


def _open_in_chromium(folder, screenshot):
    """The page in headless Chromium: no console message, no image that failed to load, and a
    screenshot. Images are checked from a page beside it that loads it in a frame."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "headless Chromium is needed: apt-get install chromium (.ci/run does)"
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu"]
    shot = subprocess.run([*common, "--enable-logging=stderr", "--v=0", "--window-size=1200,3000",
                           f"--screenshot={screenshot}", f"file://{folder / 'index.html'}"],
                          capture_output=True, text=True, timeout=120)
    assert shot.returncode == 0 and screenshot.stat().st_size > 50_000, shot.stderr[-2000:]
    assert "CONSOLE" not in shot.stderr, [l for l in shot.stderr.splitlines() if "CONSOLE" in l]
    (folder / "_check.html").write_text(CHECKER)
    dom = subprocess.run([*common, "--allow-file-access-from-files", "--virtual-time-budget=5000",
                          "--dump-dom", f"file://{folder / '_check.html'}"],
                         capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="out">(\d+) images, broken: (.*?)</pre>', dom.stdout)
    assert found and int(found.group(1)) >= 1 and found.group(2) == "[]", dom.stdout[-2000:]
