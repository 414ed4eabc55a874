"""The names of every file and folder the project writes, in one place.

A storage root (``--storage``, default ``./grok_sweeps``) holds::

    artifacts/<dense key>/config.json                  a dense run's settings (for people)
    artifacts/<dense key>/seed_<s>/theta_<step>.pt     its checkpoints, theta_0 first
    artifacts/<dense key>/seed_<s>/curves.parquet
    artifacts/<dense key>/seed_<s>/summary.json        written last: marks the run complete
    <sweep>/                                           one grid sweep (Ray Tune's folder)
        grok_space.json                                what it was started with
        summary.png, figure.png                        drawn when it finishes
        <trial>/checkpoint_<n>/state.pt                training state of an unfinished trial
        <trial>/checkpoint_<n>/members.parquet ...     final tables of a finished trial
    <search>/                                          one Optuna critical-ratio search
        critical.json, study.json, study.db            what it searches, its Optuna study
        members.parquet, estimate.json, summary.png    its outcomes and estimate
    reproduce.json                                     per-study wall times of grok reproduce
    report/index.html                                  grok report's page and its PNGs

Torch-free and dependency-free, so every layer (the engine, the analysis, the launchers) takes
its file names from here and none spells one out itself.
"""
from __future__ import annotations

DEFAULT_STORAGE = "grok_sweeps"  # grok train, grok sweep and grok reproduce share it

# the artifact store of dense runs
ARTIFACTS_DIR = "artifacts"
RUN_CONFIG_FILE = "config.json"
RUN_SUMMARY_FILE = "summary.json"
SEED_DIR_PREFIX = "seed_"

# tables, in trial checkpoints, in a search folder and in grok train's output folder
MEMBERS_FILE = "members.parquet"
CURVES_FILE = "curves.parquet"
BASE_MEMBERS_FILE = "base_members.parquet"
BASE_CURVES_FILE = "base_curves.parquet"
TRIAL_STATE_FILE = "state.pt"

# a grid sweep's folder
SWEEP_SPEC_FILE = "grok_space.json"
SUMMARY_FIGURE_FILE = "summary.png"
PAPER_FIGURE_FILE = "figure.png"
DENSE_PHASE_SUFFIX = ".dense"        # NAME.dense: the sweep that trains shared dense runs first
RESTARTED_INFIX = ".restarted-"      # NAME.restarted-K: a sweep or search kept by --restart

# a critical-ratio search's folder; its default name is also its study name in grok reproduce
# and on the report (the CLI verb keeps its dash: grok critical-ratio)
CRITICAL_RATIO_SEARCH = "critical_ratio_search"


def critical_search_name(model: str = "mlp", quick: bool = False) -> str:
    """A search's default name: ``critical_ratio_search``, ``-<model>`` for another
    architecture than the MLP (the two live side by side), ``-quick`` for the quick version."""
    return CRITICAL_RATIO_SEARCH + ("" if model == "mlp" else f"-{model}") + \
        ("-quick" if quick else "")

SEARCH_SPEC_FILE = "critical.json"
SEARCH_STUDY_INFO_FILE = "study.json"  # the Optuna study's name (and its storage URL unless default)
SEARCH_STUDY_FILE = "study.db"         # the SQLite study next to a search's files, by default
ESTIMATE_FILE = "estimate.json"

# grok reproduce and grok report
REPRODUCE_TIMES_FILE = "reproduce.json"
REPORT_DIR = "report"
REPORT_PAGE = "index.html"

# grok train's output folder
TRAIN_OUT_DIR = "grok_out"
TRAIN_FIGURE_FILE = "curves.png"
