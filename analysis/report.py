"""The reproduction report: one self-contained HTML page, claim by claim.

For every claim of the paper that a study here tests (``analysis.claims.CLAIMS``), the page
shows the paper's claim in one sentence, our figure, the numbers behind it (per seed, and the
medians the verdict uses), a verdict computed from those numbers against a stated criterion,
the command that runs the study and its settings. Claims whose study has not run under the
storage are listed as not run, never drawn. Figures are PNG files written beside the page;
nothing is fetched from the network.

    from analysis.report import write_report
    path, sections = write_report("/data/sweeps")   # -> /data/sweeps/report/index.html
"""
from __future__ import annotations

import html
import os
import re
import shlex
from dataclasses import dataclass
from typing import Optional

import pandas as pd

from grok_core.config import DEFAULT_WIDTHS, VECTOR_TASKS, ExperimentConfig, task_model
from grok_core.layout import (CRITICAL_RATIO_SEARCH, REPORT_DIR, REPORT_PAGE, RESTARTED_INFIX,
                              SEARCH_SPEC_FILE, SWEEP_SPEC_FILE, critical_search_name)
from grok_core.store import Storage, is_uri, location_name, without_query

from . import critical_ratio
from .claims import CLAIMS, Claim, Verdict
from .figures import critical_summary_png, sweep_summary_png
from .full_size import full_size
from .results import SweepResults, load
from .study_figures import STUDY_FIGURES

SEARCH = CRITICAL_RATIO_SEARCH  # the Optuna critical-ratio search (grok critical-ratio), a study


def find_sweeps(storage: str) -> dict[str, str]:
    """Study name -> the folder (local path or URI) of its sweep under ``storage`` (the full
    version preferred over ``--quick``, then the one under the study's own name, then the
    newest). A critical-ratio search counts as
    the study ``SEARCH`` for the MLP and ``SEARCH:<model>`` for another architecture (a
    restarted one's kept old copy does not count)."""
    root = Storage(storage)
    found: dict[str, tuple[bool, bool, float, str]] = {}
    for entry in root.folders():
        if root.exists(entry, SEARCH_SPEC_FILE) and RESTARTED_INFIX not in entry:
            study, marker = _search_study(root, entry), SEARCH_SPEC_FILE
        elif root.exists(entry, SWEEP_SPEC_FILE):
            try:
                study, marker = root.read_json(entry, SWEEP_SPEC_FILE).get("study"), SWEEP_SPEC_FILE
            except ValueError:
                continue
        else:
            continue
        if not study:
            continue
        # a sweep under the study's own (default) name wins over others of the same study,
        # e.g. an extra run of other seeds under --name
        own = entry.removesuffix("-quick") == _default_name(study)
        rank = (not entry.endswith("-quick"), own, root.modified(entry, marker), root.child(entry))
        if study not in found or rank > found[study]:
            found[study] = rank
    return {study: rank[-1] for study, rank in found.items()}


def _search_study(root: Storage, entry: str) -> str:
    """``SEARCH``, or ``SEARCH:<model>`` for a search of another architecture than the MLP."""
    try:
        model = critical_ratio.search_model(root.read_json(entry, SEARCH_SPEC_FILE))
    except ValueError:
        model = "mlp"
    return SEARCH if model == "mlp" else f"{SEARCH}:{model}"


def _default_name(study: str) -> str:
    """The name ``grok sweep`` or ``grok critical-ratio`` gives a study's run by default."""
    if study == SEARCH or study.startswith(SEARCH + ":"):
        return critical_search_name(study.partition(":")[2] or "mlp")
    return study


def _searches(sweeps: dict[str, str]) -> dict[str, str]:
    """{model: folder} of the critical-ratio searches among ``find_sweeps``' answer, the MLP
    first."""
    return {("mlp" if study == SEARCH else study.partition(":")[2]): folder
            for study, folder in sorted(sweeps.items(), key=lambda kv: kv[0] != SEARCH)
            if study == SEARCH or study.startswith(SEARCH + ":")}


@dataclass
class Section:
    """One claim's part of the report."""

    claim: Claim
    folder: Optional[str]
    verdict: Optional[Verdict] = None
    figure: Optional[str] = None
    members: Optional[pd.DataFrame] = None
    settings: str = ""
    command: str = ""
    size: str = ""  # what the sweep trained, in a few words (``describe_size``)

    @property
    def quick(self) -> bool:
        """Whether the section shows a quick sweep (``--quick``: named ``...-quick``)."""
        return bool(self.folder) and location_name(self.folder).endswith("-quick")

    @property
    def anchor(self) -> str:
        """The section's id in the page (a study can test several claims)."""
        return re.sub(r"[^a-z0-9]+", "-", f"{self.claim.figure} {self.claim.study}".lower()
                      ).strip("-")


# the per-seed table under each claim
REPORT_MEMBER_COLUMNS = ("model", "variant", "op", "seed", "pruning_rate", "t_mem", "t_gen",
                         "tau_grok", "final_test_acc", "final_l1_norm", "final_l2_norm",
                         "generalised", "base_generalised", "start_memorising")


def _load(study: str, folder: str, sweeps: dict[str, str]):
    """The sweep at ``folder``; for ``SEARCH``, every architecture's critical-ratio search
    (``CriticalSearches``)."""
    if study != SEARCH:
        return load(folder)
    return critical_ratio.CriticalSearches(
        {model: critical_ratio.load(path) for model, path in _searches(sweeps).items()})


def _figure(study: str, loaded) -> Optional[bytes]:
    """The study's own figure (drawn like the paper's), else the sweep summary."""
    if study == SEARCH:
        return critical_summary_png(loaded)
    draw = STUDY_FIGURES.get(study)
    return draw(loaded) if draw is not None else _summary_png(loaded)


def _command(study: str, folder: str, storage: str, loaded=None) -> str:
    if study == SEARCH and loaded is not None:  # one command per architecture searched
        return "; ".join(_search_command(search, storage) for search in loaded.values())
    name = location_name(folder)
    quick = " --quick" if name.endswith("-quick") else ""
    return f"grok sweep {study}{quick} --storage {shlex.quote(storage)} --name {name}"


def _search_command(search, storage: str) -> str:
    quick = " --quick" if search.name.endswith("-quick") else ""
    model = "" if search.model == "mlp" else f" --set model.name={search.model}"
    return (f"grok critical-ratio{model}{quick} --storage {shlex.quote(storage)} "
            f"--name {search.name}")


def evaluate(storage: str, out: str) -> list[Section]:
    """Load each claim's sweep (if it ran), judge it, and write its figure into ``out`` (one
    file per study, shared by the study's claims)."""
    sweeps, sections, loaded_by_study, figures = find_sweeps(storage), [], {}, {}
    for claim in CLAIMS:
        folder = sweeps.get(claim.study)
        if claim.study == SEARCH:  # any architecture's search (the MLP's need not have run)
            folder = next(iter(_searches(sweeps).values()), None)
        section = Section(claim, folder)
        sections.append(section)
        if folder is None:
            continue
        if claim.study not in loaded_by_study:
            loaded_by_study[claim.study] = _load(claim.study, folder, sweeps)
        loaded = loaded_by_study[claim.study]
        if loaded.members.empty:
            section.folder = None
            continue
        section.verdict = claim.judge(loaded)
        section.settings = (" | ".join(search.summary_lines()[0] for search in loaded.values())
                            if claim.study == SEARCH else loaded.title())
        section.members = loaded.members[[c for c in REPORT_MEMBER_COLUMNS
                                          if c in loaded.members.columns]]
        section.command = _command(claim.study, folder, storage, loaded)
        if claim.study != SEARCH:
            section.size = describe_size(loaded.trials)
        if claim.study not in figures:
            png = _figure(claim.study, loaded)
            figures[claim.study] = f"{claim.study}.png" if png else None
            if png:
                with open(os.path.join(out, figures[claim.study]), "wb") as handle:
                    handle.write(png)
        section.figure = figures[claim.study]
    return sections


def _summary_png(loaded: SweepResults) -> bytes:
    return sweep_summary_png(loaded, title=loaded.title())


# Where the page goes when the sweeps are in object storage and no --out is given: a browser
# opens a local file, and its figures are files beside it.
REMOTE_REPORT_DIR = "grok_report"


def report_folder(storage: str, out: Optional[str] = None) -> str:
    """The local folder the page is written to: ``out``, else ``<storage>/report`` for a local
    storage, else ``./grok_report`` (sweeps in object storage)."""
    if out:
        return out
    return os.path.abspath(REMOTE_REPORT_DIR) if is_uri(storage) else os.path.join(storage,
                                                                                 REPORT_DIR)


def write_report(storage: str, out: Optional[str] = None) -> tuple[str, list[Section]]:
    """Write ``index.html`` (and its figures) for the sweeps under ``storage`` (a local folder
    or a URI) into the local folder ``report_folder(storage, out)``; its path and the sections
    it shows."""
    out = report_folder(storage, out)
    os.makedirs(out, exist_ok=True)
    sections = evaluate(storage, out)
    path = os.path.join(out, REPORT_PAGE)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(render(sections, storage))
    return path, sections


VERDICT_WORDS = {True: ("held", "#1a7f37"), False: ("did not hold", "#cf222e"),
                 None: ("cannot tell", "#9a6700")}


def _verdict_cell(section: Section) -> str:
    if section.folder is None:
        return '<span style="color:#57606a">not run</span>'
    word, colour = VERDICT_WORDS[section.verdict.held]
    return f'<b style="color:{colour}">{word}</b>'


def _full_size_cell(section: Section) -> str:
    """The claim's verdict at full size as we measured it (the quick pages' extra column)."""
    record = full_size(section.claim.figure, section.claim.study)
    if not record.measured:
        return '<span style="color:#57606a">not measured</span>'
    word, colour = VERDICT_WORDS[record.held]
    return f'<b style="color:{colour}">{word}</b>'


def _full_size_note(section: Section) -> str:
    """Under a quick section: the full-size verdict, and why the quick one differs if it does."""
    record = full_size(section.claim.figure, section.claim.study)
    if not record.measured:
        return "<p>Full size: not measured here.</p>"
    esc = html.escape
    text = esc(f"Full size (the study's defaults): {VERDICT_WORDS[record.held][0]}, "
               f"{record.numbers}.")
    if section.verdict is not None and section.verdict.held != record.held:
        why = record.quick_differs or "not explained yet"
        text += f" <b>The quick verdict differs</b>: {esc(why)}."
    elif record.quick_note:
        text += f" At the quick size: {esc(record.quick_note)}."
    return f'<p class="full-size">{text}</p>'


def describe_size(trials: pd.DataFrame) -> str:
    """The size a sweep trained, in a few words, from its first trial's settings: the task,
    the network's widths, lr and weight decay, and the step budgets (a ticket's own and its
    dense runs')."""
    flat = ExperimentConfig().to_flat()
    given = {k: v for k, v in trials.iloc[0].items() if not (isinstance(v, float) and v != v)}
    setting = lambda key: given.get(key, flat.get(key))  # noqa: E731
    task = setting("task.name")
    model = setting("model.name") or task_model(task)
    if task in VECTOR_TASKS:  # no embedding: the hidden widths, the task's own unless set
        widths = f"hidden {given.get('model.d_hidden') or 'as the task'}"
    else:
        widths = "/".join(str(given.get(f"model.{k}") or default) for k, default in
                          zip(("d_emb", "d_hidden"), DEFAULT_WIDTHS.get(model, ("?", "?"))))
    if task == "modular":
        task = f"p={setting('task.p')}"
    elif task == "text":  # which corpus: App. J's IMDb, or a generated one
        task = f"text ({setting('task.corpus')} corpus)"
    parts = [task, f"{model} {widths}",
             f"lr {_values(trials, 'optim.lr', setting)}",
             f"wd {_values(trials, 'optim.weight_decay', setting)}"]
    steps = f"{int(setting('train.steps')):,} steps"
    if "base.train.steps" in given:
        steps = f"dense runs {int(given['base.train.steps']):,} steps, tickets {steps}"
    return ", ".join([*parts, steps])


def _values(trials: pd.DataFrame, key: str, setting) -> str:
    """One setting as the sweep trained it: its value, or the values of a grid over it (Fig.
    22-23's lr x wd) as "0.001 / 0.01"."""
    if key in trials.columns and trials[key].nunique() > 1:
        return " / ".join(f"{v:g}" for v in sorted(trials[key].dropna().unique()))
    return f"{setting(key):g}"


def _size_note(sections: list[Section]) -> str:
    """Which size the page shows: quick (what the quick sizes are) or full."""
    quick = sorted({s.claim.study for s in sections if s.quick})
    if not quick:
        return ('<p class="size"><b>Size: full</b> (each study\'s defaults: the paper\'s '
                "settings, or where its dense runs do not grok at them, the authors' or the "
                "literature's, as each section's size line and the README say).</p>")
    headline = next((s.size for s in sections if s.quick and s.claim.study == "headline"), "")
    example = f" (the headline: {headline})" if headline else ""
    return ('<p class="size"><b>Size: quick</b>: checks each effect at small size, in minutes. '
            f"Each study at a size chosen to show its effect{html.escape(example)}; each "
            "section says its own. The criteria are the full-size ones. The column <i>full "
            "size</i> is what the full study gave here (its defaults); where the two differ, "
            "the section says why. Quick studies: " + html.escape(", ".join(quick)) + ".</p>")


def render(sections: list[Section], storage: str) -> str:
    """The page: a table of every claim and its verdict, then one section per claim."""
    esc = html.escape
    any_quick = any(s.quick for s in sections)
    rows = "".join(
        f'<tr><td>{esc(s.claim.figure)}</td><td><a href="#{s.anchor}">'
        f'{esc(s.claim.study)}</a></td><td>{esc(s.claim.claim)}</td>'
        f'<td class="verdict">{_verdict_cell(s)}</td>'
        + (f'<td class="full-size">{_full_size_cell(s)}</td>' if any_quick else "")
        + "</tr>" for s in sections)
    quick_note = _size_note(sections)
    full_column = "<th>full size</th>" if any_quick else ""
    parts = [f"""<!doctype html><html><head><meta charset="utf-8">
<title>Grokking tickets: reproduction report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#1f2328}}
table{{border-collapse:collapse}}td,th{{border:1px solid #d0d7de;padding:4px 8px;
vertical-align:top;font-size:14px}}img{{max-width:100%}}code{{background:#f6f8fa}}</style>
</head><body><h1>Grokking tickets: reproduction report</h1>
<p>Sweeps under <code>{esc(without_query(storage))}</code>. Each verdict is computed from the
numbers shown below it, against the criterion stated there.</p>
{quick_note}<table id="verdicts"><tr><th>figure</th><th>study</th><th>claim</th><th>verdict</th>{full_column}</tr>
{rows}</table>"""]
    for s in sections:
        parts.append(f'<h2 id="{s.anchor}">{esc(s.claim.figure)}: '
                     f'{esc(s.claim.study)}</h2><p>{esc(s.claim.claim)}</p>')
        if s.size:
            parts.append(f'<p class="size">Size: {"quick" if s.quick else "full"} '
                         f"({esc(s.size)})</p>")
        if s.folder is None:
            run = ("grok critical-ratio" if s.claim.study == SEARCH
                   else f"grok sweep {s.claim.study}")
            parts.append(f"<p>Not run. Run it with <code>{esc(run)} --storage "
                         f"{esc(shlex.quote(storage))}</code> (or <code>grok reproduce</code>).</p>")
            continue
        if s.figure:
            parts.append(f'<img src="{esc(s.figure)}" alt="{esc(s.claim.study)} figure">')
        numbers = "".join(f"<tr><td>{esc(k)}</td><td>{esc(str(v))}</td></tr>"
                          for k, v in s.verdict.numbers.items())
        parts.append(f"<p>Criterion: {esc(s.claim.criterion)}. Verdict: {_verdict_cell(s)}"
                     f"{' (' + esc(s.verdict.reason) + ')' if s.verdict.reason else ''}.</p>"
                     f"<table class=\"numbers\">{numbers}</table>")
        if s.quick:
            parts.append(_full_size_note(s))
        parts.append("<details><summary>per seed</summary>"
                     + s.members.to_html(index=False, na_rep="-", float_format=lambda v: f"{v:.4g}")
                     + "</details>")
        parts.append(f"<p>Command: <code>{esc(s.command)}</code><br>Settings: "
                     f"{esc(s.settings)}</p>")
    parts.append("</body></html>")
    return "\n".join(parts)
