"""The reproduction report and grok reproduce: claims judged from the numbers of real sweeps."""
import html
import json
import re
import shutil
import subprocess

import pandas as pd

import analysis
import analysis.claims
import analysis.report
from analysis.report import VERDICT_WORDS
from analysis.results import median_t_gen
from conftest import TINY_TICKET


def test_median_t_gen_counts_runs_that_never_generalised_as_latest():
    members = pd.DataFrame({"t_gen": [100, None, 300]})
    assert median_t_gen(members) == 300
    assert median_t_gen(pd.DataFrame({"t_gen": [100, None, None]})) == float("inf")


def _verdict_row(page: str, anchor: str) -> str:
    return re.search(rf'<td><a href="#{anchor}">.*?</a></td><td>.*?</td>'
                     r'<td class="verdict">(.*?)</td>', page).group(1)


def _expected_headline_verdict(loaded) -> str:
    """What the headline claim's verdict must be, from the parquet tables: at every rate the
    ticket median t_gen at most a tenth of the dense median (a rate where neither generalised
    cannot tell)."""
    never, dense = float("inf"), median_t_gen(loaded.base)
    parts = [None if t == dense == never else t * 10 <= dense
             for t in (median_t_gen(part) for _, part in loaded.members.groupby("pruning_rate"))]
    return VERDICT_WORDS[False if False in parts else None if None in parts else True][0]


def test_reproduce_interrupted_then_rerun_finishes_and_its_report_matches_the_tables(tmp_path,
                                                                                  grok):
    """grok reproduce --quick --only headline,critical_ratio_search through local Ray: Ctrl-C
    in the first study exits 130, a rerun continues it (the dense runs it finished are kept),
    runs the Optuna search and writes the report;
    the page's verdicts follow from the parquet / estimate tables and it loads in Chromium."""
    import json
    import os
    import signal
    import sys
    import time

    storage = tmp_path / "r"
    args = ["reproduce", "--quick", *TINY_TICKET, "--only", "headline,critical_ratio_search",
            "--storage", storage]
    log = tmp_path / "first.log"
    with open(log, "w") as err:
        driver = subprocess.Popen([sys.executable, "-m", "sweeps.cli", *map(str, args)],
                                  stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
                                  env={**os.environ, "OMP_NUM_THREADS": "1"})
        deadline = time.time() + 300
        while time.time() < deadline and driver.poll() is None and not any(
                storage.glob("headline-quick*/*/result.json")):
            time.sleep(0.1)  # until headline's trials have started (their result files exist;
            # waiting for a first report raced the engine: the trials could be done by then)
        os.killpg(driver.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
        driver.wait(timeout=300)
    first = log.read_text()
    assert driver.returncode == 130, first[-3000:]
    assert "reproduce: 0 done, running headline, 1 left" in first
    assert "rerun the same command to continue" in first

    again = grok(*args)  # the rest in this process, on the shared Ray
    assert again.returncode == 0, again.stderr[-3000:]
    assert "reproduce: 0 done, running headline" in again.stderr  # unfinished: run again
    assert "reproduce: 1 done, running critical_ratio_search, 0 left" in again.stderr
    assert "report:" in again.stdout
    times = json.loads((storage / "reproduce.json").read_text())
    assert set(times) == {"headline", "critical_ratio_search"}

    page = (storage / "report" / "index.html").read_text()
    loaded = analysis.load(str(storage / "headline-quick"))
    assert f">{_expected_headline_verdict(loaded)}<" in _verdict_row(page, "fig-1-2a-headline")
    several_rates = loaded.members["pruning_rate"].nunique() > 1  # one rate: a line called "all"
    for rate, part in loaded.members.groupby("pruning_rate"):
        shown = "never" if median_t_gen(part) == float("inf") else round(median_t_gen(part), 1)
        label = f"k={rate:g}" if several_rates else "all"
        assert f"{label}: ticket median t_gen</td><td>{shown}<" in page
    estimate = json.loads((storage / "critical_ratio_search-quick" / "estimate.json").read_text())
    upper = estimate["estimate"]["upper"]
    held = None if upper["status"] != "ok" else 0.7 <= upper["estimate"] <= 0.9
    searched = analysis.critical_ratio.load(str(storage / "critical_ratio_search-quick"))
    if not searched.members["generalised"].astype(bool).any():
        held = False  # no ticket generalised at any rate: no window, so no edge in the band
    assert f">{VERDICT_WORDS[held][0]}<" in _verdict_row(page, "fig-16a-critical-ratio-search")
    assert "not run" in _verdict_row(page, "fig-5b-pai")  # unrun studies listed, not drawn
    assert "Size: quick" in page and "full size" in page

    done = grok(*args)  # everything finished: skipped without starting Ray
    assert done.returncode == 0 and done.stderr.count("finished before (skipped)") == 2
    bad = grok("reproduce", "--only", "headlin", "--storage", storage)
    assert bad.returncode == 2 and "did you mean 'headline'" in bad.stderr
    _open_in_chromium(storage / "report", tmp_path / "report.png")


def test_report_of_a_folder_without_sweeps_lists_every_claim_as_not_run(tmp_path, grok):
    empty = tmp_path / "nothing"
    empty.mkdir()
    result = grok("report", empty)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("not run") == len(analysis.claims.CLAIMS)
    missing = grok("report", tmp_path / "absent")
    assert missing.returncode == 2 and "no such folder" in missing.stderr
    assert "Traceback" not in missing.stderr


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


def test_reproduce_refuses_bad_input_before_any_work(tmp_path, grok):
    storage = tmp_path / "s"
    away = grok("reproduce", "--only", "headline", "--address", "127.0.0.1:9",
                "--storage", storage)
    assert away.returncode == 2 and "no Ray cluster reachable" in away.stderr, away.stderr
    setting = grok("reproduce", "--quick", "--set", "train.stepz=5", "--storage", storage)
    assert setting.returncode == 2 and "train.stepz" in setting.stderr, setting.stderr
    for result in (away, setting):
        assert "Traceback" not in result.stderr
    assert not storage.exists() or not any(storage.iterdir())  # nothing written


def test_a_mask_of_step_0_counts_as_a_non_grokking_ticket():
    from analysis.claims import grokking_beats_non_grokking
    from analysis.results import SweepResults

    members = pd.DataFrame({"prune_step": [0, 1000, 3000, 3000],
                            "base_generalised": [None, False, True, True],
                            "t_gen": [None, 2500, 400, 600]})
    empty = pd.DataFrame()
    verdict = grokking_beats_non_grokking(SweepResults(members, empty, empty, empty))
    assert verdict.held is True
    assert verdict.numbers["tickets (grokking / non-grokking)"] == "2 / 2"
    assert verdict.numbers["non-grokking tickets: median t_gen"] == "never"
    members["t_gen"] = [300, 2500, None, None]  # the grokking tickets never generalised
    assert grokking_beats_non_grokking(SweepResults(members, empty, empty, empty)).held is False


def test_the_report_finds_one_critical_ratio_search_per_architecture(tmp_path):
    """App. E's claim reads every architecture's search: the MLP's as the study
    critical_ratio_search, the transformer's beside it; a restarted search's kept copy and a
    quick version beside a full one do not count."""
    from analysis.report import _searches, find_sweeps

    def search(name, model=None):
        folder = tmp_path / name
        folder.mkdir()
        template = {"model": {"name": model}} if model else {}
        (folder / "critical.json").write_text(json.dumps({"template": template}))

    search("critical_ratio_search")
    search("critical_ratio_search-quick")
    search("critical_ratio_search-transformer", "transformer")
    search("critical_ratio_search-transformer.restarted-1", "transformer")
    search("crit-seeds-5-6", "transformer")  # newer, but not under the default name
    found = find_sweeps(str(tmp_path))
    assert _searches(found) == {
        "mlp": str(tmp_path / "critical_ratio_search"),
        "transformer": str(tmp_path / "critical_ratio_search-transformer")}
    assert list(_searches(found)) == ["mlp", "transformer"]


def test_a_transformer_search_alone_still_counts_for_app_e(tmp_path):
    from analysis.report import _searches, find_sweeps

    folder = tmp_path / "critical_ratio_search-transformer"
    folder.mkdir()
    (folder / "critical.json").write_text(json.dumps({"template": {"model": {
        "name": "transformer"}}}))
    assert _searches(find_sweeps(str(tmp_path))) == {"transformer": str(folder)}


def test_a_sweeps_size_is_described_from_its_settings():
    from analysis.report import describe_size

    ticket = pd.DataFrame([{"trial": "a", "optim.lr": 0.002, "train.steps": 4000,
                            "base.train.steps": 20000}])
    assert describe_size(ticket) == ("p=67, mlp 500/48, lr 0.002, wd 1, dense runs 20,000 "
                                     "steps, tickets 4,000 steps")
    transformer = pd.DataFrame([{"trial": "a", "task.p": 31, "model.name": "transformer",
                                 "model.d_emb": 64, "optim.weight_decay": 2.0,
                                 "model.d_hidden": float("nan")}])
    assert describe_size(transformer) == "p=31, transformer 64/128, lr 0.001, wd 2, 30,000 steps"
    grid = pd.DataFrame([{"trial": t, "optim.lr": lr, "optim.weight_decay": wd, "train.steps": 6000}
                         for t, (lr, wd) in enumerate([(1e-3, 0.1), (1e-2, 0.1), (1e-3, 1.0),
                                                       (1e-2, 1.0)])])
    assert describe_size(grid) == "p=67, mlp 500/48, lr 0.001 / 0.01, wd 0.1 / 1, 6,000 steps"
    # a task picks its model: text the LSTM, a vector task its own MLP (no embedding)
    text = pd.DataFrame([{"trial": "a", "task.name": "text", "task.corpus": "marker_parity",
                          "model.d_emb": 32, "model.d_hidden": 64, "optim.weight_decay": 0.1}])
    assert describe_size(text) == ("text (marker_parity corpus), lstm 32/64, lr 0.001, wd 0.1, "
                                   "30,000 steps")
    digits = pd.DataFrame([{"trial": "a", "task.name": "digits", "optim.weight_decay": 0.1}])
    assert describe_size(digits) == "digits, mlp hidden as the task, lr 0.001, wd 0.1, 30,000 steps"


def test_a_quick_page_shows_the_full_size_verdict_and_explains_a_difference():
    from analysis.claims import CLAIMS, Verdict
    from analysis.full_size import FULL_SIZE
    from analysis.report import Section, render

    claims = {(c.figure, c.study): c for c in CLAIMS}
    held = Section(claims[("Fig. 1, 2a", "headline")], "/s/headline-quick", Verdict(True),
                   members=pd.DataFrame(), size="p=67")
    differs = Section(claims[("Fig. 2b", "transformer")], "/s/transformer-quick",
                      Verdict(False), members=pd.DataFrame())
    page = render([held, differs], "/s")
    assert "Size: quick" in page and "<th>full size</th>" in page
    assert "(the headline: p=67)" in page
    assert page.count("The quick verdict differs") == 1  # the headline agrees with full size
    assert html.escape(FULL_SIZE[("Fig. 2b", "transformer")].quick_differs) in page
    search = ("Fig. 16a", "critical_ratio_search")  # agrees with full size, for another reason
    agrees = render([Section(claims[search], "/s/critical_ratio_search-quick", Verdict(False),
                             members=pd.DataFrame())], "/s")
    assert "The quick verdict differs" not in agrees
    assert html.escape(FULL_SIZE[search].quick_note) in agrees
    full = render([Section(held.claim, "/s/headline", Verdict(True), members=pd.DataFrame())],
                  "/s")
    assert "Size: full" in full and "<th>full size</th>" not in full
    for (figure, study) in FULL_SIZE:  # every record names a claim the page can show
        assert (figure, study) in claims


def test_reproduce_seeds_reach_every_study_and_the_search(tmp_path, grok):
    from search_spaces import expand_cells
    from sweeps.reproduce import ReproduceRequest, _requests, studies

    jobs = _requests(ReproduceRequest(quick=True, seeds=[5, 6], storage=str(tmp_path)),
                     studies(None, quick=True))
    assert len(jobs) == len(studies(None, quick=True))
    # at full size both architectures' searches run, the transformer's on its own settings
    assert studies(None)[-2:] == ["critical_ratio_search", "critical_ratio_search-transformer"]
    assert "critical_ratio_search-transformer" not in jobs
    full = _requests(ReproduceRequest(storage=str(tmp_path)), studies(None)[-1:])
    assert full["critical_ratio_search-transformer"].model == "transformer"
    for name, job in jobs.items():
        if hasattr(job, "space_dict"):
            assert {tuple(c["seeds"]) for c in expand_cells(job.space_dict())} == {(5, 6)}, name
        else:  # the critical-ratio search trains every seed at each suggested rate
            assert list(job.seeds) == [5, 6]
    bad = grok("reproduce", "--quick", "--seeds", "5,x", "--storage", tmp_path / "s")
    assert bad.returncode == 2 and "--seeds" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "s").exists()
