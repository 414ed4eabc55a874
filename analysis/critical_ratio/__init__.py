"""The critical pruning ratio (App. E), read from results: the threshold fit (``fit``), the
edges of the window per seed and for the population (``edges``), and a search on storage
(``search``: ``load``, ``is_search``, ``critical_ratios``)."""
from .edges import CriticalEstimate, estimate_edges, seed_edges, window_seeds
from .fit import (RESOLUTION, ThresholdFit, aggregate_outcomes, edge_grid, fit_threshold, flank,
                  log_likelihood, width_grid, window_centre)
from .search import (SEARCH_MEMBER_COLUMNS, CriticalSearch, CriticalSearches, critical_ratios,
                     default_study_url, is_search, load, search_model, study_file_url,
                     study_members, trial_members)

__all__ = [
    "RESOLUTION", "SEARCH_MEMBER_COLUMNS", "CriticalEstimate", "CriticalSearch", "CriticalSearches",
    "ThresholdFit",
    "aggregate_outcomes", "critical_ratios", "default_study_url", "edge_grid",
    "estimate_edges", "fit_threshold", "flank", "is_search", "load", "log_likelihood",
    "search_model",
    "seed_edges", "study_file_url", "study_members", "trial_members", "width_grid",
    "window_centre", "window_seeds"]
