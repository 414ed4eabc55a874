"""Results as tables and figures (pandas, parquet, matplotlib); never starts Ray.

    import analysis
    results = analysis.load("grok_sweeps/pruning_rate")   # a sweep, finished or partial
    results.members          # one row per member: config columns, seed, pruning_rate, t_mem ...
    analysis.aggregate(results.members)                  # the `grok results` table

``load`` and ``aggregate`` live in ``analysis.results``; the figures in ``analysis.figures``.
"""
from .results import SweepResults, aggregate, load

__all__ = ["SweepResults", "aggregate", "load"]
