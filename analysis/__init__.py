"""Results as tables and figures (pandas, parquet, matplotlib); never starts Ray.

    import analysis
    results = analysis.load("grok_sweeps/pruning_rate")   # a sweep, finished or partial
    results.members          # one row per member: config columns, seed, pruning_rate, t_mem ...
    analysis.aggregate(results.members)                  # the `grok results` table

    search = analysis.critical_ratio.load("grok_sweeps/critical_ratio_search")  # a search
    search.members, search.estimate.upper     # member outcomes; the fit of the upper edge
    analysis.critical_ratios("grok_sweeps")   # one row per search under a storage root

    analysis.structure.summary(analysis.load("grok_sweeps/structure"))  # Fig. 6-8 measures

``load`` and ``aggregate`` live in ``analysis.results``, searches in
``analysis.critical_ratio``, the structure measures in ``analysis.structure``, the figures in
``analysis.figures`` (and each study's own in ``analysis.study_figures``), the paper's claims
and their verdicts in ``analysis.claims``, the page in ``analysis.report``.
"""
from . import critical_ratio, structure
from .critical_ratio import critical_ratios
from .results import SweepResults, aggregate, load

__all__ = ["SweepResults", "aggregate", "critical_ratio", "critical_ratios", "load", "structure"]
