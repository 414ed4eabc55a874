"""The report's verdicts, one function at a time, on small hand-made result tables.

Every verdict function behind ``analysis.claims.CLAIMS`` gets a case where its claim held, one
where it did not and one it cannot tell (``held`` None); each expected outcome is worked out by
hand from the rule in the claim's criterion, in the comments. No Ray, no training, no torch.
Also: the claims, the study figures and the study tables name real studies.
"""
import math
import subprocess
import sys

import pandas as pd
import pytest

import analysis.claims as claims
from analysis.claims import (CLAIMS, critical_ratio_near_paper, edge_popup_beats_weight_decay,
                             grokking_beats_non_grokking, l1_differs_where_l2_agrees,
                             moderate_pruning_helps, search_edge_near_paper,
                             structure_changes_most_in_transition, ticket_beats_variants,
                             ticket_entropy_falls_sooner, ticket_vs_dense,
                             weight_decay_speeds_grokking)
from analysis.critical_ratio import CriticalEstimate, CriticalSearch, ThresholdFit
from analysis.report import Section
from analysis.results import SweepResults
from analysis.study_figures import STUDY_FIGURES, STUDY_TABLES, study_figure, study_table
from grok_core.layout import CRITICAL_RATIO_SEARCH
from search_spaces import study_names

NONE = None  # a member that never generalised has no t_gen
EMPTY = pd.DataFrame()


def sweep(members=EMPTY, base=EMPTY, trials=EMPTY, curves=EMPTY, study=None) -> SweepResults:
    """A loaded sweep as ``analysis.results.load`` returns it, from the given tables."""
    return SweepResults(pd.DataFrame(members), pd.DataFrame(curves), pd.DataFrame(trials),
                        pd.DataFrame(base), study=study)


# --- ticket_vs_dense: ticket median t_gen <= dense median / factor in every cell and rate ---
def test_tickets_far_faster_than_their_dense_runs_held():
    # ticket median 200; dense median 4000; factor 10: 200 * 10 = 2000 <= 4000
    loaded = sweep({"seed": [0, 1, 2], "pruning_rate": 0.6, "t_gen": [100, 200, 300]},
                   base={"seed": [0, 1, 2], "t_gen": [3000, 4000, 5000]})
    verdict = ticket_vs_dense(10)(loaded)
    assert verdict.held is True
    assert verdict.numbers == {"all: ticket median t_gen": 200.0,
                               "all: dense median t_gen": 4000.0}


def test_tickets_not_fast_enough_did_not_hold():
    # ticket median 200 * 10 = 2000 > dense median 1500
    loaded = sweep({"seed": [0, 1, 2], "pruning_rate": 0.6, "t_gen": [100, 200, 300]},
                   base={"seed": [0, 1, 2], "t_gen": [1000, 1500, 2000]})
    assert ticket_vs_dense(10)(loaded).held is False


def test_tickets_and_dense_runs_that_never_generalised_cannot_tell():
    loaded = sweep({"seed": [0, 1], "pruning_rate": 0.6, "t_gen": [NONE, NONE]},
                   base={"seed": [0, 1], "t_gen": [NONE, NONE]})
    verdict = ticket_vs_dense(1)(loaded)
    assert verdict.held is None and verdict.reason
    assert verdict.numbers["all: ticket median t_gen"] == "never"


def test_ticket_vs_dense_judges_every_cell_against_its_own_dense_runs():
    # op add: tickets 100, 300 (median 200) vs dense 400, 600 (500): held;
    # op sub: tickets 800, 1000 (900) vs dense 500, 700 (600): not held -> did not hold
    trials = {"trial": ["a", "s"], "task.op": ["add", "sub"]}
    members = {"trial": ["a", "a", "s", "s"], "task.op": ["add", "add", "sub", "sub"],
               "seed": [0, 1, 0, 1], "pruning_rate": 0.6, "t_gen": [100, 300, 800, 1000]}
    base = {"trial": ["a", "a", "s", "s"], "seed": [0, 1, 0, 1], "t_gen": [400, 600, 500, 700]}
    verdict = ticket_vs_dense(1)(sweep(members, base, trials))
    assert verdict.held is False
    assert verdict.numbers["add: ticket median t_gen"] == 200.0
    assert verdict.numbers["add: dense median t_gen"] == 500.0
    assert verdict.numbers["sub: ticket median t_gen"] == 900.0
    assert verdict.numbers["sub: dense median t_gen"] == 600.0
    members["t_gen"] = [100, 300, 400, 600]  # sub: 500 <= 600 now too
    assert ticket_vs_dense(1)(sweep(members, base, trials)).held is True


# --- ticket_beats_variants: the grokking ticket's median t_gen below every other variant's ---
def test_grokking_ticket_beating_every_variant_held():
    # ticket median 150; random: 500 and never -> median never (slower); snip median 400
    loaded = sweep({"variant": ["grokking ticket"] * 2 + ["random"] * 2 + ["snip"] * 2,
                    "t_gen": [100, 200, 500, NONE, 300, 500]})
    verdict = ticket_beats_variants(loaded)
    assert verdict.held is True
    assert verdict.numbers == {"grokking ticket: median t_gen": 150.0,
                               "random: median t_gen": "never", "snip: median t_gen": 400.0}


def test_a_variant_faster_than_the_grokking_ticket_did_not_hold():
    # ticket median 150 > L1 control's 100
    loaded = sweep({"variant": ["grokking ticket"] * 2 + ["L1 norm-matched dense"] * 2,
                    "t_gen": [100, 200, 90, 110]})
    assert ticket_beats_variants(loaded).held is False


def test_variants_cannot_tell_without_variants_or_when_none_generalised():
    assert ticket_beats_variants(sweep({"t_gen": [100, 200]})).held is None
    never = sweep({"variant": ["grokking ticket", "random"], "t_gen": [NONE, NONE]})
    assert ticket_beats_variants(never).held is None


# --- moderate_pruning_helps: the best rate above 0 has a median t_gen below rate 0's ---
def test_a_pruning_rate_faster_than_none_held():
    # k=0: median 1100; k=0.5: 550 (the best above 0); k=0.9: never
    loaded = sweep({"pruning_rate": [0.0, 0.0, 0.5, 0.5, 0.9, 0.9],
                    "t_gen": [1000, 1200, 500, 600, NONE, NONE]})
    verdict = moderate_pruning_helps(loaded)
    assert verdict.held is True
    assert verdict.numbers == {"k=0: median t_gen": 1100.0, "k=0.5: median t_gen": 550.0,
                               "k=0.9: median t_gen": "never"}


def test_every_pruning_rate_slower_than_none_did_not_hold():
    # k=0: 1100; best above 0: k=0.5 at 2500
    loaded = sweep({"pruning_rate": [0.0, 0.0, 0.5, 0.5], "t_gen": [1000, 1200, 2000, 3000]})
    assert moderate_pruning_helps(loaded).held is False


def test_pruning_rates_without_rate_0_cannot_tell():
    verdict = moderate_pruning_helps(sweep({"pruning_rate": [0.3, 0.6], "t_gen": [100, 200]}))
    assert verdict.held is None and "rate 0" in verdict.reason


# --- grokking_beats_non_grokking: grokking tickets' median t_gen below non-grokking ones' ---
def test_grokking_tickets_faster_than_non_grokking_ones_held():
    # grokking (mask after the dense run generalised): 400, 600 -> 500; non-grokking: 2500
    # and a mask of step 0 that never generalised -> median never
    loaded = sweep({"prune_step": [0, 1000, 3000, 3000],
                    "base_generalised": [NONE, False, True, True],
                    "t_gen": [NONE, 2500, 400, 600]})
    verdict = grokking_beats_non_grokking(loaded)
    assert verdict.held is True
    assert verdict.numbers["grokking tickets: median t_gen"] == 500.0


def test_grokking_tickets_slower_than_non_grokking_ones_did_not_hold():
    # grokking: 3000, 5000 -> 4000; non-grokking: 1000, 2000 -> 1500
    loaded = sweep({"prune_step": [2000, 2000, 8000, 8000],
                    "base_generalised": [False, False, True, True],
                    "t_gen": [1000, 2000, 3000, 5000]})
    assert grokking_beats_non_grokking(loaded).held is False


def test_a_sweep_with_one_kind_of_ticket_cannot_tell():
    only_grokking = sweep({"prune_step": [8000, 8000], "base_generalised": [True, True],
                           "t_gen": [100, 200]})
    assert grokking_beats_non_grokking(only_grokking).held is None
    assert grokking_beats_non_grokking(sweep({"t_gen": [100]})).held is None


# --- edge_popup_beats_weight_decay: at the last Table 1 step reached, both EP variants' mean
# test accuracy above WD's ---
def _table_1(wd: float, ep: float, ep_wd: float, variants=("WD", "EP w/o WD", "EP w/ WD")):
    """Three trials of two seeds each, evaluated at steps 0, 600 and 1000 (the last of Table 1's
    steps reached: 1000); each variant's two seeds end at its value -0.05 and +0.05."""
    finals = dict(zip(("WD", "EP w/o WD", "EP w/ WD"), (wd, ep, ep_wd)))
    rows = [{"trial": variant, "seed": seed, "pruning_rate": 0.6, "step": step,
             "test_acc": 0.0 if step == 0 else finals[variant] + (0.05 if seed else -0.05)}
            for variant in variants for seed in (0, 1) for step in (0, 600, 1000)]
    return sweep(trials={"trial": list(variants), "variant": list(variants)}, curves=rows,
                 study="edge_popup")


def test_both_edge_popup_variants_above_weight_decay_held():
    verdict = edge_popup_beats_weight_decay(_table_1(wd=0.5, ep=0.9, ep_wd=0.8))
    assert verdict.held is True
    assert verdict.numbers == {"WD: test acc at step 1000": 0.5,
                               "EP w/o WD: test acc at step 1000": 0.9,
                               "EP w/ WD: test acc at step 1000": 0.8}


def test_an_edge_popup_variant_below_weight_decay_did_not_hold():
    assert edge_popup_beats_weight_decay(_table_1(wd=0.5, ep=0.4, ep_wd=0.8)).held is False


def test_edge_popup_without_curves_or_without_weight_decay_cannot_tell():
    assert edge_popup_beats_weight_decay(sweep()).held is None
    no_wd = _table_1(0.5, 0.9, 0.8, variants=("EP w/o WD", "EP w/ WD"))
    assert edge_popup_beats_weight_decay(no_wd).held is None


def test_the_edge_popup_table_is_table_1s_layout():
    # step 600 (and 1000): each variant's two seeds at value -+0.05: mean value, std 0.07
    table = study_table(_table_1(wd=0.5, ep=0.9, ep_wd=0.8))
    assert list(table.columns) == ["variant", "step 600", "step 1000", "seeds"]
    assert table["variant"].tolist() == ["WD", "EP w/o WD", "EP w/ WD"]
    assert table["step 1000"].tolist() == ["0.50 +- 0.07", "0.90 +- 0.07", "0.80 +- 0.07"]
    assert table["seeds"].tolist() == [2, 2, 2]


# --- weight_decay_speeds_grokking: at the largest lr, median t_gen does not rise with wd ---
def _lr_wd(t_gen_by_wd: dict) -> SweepResults:
    rows = [{"optim.lr": 0.01, "optim.weight_decay": wd, "seed": seed, "t_gen": t}
            for wd, values in t_gen_by_wd.items() for seed, t in enumerate(values)]
    rows.append({"optim.lr": 0.001, "optim.weight_decay": 10.0, "seed": 0, "t_gen": 99_999})
    return sweep(rows)


def test_grokking_sooner_with_more_weight_decay_held():
    # lr 0.01: wd 0.1 -> 3000, wd 1 -> 1000, wd 10 -> 1000 (not rising); lr 0.001 ignored
    verdict = weight_decay_speeds_grokking(_lr_wd({0.1: [2000, 4000], 1.0: [1000, 1000],
                                                    10.0: [900, 1100]}))
    assert verdict.held is True
    assert verdict.numbers == {"lr=0.01, wd=0.1: median t_gen": 3000.0,
                               "lr=0.01, wd=1: median t_gen": 1000.0,
                               "lr=0.01, wd=10: median t_gen": 1000.0}


def test_grokking_later_with_more_weight_decay_did_not_hold():
    # wd 0.1 -> 3000, wd 1 -> 5000: it rose
    assert weight_decay_speeds_grokking(_lr_wd({0.1: [3000], 1.0: [5000]})).held is False
    # wd 1 never generalised: later than wd 0.1's 3000
    assert weight_decay_speeds_grokking(_lr_wd({0.1: [3000], 1.0: [NONE]})).held is False


def test_weight_decay_cannot_tell_with_one_value_none_generalised_or_no_grid():
    assert weight_decay_speeds_grokking(_lr_wd({1.0: [1000, 2000]})).held is None
    assert weight_decay_speeds_grokking(_lr_wd({0.1: [NONE], 1.0: [NONE]})).held is None
    assert weight_decay_speeds_grokking(sweep({"t_gen": [100]})).held is None


# --- the structure claims read analysis.structure.summary of the sweep (computed from the
# dense runs' checkpoints); here it is given by hand ---
@pytest.fixture
def structure_table(monkeypatch):
    """Sets the structure summary that the Fig. 7 / Fig. 8 verdicts read."""
    def given(rows) -> SweepResults:
        table = pd.DataFrame(rows)
        monkeypatch.setattr(claims, "structure_summary", lambda loaded: table)
        return sweep(study="structure")
    return given


def test_masks_changing_most_in_the_transition_held(structure_table):
    # seeds 0 and 1: transition > memorised; seed 2 not: 2 of 3 > half
    loaded = structure_table({"seed": [0, 1, 2], "jaccard_memorised": [0.1, 0.2, 0.3],
                              "jaccard_transition": [0.4, 0.5, 0.2]})
    verdict = structure_changes_most_in_transition(loaded)
    assert verdict.held is True
    assert verdict.numbers["seed 0: Jaccard memorised / transition"] == "0.100 / 0.400"


def test_masks_changing_most_in_the_transition_for_only_half_the_seeds_did_not_hold(
        structure_table):
    # 1 of 2 seeds: not most
    loaded = structure_table({"seed": [0, 1], "jaccard_memorised": [0.1, 0.5],
                              "jaccard_transition": [0.4, 0.2]})
    assert structure_changes_most_in_transition(loaded).held is False


def test_masks_without_a_transition_cannot_tell(structure_table):
    loaded = structure_table({"seed": [0], "jaccard_memorised": [0.1],
                              "jaccard_transition": [math.nan]})
    verdict = structure_changes_most_in_transition(loaded)
    assert verdict.held is None and verdict.numbers["seed 0: Jaccard memorised / transition"] \
        == "0.100 / -"
    assert structure_changes_most_in_transition(structure_table({})).held is None


def test_the_tickets_entropy_falling_sooner_held(structure_table):
    # seeds 0, 1: ticket's half-drop step before the dense run's; seed 2 after: 2 of 3
    loaded = structure_table({"seed": [0, 1, 2], "entropy_half_drop_ticket": [100, 200, 900],
                              "entropy_half_drop_dense": [5000, 6000, 800]})
    verdict = ticket_entropy_falls_sooner(loaded)
    assert verdict.held is True
    assert verdict.numbers["seed 2: half-drop step ticket / dense"] == "900 / 800"


def test_the_tickets_entropy_falling_later_did_not_hold(structure_table):
    loaded = structure_table({"seed": [0, 1], "entropy_half_drop_ticket": [7000, 9000],
                              "entropy_half_drop_dense": [5000, 6000]})
    assert ticket_entropy_falls_sooner(loaded).held is False


def test_entropy_that_never_fell_cannot_tell(structure_table):
    loaded = structure_table({"seed": [0], "entropy_half_drop_ticket": [None],
                              "entropy_half_drop_dense": [5000]})
    assert ticket_entropy_falls_sooner(loaded).held is None
    assert ticket_entropy_falls_sooner(structure_table({})).held is None


# --- critical_ratio_near_paper: the largest rate with half the tickets generalised in
# [0.7, 0.9] ---
def test_a_critical_ratio_in_the_papers_range_held():
    # k=0.5: 2 of 2; k=0.8: 1 of 2 (half); k=0.9: 0 of 2 -> largest 0.8
    loaded = sweep({"pruning_rate": [0.5, 0.5, 0.8, 0.8, 0.9, 0.9],
                    "t_gen": [100, 200, 300, NONE, NONE, NONE]})
    verdict = critical_ratio_near_paper(loaded)
    assert verdict.held is True
    assert verdict.numbers["largest k with half generalised"] == 0.8
    assert verdict.numbers["k=0.9: share generalised"] == 0.0


def test_a_critical_ratio_outside_the_papers_range_did_not_hold():
    # k=0.5: 2 of 2; k=0.6: 0 of 2 -> largest 0.5 < 0.7
    low = sweep({"pruning_rate": [0.5, 0.5, 0.6, 0.6], "t_gen": [100, 200, NONE, NONE]})
    assert critical_ratio_near_paper(low).held is False
    # k=0.95: 1 of 2 -> largest 0.95 > 0.9
    high = sweep({"pruning_rate": [0.5, 0.95, 0.95], "t_gen": [100, 200, NONE]})
    assert critical_ratio_near_paper(high).held is False


def test_no_rate_generalising_cannot_tell():
    # k=0.5: 1 of 3 generalised, under half
    verdict = critical_ratio_near_paper(sweep({"pruning_rate": [0.5, 0.5, 0.5],
                                               "t_gen": [100, NONE, NONE]}))
    assert verdict.held is None


# --- l1_differs_where_l2_agrees: the ticket's median final L1 below every control's, its L2
# within 25 % of theirs ---
def _norms(ticket: tuple, *controls: tuple) -> SweepResults:
    rows = [{"variant": "grokking ticket", "final_l1_norm": ticket[0], "final_l2_norm": ticket[1]}]
    rows += [{"variant": f"control {i}", "final_l1_norm": l1, "final_l2_norm": l2}
             for i, (l1, l2) in enumerate(controls)]
    return sweep(rows)


def test_smaller_l1_at_a_similar_l2_held():
    # L1 50 < 80, 90; L2 10 / 11 = 0.91 and 10 / 9 = 1.11, both within 25 %
    verdict = l1_differs_where_l2_agrees(_norms((50, 10), (80, 11), (90, 9)))
    assert verdict.held is True
    assert verdict.numbers["ticket L2 / control L2"] == "0.91, 1.11"


def test_larger_l1_or_a_far_l2_did_not_hold():
    # L1 85 > 80
    assert l1_differs_where_l2_agrees(_norms((85, 10), (80, 11), (90, 9))).held is False
    # L2 10 / 20 = 0.5: 50 % off
    assert l1_differs_where_l2_agrees(_norms((50, 10), (80, 20))).held is False


def test_norms_without_a_control_or_without_norms_cannot_tell():
    assert l1_differs_where_l2_agrees(_norms((50, 10))).held is None
    assert l1_differs_where_l2_agrees(sweep({"variant": ["grokking ticket"],
                                             "t_gen": [100]})).held is None


# --- search_edge_near_paper: a search's fitted upper edge in [0.7, 0.9] ---
def _search(upper: ThresholdFit) -> CriticalSearch:
    lower = ThresholdFit(0.4, 0.35, 0.45, 10, width=0.01, falling=False)
    members = pd.DataFrame({"seed": [0] * 10, "pruning_rate": [0.5] * 10,
                            "generalised": [True] * 10})
    estimate = CriticalEstimate(upper, lower, pd.DataFrame(), [], members=10, trials=10)
    return CriticalSearch("search", "/nowhere", {}, members, estimate, trials=10)


def test_a_search_edge_in_the_papers_range_held():
    verdict = search_edge_near_paper(_search(ThresholdFit(0.81, 0.79, 0.83, 10, width=0.01)))
    assert verdict.held is True
    assert verdict.numbers["upper edge (95 % interval)"] == "0.810 [0.790, 0.830]"
    assert verdict.numbers["finished trials / member outcomes"] == "10 / 10"


def test_a_search_edge_outside_the_papers_range_did_not_hold():
    assert search_edge_near_paper(_search(ThresholdFit(0.6, 0.58, 0.62, 10))).held is False
    assert search_edge_near_paper(_search(ThresholdFit(0.93, 0.9, 0.95, 10))).held is False


def test_a_search_edge_beyond_the_searched_rates_cannot_tell():
    above = ThresholdFit(math.nan, 0.95, math.inf, 10, status="above")
    verdict = search_edge_near_paper(_search(above))
    assert verdict.held is None and "not inside" in verdict.reason


# --- the registries: claims, figures and tables name studies the CLI runs ---
TESTED_JUDGES = {"ticket_vs_dense.<locals>.judge", "ticket_beats_variants",
                 "moderate_pruning_helps", "grokking_beats_non_grokking",
                 "edge_popup_beats_weight_decay", "weight_decay_speeds_grokking",
                 "structure_changes_most_in_transition", "ticket_entropy_falls_sooner",
                 "critical_ratio_near_paper", "l1_differs_where_l2_agrees",
                 "search_edge_near_paper"}


def test_every_verdict_function_of_the_claims_is_tested_here():
    assert {claim.judge.__qualname__ for claim in CLAIMS} == TESTED_JUDGES


def test_every_claim_names_a_study_grok_sweep_or_grok_critical_ratio_runs():
    studies = set(study_names())
    for claim in CLAIMS:
        assert claim.study in studies | {CRITICAL_RATIO_SEARCH}, claim
    assert CRITICAL_RATIO_SEARCH not in studies  # the search is no grid study
    anchors = [Section(claim, None).anchor for claim in CLAIMS]
    assert len(anchors) == len(set(anchors))  # one section id per claim on the page


def test_study_figures_and_tables_are_keyed_by_real_study_names():
    assert set(STUDY_FIGURES) <= set(study_names())
    assert set(STUDY_TABLES) <= set(study_names())
    assert set(STUDY_TABLES) <= set(STUDY_FIGURES)  # a study with a table draws its figure


def test_a_study_without_its_own_figure_or_table_gets_none():
    members = {"seed": [0], "pruning_rate": [0.0], "t_gen": [100]}
    for study in ("lr_wd", None, "no_such_study"):
        assert study_figure(sweep(members, study=study)) is None
        assert study_table(sweep(members, study=study)) is None


# --- what importing the analysis and the studies loads ---
@pytest.mark.parametrize("code", [
    "import analysis, sys; assert 'torch' not in sys.modules and 'ray' not in sys.modules",
    "import analysis.report, analysis.study_figures, sys; "
    "assert not {'torch', 'ray', 'matplotlib', 'optuna'} & set(sys.modules), sys.modules.keys()",
    "import search_spaces, sys; assert 'torch' not in sys.modules",
    "import search_spaces as s, sys; [s.get_study(n) for n in s.study_names()]; "
    "assert 'torch' not in sys.modules",
])
def test_importing_analysis_or_the_studies_loads_no_engine(code):
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
