"""The report's verdicts, one function at a time, on small hand-made result tables.

Every verdict function behind ``analysis.claims.CLAIMS`` gets cases where its claim held, where
it did not and where it cannot tell (``held`` None); each expected outcome is worked out by hand
from the rule in the claim's criterion (in the comments), never from the function under test.
Also: ``median_t_gen`` counts a run that never generalised as later than any step, and the
claims, the study figures and the study tables name real studies. No Ray, no training, no files.
"""
import math

import pandas as pd
import pytest

from analysis.claims import (CLAIMS, critical_ratio_near_paper, edge_popup_beats_weight_decay,
                             grokking_beats_non_grokking, l1_differs_where_l2_agrees,
                             moderate_pruning_helps, search_edge_near_paper,
                             structure_changes_most_in_transition, ticket_beats_variants,
                             ticket_entropy_falls_sooner, ticket_vs_dense,
                             weight_decay_speeds_grokking)
from analysis.critical_ratio import (CriticalEstimate, CriticalSearch, CriticalSearches,
                                     ThresholdFit, estimate_edges)
from analysis.results import NEVER, SweepResults, median_t_gen
from analysis.study_figures import STUDY_FIGURES, STUDY_TABLES, study_table
from grok_core.layout import CRITICAL_RATIO_SEARCH
from grok_core.paper import TABLE1_PAPER, TABLE1_STEPS
from search_spaces import study_names

NONE = None  # the t_gen of a member that never generalised


def sweep(members=(), base=(), trials=(), curves=(), study=None) -> SweepResults:
    """A loaded sweep as ``analysis.results.load`` returns it, from the given tables."""
    frame = lambda rows: pd.DataFrame(rows) if len(rows) else pd.DataFrame()  # noqa: E731
    return SweepResults(frame(members), frame(curves), frame(trials), frame(base), study=study)


# --- median_t_gen: a member that never generalised counts as later than any step ---
@pytest.mark.parametrize("t_gen, median", [
    ([300, 100, 200], 200.0),             # sorted 100, 200, 300
    ([100, 200, NONE], 200.0),            # 100, 200, inf: one never of three, still 200
    ([100, NONE, NONE], math.inf),        # 100, inf, inf: the middle one never did
    ([100, 200, NONE, NONE], math.inf),   # half never did: (200 + inf) / 2
    ([100, NONE], math.inf),              # half never did: (100 + inf) / 2
    ([NONE, NONE], math.inf),
])
def test_median_t_gen_counts_never_as_later_than_any_step(t_gen, median):
    assert median_t_gen(pd.DataFrame({"t_gen": t_gen})) == median


def test_median_t_gen_of_no_members_is_nan():
    assert math.isnan(median_t_gen(pd.DataFrame()))
    assert NEVER == math.inf


# --- ticket_vs_dense(factor): ticket median t_gen <= dense median / factor, in every cell and
# at every rate ---
@pytest.mark.parametrize("factor, tickets, dense, held", [
    (10, [100, 200, 300], [3000, 4000, 5000], True),   # 200 * 10 = 2000 <= 4000
    (10, [100, 200, 300], [1000, 1500, 2000], False),  # 200 * 10 = 2000 > 1500
    (2, [100, 200, 300], [300, 400, 500], True),       # 200 * 2 = 400 <= 400 (at most)
    (2, [100, 250, 300], [300, 400, 500], False),      # 250 * 2 = 500 > 400
    (1, [100, NONE, NONE], [300, 400, 500], False),    # ticket median never: later than 400
    (1, [100, 200, 300], [NONE, NONE, 500], True),     # 200 <= dense median never
    (1, [NONE, NONE, NONE], [NONE, NONE, NONE], None),  # neither generalised: cannot tell
])
def test_ticket_vs_dense_in_one_cell(factor, tickets, dense, held):
    seeds = list(range(len(tickets)))
    loaded = sweep({"seed": seeds, "pruning_rate": 0.6, "t_gen": tickets},
                   base={"seed": seeds, "t_gen": dense})
    verdict = ticket_vs_dense(factor)(loaded)
    assert verdict.held is held
    assert set(verdict.numbers) == {"all: ticket median t_gen", "all: dense median t_gen"}
    if held is None:
        assert verdict.reason and verdict.numbers["all: ticket median t_gen"] == "never"


def test_ticket_vs_dense_without_dense_runs_cannot_tell():
    # no dense run: its median is NaN, nothing to compare with
    verdict = ticket_vs_dense(1)(sweep({"seed": [0, 1], "pruning_rate": 0.6, "t_gen": [1, 2]}))
    assert verdict.held is None
    assert verdict.numbers["all: dense median t_gen"] is None


def _operations(ticket_sub: list) -> SweepResults:
    """Two cells (task.op add / sub), two seeds each, one dense run per seed and cell: add's
    dense runs 400, 600 (median 500), sub's 500, 700 (600); add's tickets 100, 300 (200)."""
    trials = {"trial": ["a", "s"], "task.op": ["add", "sub"]}
    members = {"trial": ["a", "a", "s", "s"], "task.op": ["add", "add", "sub", "sub"],
               "seed": [0, 1, 0, 1], "pruning_rate": 0.6, "t_gen": [100, 300, *ticket_sub]}
    base = {"trial": ["a", "a", "s", "s"], "seed": [0, 1, 0, 1], "t_gen": [400, 600, 500, 700]}
    return sweep(members, base, trials)


@pytest.mark.parametrize("ticket_sub, held", [
    ([400, 600], True),    # add: 200 <= 500; sub: 500 <= 600
    ([800, 1000], False),  # add holds; sub: 900 > 600
    ([NONE, NONE], False),  # sub: never > 600 (a part that did not hold decides)
])
def test_ticket_vs_dense_judges_every_cell_against_its_own_dense_runs(ticket_sub, held):
    verdict = ticket_vs_dense(1)(_operations(ticket_sub))
    assert verdict.held is held
    assert verdict.numbers["add: ticket median t_gen"] == 200.0
    assert verdict.numbers["add: dense median t_gen"] == 500.0  # not the pooled 550
    assert verdict.numbers["sub: dense median t_gen"] == 600.0


def _tasks(polynomial_ticket: list, polynomial_dense: list) -> SweepResults:
    """The tasks study (Fig. 2d-e): two variant cells, two seeds each; parity's dense runs
    3,500 / 4,700, its tickets 1,250 / 1,400 (sooner); the polynomial's as given."""
    trials = {"trial": ["p", "s"], "variant": ["polynomial regression", "sparse parity"]}
    generalised = [t is not None for t in polynomial_dense] + [True, True]
    members = {"trial": ["p", "p", "s", "s"], "seed": [0, 1, 0, 1], "pruning_rate": 0.6,
               "variant": ["polynomial regression"] * 2 + ["sparse parity"] * 2,
               "t_gen": [*polynomial_ticket, 1250, 1400], "base_generalised": generalised}
    base = {"trial": ["p", "p", "s", "s"], "seed": [0, 1, 0, 1],
            "t_gen": [*polynomial_dense, 3500, 4700]}
    return sweep(members, base, trials, study="tasks")


@pytest.mark.parametrize("polynomial_ticket, polynomial_dense, held, untestable", [
    ([500, 900], [5600, 5850], True, False),    # both tasks sooner
    ([NONE, NONE], [5600, 5850], False, False),  # the regression's tickets plateau below R^2 0.95
    ([NONE, NONE], [NONE, NONE], True, True),    # no polynomial dense run generalised: parity
])                                               # alone decides, the polynomial not testable
def test_the_tasks_claim_judges_each_task_and_names_one_it_cannot_test(
        polynomial_ticket, polynomial_dense, held, untestable):
    verdict = ticket_vs_dense(1)(_tasks(polynomial_ticket, polynomial_dense))
    assert verdict.held is held
    assert verdict.numbers["sparse parity: ticket median t_gen"] == 1325.0
    assert ("not testable: polynomial regression" in verdict.reason) is untestable


def test_ticket_vs_dense_judges_every_pruning_rate():
    # k=0.3: tickets 100, 200 (150) <= dense 1500; k=0.9: 2000, 3000 (2500) > 1500
    loaded = sweep({"seed": [0, 1, 0, 1], "pruning_rate": [0.3, 0.3, 0.9, 0.9],
                    "t_gen": [100, 200, 2000, 3000]},
                   base={"seed": [0, 1], "t_gen": [1000, 2000]})
    verdict = ticket_vs_dense(1)(loaded)
    assert verdict.held is False
    assert verdict.numbers["k=0.3: ticket median t_gen"] == 150.0
    assert verdict.numbers["k=0.9: ticket median t_gen"] == 2500.0


def test_ticket_vs_dense_with_text_cells_at_several_rates():
    # add at k=0.3 and 0.9: tickets 100, 300 (200) <= add's dense median 500; sub at both
    # rates 400, 600 (500) <= sub's 600: held in all four parts
    loaded = _operations([400, 600])
    loaded.members = pd.concat([loaded.members.assign(pruning_rate=k) for k in (0.3, 0.9)],
                               ignore_index=True)
    assert ticket_vs_dense(1)(loaded).held is True


def test_ticket_vs_dense_with_text_and_number_cells():
    # (add, 97): tickets 100, 200 (150) <= dense 1500; (sub, 113) the same: held
    trials = {"trial": ["a", "b"], "task.op": ["add", "sub"], "task.p": [97, 113]}
    members = {"trial": ["a", "a", "b", "b"], "task.op": ["add", "add", "sub", "sub"],
               "task.p": [97, 97, 113, 113], "seed": [0, 1, 0, 1], "pruning_rate": 0.6,
               "t_gen": [100, 200, 100, 200]}
    base = {"trial": ["a", "a", "b", "b"], "seed": [0, 1, 0, 1],
            "t_gen": [1000, 2000, 1000, 2000]}
    assert ticket_vs_dense(1)(sweep(members, base, trials)).held is True


# --- ticket_beats_variants: the grokking ticket's median t_gen below every other variant's (one
# that never generalised counts as slower) ---
@pytest.mark.parametrize("t_gen, held", [
    # ticket 150; random: 500 and never -> never (slower); snip 400
    ({"grokking ticket": [100, 200], "random": [500, NONE], "snip": [300, 500]}, True),
    # ticket 150 > the L1 control's 100
    ({"grokking ticket": [100, 200], "L1 norm-matched dense": [90, 110]}, False),
    # ticket never; the control generalised at 500: slower
    ({"grokking ticket": [NONE, NONE], "L2 norm-matched dense": [400, 600]}, False),
    # neither generalised: cannot tell
    ({"grokking ticket": [NONE, NONE], "random": [NONE, NONE]}, None),
    # no grokking ticket in the sweep: nothing to compare
    ({"random": [100, 200], "snip": [300, 400]}, None),
])
def test_ticket_beats_variants(t_gen, held):
    rows = [{"variant": v, "t_gen": t} for v, values in t_gen.items() for t in values]
    assert ticket_beats_variants(sweep(rows)).held is held


def test_ticket_beats_variants_numbers_and_a_sweep_without_variants():
    loaded = sweep({"variant": ["grokking ticket"] * 2 + ["random"] * 2,
                    "t_gen": [100, 200, 500, NONE]})
    assert ticket_beats_variants(loaded).numbers == {"grokking ticket: median t_gen": 150.0,
                                                     "random: median t_gen": "never"}
    verdict = ticket_beats_variants(sweep({"t_gen": [100, 200]}))
    assert verdict.held is None and "variants" in verdict.reason


def test_ticket_beats_variants_without_any_other_variant_cannot_tell():
    loaded = sweep({"variant": ["grokking ticket"] * 2, "t_gen": [100, 200]})
    assert ticket_beats_variants(loaded).held is None


def test_ticket_tied_with_a_variant_is_not_below_it():
    # ticket 150 == random's 150: not below
    loaded = sweep({"variant": ["grokking ticket"] * 2 + ["random"] * 2,
                    "t_gen": [100, 200, 100, 200]})
    assert ticket_beats_variants(loaded).held is False


# --- moderate_pruning_helps: the best rate above 0 has a median t_gen below rate 0's ---
@pytest.mark.parametrize("t_gen, held", [
    # k=0: 1100; k=0.5: 550 (the best above 0); k=0.9: never
    ({0.0: [1000, 1200], 0.5: [500, 600], 0.9: [NONE, NONE]}, True),
    # k=0: never; k=0.5: 550
    ({0.0: [NONE, NONE], 0.5: [500, 600]}, True),
    # k=0: 1100; best above 0 is k=0.5 at 2500
    ({0.0: [1000, 1200], 0.5: [2000, 3000], 0.9: [NONE, 5000]}, False),
    # k=0: 1100; every rate above 0 never generalised
    ({0.0: [1000, 1200], 0.5: [NONE, NONE]}, False),
    # nothing generalised at any rate
    ({0.0: [NONE, NONE], 0.5: [NONE, NONE]}, None),
    # no rate above 0
    ({0.0: [1000, 1200]}, None),
    # no rate 0
    ({0.3: [100, 200], 0.6: [300, 400]}, None),
])
def test_moderate_pruning_helps(t_gen, held):
    rows = [{"pruning_rate": k, "t_gen": t} for k, values in t_gen.items() for t in values]
    assert moderate_pruning_helps(sweep(rows)).held is held


def test_without_rate_0_members_the_dense_runs_are_rate_0():
    tickets = {"pruning_rate": [0.4, 0.4, 0.8, 0.8], "t_gen": [700, 900, NONE, 5000]}
    loaded = sweep(tickets, base={"seed": [0, 1], "t_gen": [8000, 12000]})
    verdict = moderate_pruning_helps(loaded)
    assert verdict.held is True
    assert verdict.numbers["k=0 (the dense runs): median t_gen"] == 10000.0
    slow = sweep(tickets, base={"seed": [0, 1], "t_gen": [500, 600]})
    assert moderate_pruning_helps(slow).held is False


def test_moderate_pruning_helps_numbers_and_reason():
    loaded = sweep({"pruning_rate": [0.0, 0.0, 0.5, 0.5, 0.9, 0.9],
                    "t_gen": [1000, 1200, 500, 600, NONE, NONE]})
    assert moderate_pruning_helps(loaded).numbers == {
        "k=0: median t_gen": 1100.0, "k=0.5: median t_gen": 550.0, "k=0.9: median t_gen": "never"}
    verdict = moderate_pruning_helps(sweep({"pruning_rate": [0.3], "t_gen": [100]}))
    assert "rate 0" in verdict.reason


def test_a_pruning_rate_tied_with_rate_0_does_not_help():
    # k=0: 1100; k=0.5: 1100: not earlier
    loaded = sweep({"pruning_rate": [0.0, 0.0, 0.5, 0.5], "t_gen": [1000, 1200, 1000, 1200]})
    assert moderate_pruning_helps(loaded).held is False


# --- grokking_beats_non_grokking: tickets masked after their dense run generalised have a
# median t_gen below those masked before (a mask of step 0 always is before) ---
@pytest.mark.parametrize("prune_step, base_generalised, t_gen, held", [
    # grokking: 400, 600 -> 500; non-grokking: step 0 (never; its flag unknown) and 2500
    # -> median of never, 2500 is never
    ([0, 1000, 3000, 3000], [NONE, False, True, True], [NONE, 2500, 400, 600], True),
    # grokking 3000, 5000 -> 4000; non-grokking 1000, 2000 -> 1500
    ([2000, 2000, 8000, 8000], [False, False, True, True], [1000, 2000, 3000, 5000], False),
    # step 0 counts as non-grokking even if flagged True: grokking 3000, 5000 -> 4000;
    # non-grokking (step 0) 100, 200 -> 150
    ([0, 0, 8000, 8000], [True, True, True, True], [100, 200, 3000, 5000], False),
    # neither kind generalised
    ([2000, 8000], [False, True], [NONE, NONE], None),
    # only grokking tickets
    ([8000, 8000], [True, True], [100, 200], None),
    # only non-grokking tickets
    ([0, 2000], [False, False], [100, 200], None),
])
def test_grokking_beats_non_grokking(prune_step, base_generalised, t_gen, held):
    loaded = sweep({"prune_step": prune_step, "base_generalised": base_generalised,
                    "t_gen": t_gen})
    assert grokking_beats_non_grokking(loaded).held is held


def test_grokking_beats_non_grokking_numbers_and_a_sweep_without_the_flag():
    loaded = sweep({"prune_step": [0, 1000, 3000, 3000],
                    "base_generalised": [NONE, False, True, True],
                    "t_gen": [NONE, 2500, 400, 600]})
    numbers = grokking_beats_non_grokking(loaded).numbers
    assert numbers["grokking tickets: median t_gen"] == 500.0
    assert numbers["non-grokking tickets: median t_gen"] == "never"
    assert numbers["tickets (grokking / non-grokking)"] == "2 / 2"
    assert grokking_beats_non_grokking(sweep({"t_gen": [100]})).held is None


def test_grokking_tickets_tied_with_non_grokking_ones_are_not_earlier():
    # both kinds: 100, 200 -> 150
    loaded = sweep({"prune_step": [2000, 2000, 8000, 8000],
                    "base_generalised": [False, False, True, True],
                    "t_gen": [100, 200, 100, 200]})
    assert grokking_beats_non_grokking(loaded).held is False


# --- edge_popup_beats_weight_decay: at Table 1's first step (600), both edge-popup variants'
# mean test accuracy above WD's ---
VARIANTS = ("WD", "EP w/o WD", "EP w/ WD")


def _table_1(finals: dict, last_step: int = 1000) -> SweepResults:
    """One trial per variant, two seeds each, evaluated at steps 0, ``last_step`` / 2 and
    ``last_step``; a variant's seeds end at its value -0.05 and +0.05 (mean: the value)."""
    rows = [{"trial": variant, "seed": seed, "pruning_rate": 0.6, "step": step,
             "test_acc": 0.0 if step == 0 else value + (0.05 if seed else -0.05)}
            for variant, value in finals.items() for seed in (0, 1)
            for step in (0, last_step // 2, last_step)]
    return sweep(trials={"trial": list(finals), "variant": list(finals)}, curves=rows,
                 study="edge_popup")


def _table_1_by_step(means: dict) -> SweepResults:
    """One member per variant whose test accuracy is ``means[variant]`` at Table 1's steps."""
    rows = [{"trial": variant, "seed": 0, "pruning_rate": 0.6, "step": step, "test_acc": value}
            for variant, values in means.items()
            for step, value in zip((0, *TABLE1_STEPS), (0.0, *values))]
    return sweep(trials={"trial": list(means), "variant": list(means)}, curves=rows,
                 study="edge_popup")


@pytest.mark.parametrize("finals, held", [
    ((0.5, 0.9, 0.8), True),    # 0.9 > 0.5 and 0.8 > 0.5
    ((0.5, 0.4, 0.8), False),   # EP w/o WD 0.4 < 0.5
    ((0.5, 0.5, 0.8), False),   # EP w/o WD 0.5 not above 0.5
    ((0.9, 0.6, 0.7), False),   # both below
])
def test_edge_popup_beats_weight_decay(finals, held):
    assert edge_popup_beats_weight_decay(_table_1(dict(zip(VARIANTS, finals)))).held is held


def test_the_papers_own_table_1_holds_by_the_criterion():
    # the paper's rows: EP leads at 600 (0.68, 0.82 against 0.53), WD leads at 2000 (1.00
    # against 0.92): "sooner" is the first column, and the paper's table must pass its own claim
    verdict = edge_popup_beats_weight_decay(_table_1_by_step(
        {v: TABLE1_PAPER[v] for v in VARIANTS}))
    assert verdict.held is True
    assert verdict.numbers == {"WD: test acc at step 600": 0.53,
                               "EP w/o WD: test acc at step 600": 0.68,
                               "EP w/ WD: test acc at step 600": 0.82}


def test_edge_popup_is_judged_at_table_1s_first_step_not_its_last():
    # ahead at 600, behind from 1000 on: held; behind at 600, ahead from 1000 on: not held
    ahead_early = {"WD": (0.5, 0.9, 1.0, 1.0), "EP w/o WD": (0.6, 0.7, 0.8, 0.9),
                   "EP w/ WD": (0.7, 0.8, 0.9, 0.95)}
    assert edge_popup_beats_weight_decay(_table_1_by_step(ahead_early)).held is True
    behind_early = {"WD": (0.5, 0.6, 0.6, 0.6), "EP w/o WD": (0.4, 0.9, 1.0, 1.0),
                    "EP w/ WD": (0.6, 0.9, 1.0, 1.0)}
    assert edge_popup_beats_weight_decay(_table_1_by_step(behind_early)).held is False


def test_edge_popup_reads_the_value_evaluated_at_or_before_step_600():
    # steps 0, 500, 1000: step 600 holds the evaluation at 500
    verdict = edge_popup_beats_weight_decay(_table_1(dict(zip(VARIANTS, (0.5, 0.9, 0.8)))))
    assert verdict.numbers == {"WD: test acc at step 600": 0.5,
                               "EP w/o WD: test acc at step 600": 0.9,
                               "EP w/ WD: test acc at step 600": 0.8}


@pytest.mark.parametrize("loaded", [
    sweep(),                                                          # no curves
    _table_1({"EP w/o WD": 0.9, "EP w/ WD": 0.8}),                    # no WD
    _table_1({"WD": 0.5}),                                            # no edge-popup variant
    _table_1(dict(zip(VARIANTS, (0.5, 0.9, 0.8))), last_step=500),    # 500 < Table 1's 600
], ids=["no curves", "no WD", "no edge-popup", "no step reached"])
def test_edge_popup_beats_weight_decay_cannot_tell(loaded):
    assert edge_popup_beats_weight_decay(loaded).held is None


def test_edge_popup_with_one_of_its_two_variants_cannot_tell():
    # EP w/ WD missing: 'both above WD' cannot be told
    assert edge_popup_beats_weight_decay(_table_1({"WD": 0.5, "EP w/o WD": 0.9})).held is None


def test_the_edge_popup_table_is_table_1s_layout():
    # each variant's two seeds at value -+0.05: mean the value, std 0.05 * sqrt(2) = 0.07
    table = study_table(_table_1(dict(zip(VARIANTS, (0.5, 0.9, 0.8)))))
    paper = "paper (600 / 1000 / 1400 / 2000)"
    assert list(table.columns) == ["variant", "step 600", "step 1000", "seeds", paper]
    assert table["variant"].tolist() == list(VARIANTS)
    assert table["step 1000"].tolist() == ["0.50 +- 0.07", "0.90 +- 0.07", "0.80 +- 0.07"]
    assert table["seeds"].tolist() == [2, 2, 2]
    # the paper's Table 1 beside each of its rows
    assert table[paper].tolist() == ["0.53 / 0.95 / 1.00 / 1.00", "0.68 / 0.80 / 0.84 / 0.92",
                                     "0.82 / 0.96 / 0.99 / 1.00"]


# --- weight_decay_speeds_grokking: at the largest lr, median t_gen does not rise with wd ---
def _lr_wd(t_gen_by_wd: dict) -> SweepResults:
    """lr 0.01 at each weight decay given; one run at lr 0.001 the verdict must ignore."""
    rows = [{"optim.lr": 0.01, "optim.weight_decay": wd, "seed": seed, "t_gen": t}
            for wd, values in t_gen_by_wd.items() for seed, t in enumerate(values)]
    rows.append({"optim.lr": 0.001, "optim.weight_decay": 10.0, "seed": 0, "t_gen": 99_999})
    return sweep(rows)


@pytest.mark.parametrize("t_gen_by_wd, held", [
    # wd 0.1 -> 3000, wd 1 -> 1000, wd 10 -> 1000: never rises (lr 0.001's 99999 ignored)
    ({0.1: [2000, 4000], 1.0: [1000, 1000], 10.0: [900, 1100]}, True),
    # given out of order: sorted by wd, 0.1 -> 3000, 1 -> 2000, 10 -> 1000
    ({10.0: [1000], 0.1: [3000], 1.0: [2000]}, True),
    # wd 0.1 never, wd 1 -> 2000: falls from never
    ({0.1: [NONE], 1.0: [2000]}, True),
    # wd 0.1 -> 3000, wd 1 -> 5000: rose
    ({0.1: [3000], 1.0: [5000]}, False),
    # wd 1 never: later than wd 0.1's 3000
    ({0.1: [3000], 1.0: [NONE]}, False),
    # one weight decay only
    ({1.0: [1000, 2000]}, None),
    # none generalised
    ({0.1: [NONE], 1.0: [NONE]}, None),
])
def test_weight_decay_speeds_grokking(t_gen_by_wd, held):
    assert weight_decay_speeds_grokking(_lr_wd(t_gen_by_wd)).held is held


def test_weight_decay_speeds_grokking_numbers_and_a_sweep_without_the_grid():
    verdict = weight_decay_speeds_grokking(_lr_wd({0.1: [2000, 4000], 1.0: [1000, 1000]}))
    assert verdict.numbers == {"lr=0.01, wd=0.1: median t_gen": 3000.0,
                               "lr=0.01, wd=1: median t_gen": 1000.0}
    assert weight_decay_speeds_grokking(sweep({"t_gen": [100]})).held is None


# --- the structure claims read analysis.structure.summary of the sweep (from the dense runs'
# checkpoints), cached on the loaded sweep as ``_structure_summary``: here given by hand ---
def _structure(rows) -> SweepResults:
    loaded = sweep(study="structure")
    loaded._structure_summary = pd.DataFrame(rows)
    return loaded


@pytest.mark.parametrize("memorised, transition, held", [
    ([0.1, 0.2, 0.3], [0.4, 0.5, 0.2], True),    # larger for seeds 0, 1: 2 of 3 > half
    ([0.1, 0.5], [0.4, 0.2], False),             # 1 of 2: not most
    ([0.1, 0.2], [0.1, 0.1], False),             # 0 of 2 (equal is not larger)
    ([0.1, 0.2, 0.3], [0.4, math.nan, 0.1], False),  # seed 1 unknown: 1 of 2 known
    ([0.1, 0.2], [math.nan, math.nan], None),    # no dense run reached the transition
])
def test_structure_changes_most_in_transition(memorised, transition, held):
    loaded = _structure({"seed": range(len(memorised)), "jaccard_memorised": memorised,
                         "jaccard_transition": transition})
    assert structure_changes_most_in_transition(loaded).held is held


def test_structure_changes_numbers_and_a_summary_without_jaccard():
    loaded = _structure({"seed": [0, 1], "jaccard_memorised": [0.1, 0.2],
                         "jaccard_transition": [0.4, math.nan]})
    numbers = structure_changes_most_in_transition(loaded).numbers
    assert numbers == {"seed 0: Jaccard memorised / transition": "0.100 / 0.400",
                       "seed 1: Jaccard memorised / transition": "0.200 / -"}
    assert structure_changes_most_in_transition(_structure({})).held is None
    no_jaccard = _structure({"seed": [0], "entropy_half_drop_ticket": [100]})
    assert structure_changes_most_in_transition(no_jaccard).held is None


@pytest.mark.parametrize("ticket, dense, held", [
    ([100, 200, 900], [5000, 6000, 800], True),   # sooner for seeds 0, 1: 2 of 3
    ([7000, 9000], [5000, 6000], False),          # 0 of 2
    ([100, 9000], [5000, 6000], False),           # 1 of 2: not most
    ([500, 600], [500, 600], False),              # equal steps are not sooner
    ([NONE, 100], [5000, NONE], None),            # no seed with both known
])
def test_ticket_entropy_falls_sooner(ticket, dense, held):
    loaded = _structure({"seed": range(len(ticket)), "entropy_half_drop_ticket": ticket,
                         "entropy_half_drop_dense": dense})
    assert ticket_entropy_falls_sooner(loaded).held is held


def test_ticket_entropy_numbers_and_a_summary_without_entropy():
    loaded = _structure({"seed": [0, 1], "entropy_half_drop_ticket": [900, NONE],
                         "entropy_half_drop_dense": [800, 5000]})
    assert ticket_entropy_falls_sooner(loaded).numbers == {
        "seed 0: half-drop step ticket / dense": "900 / 800",
        "seed 1: half-drop step ticket / dense": "- / 5000"}
    assert ticket_entropy_falls_sooner(_structure({})).held is None
    no_entropy = _structure({"seed": [0], "jaccard_memorised": [0.1]})
    assert ticket_entropy_falls_sooner(no_entropy).held is None


# --- critical_ratio_near_paper: the largest rate with at least half the tickets generalised
# is in [0.7, 0.9] ---
@pytest.mark.parametrize("t_gen, largest, held", [
    # k=0.5: 2 of 2; k=0.8: 1 of 2 (half); k=0.9: 0 of 2 -> 0.8
    ({0.5: [100, 200], 0.8: [300, NONE], 0.9: [NONE, NONE]}, 0.8, True),
    # k=0.7: 2 of 2; k=0.8: 1 of 3 -> 0.7 (the lower bound counts)
    ({0.7: [100, 200], 0.8: [300, NONE, NONE]}, 0.7, True),
    # k=0.9: 2 of 2 -> 0.9 (the upper bound counts)
    ({0.5: [100, 200], 0.9: [300, 400]}, 0.9, True),
    # k=0.5: 2 of 2; k=0.6: 0 of 2 -> 0.5 < 0.7
    ({0.5: [100, 200], 0.6: [NONE, NONE]}, 0.5, False),
    # k=0.95: 1 of 2 -> 0.95 > 0.9
    ({0.5: [100], 0.95: [200, NONE]}, 0.95, False),
    # k=0.5: 1 of 3, k=0.8: 0 of 2: no rate with half generalised
    ({0.5: [100, NONE, NONE], 0.8: [NONE, NONE]}, None, None),
])
def test_critical_ratio_near_paper(t_gen, largest, held):
    rows = [{"pruning_rate": k, "t_gen": t} for k, values in t_gen.items() for t in values]
    verdict = critical_ratio_near_paper(sweep(rows))
    assert verdict.held is held
    assert verdict.numbers.get("largest k with half generalised") == largest


# --- l1_differs_where_l2_agrees: the ticket's median final L1 norm below every control's, its
# median L2 norm within 25 % of each control's ---
def _norms(ticket: tuple, *controls: tuple) -> SweepResults:
    """(L1, L2) norms: the ticket's and each control's, two seeds each at -+1 of them."""
    rows = [{"variant": variant, "final_l1_norm": l1 + d, "final_l2_norm": l2 + d / 10}
            for variant, (l1, l2) in [("grokking ticket", ticket),
                                      *[(f"control {i}", c) for i, c in enumerate(controls)]]
            for d in (-1, 1)]
    return sweep(rows)


@pytest.mark.parametrize("ticket, controls, held", [
    # L1 50 < 80, 90; L2 10 / 11 = 0.91 and 10 / 9 = 1.11: within 25 %
    ((50, 10), [(80, 11), (90, 9)], True),
    # L2 10 / 8 = 1.25: exactly 25 % off is within
    ((50, 10), [(80, 8)], True),
    # L1 85 > 80 (control 0)
    ((85, 10), [(80, 11), (90, 9)], False),
    # L1 80 == 80: not below
    ((80, 10), [(80, 10)], False),
    # L2 10 / 20 = 0.5: 50 % off
    ((50, 10), [(80, 20)], False),
    # L2 10 / 7 = 1.43 for control 1: 43 % off
    ((50, 10), [(80, 10), (90, 7)], False),
    # no control
    ((50, 10), [], None),
])
def test_l1_differs_where_l2_agrees(ticket, controls, held):
    assert l1_differs_where_l2_agrees(_norms(ticket, *controls)).held is held


def test_l1_l2_numbers_and_sweeps_without_norms_or_ticket():
    verdict = l1_differs_where_l2_agrees(_norms((50, 10), (80, 11), (90, 9)))
    assert verdict.numbers["ticket L2 / control L2"] == "0.91, 1.11"
    assert verdict.numbers["grokking ticket: final L1 / L2 norm"] == "50.0 / 10.00"
    no_norms = sweep({"variant": ["grokking ticket", "random"], "t_gen": [100, 200]})
    assert l1_differs_where_l2_agrees(no_norms).held is None
    no_ticket = sweep({"variant": ["a", "b"], "final_l1_norm": [1, 2], "final_l2_norm": [1, 2]})
    assert l1_differs_where_l2_agrees(no_ticket).held is None


# --- search_edge_near_paper: a critical-ratio search's fitted upper edge is in [0.7, 0.9] ---
RATES = (0.1, 0.3, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)


def _search(last_generalising: float) -> CriticalSearch:
    """A search over RATES, seeds 0 and 1: every member from k=0.3 up to ``last_generalising``
    generalised, none outside; the edges fitted by ``estimate_edges``."""
    members = pd.DataFrame([{"trial": f"k={k}", "seed": seed, "pruning_rate": k,
                             "generalised": 0.3 <= k <= last_generalising}
                            for seed in (0, 1) for k in RATES])
    return CriticalSearch(CRITICAL_RATIO_SEARCH, "/nowhere", {}, members,
                          estimate_edges(members), trials=len(RATES))


@pytest.mark.parametrize("last_generalising, held", [
    (0.8, True),   # generalised at 0.8, not at 0.85: the edge lies in (0.8, 0.85), inside
    (0.5, False),  # generalised at 0.5, not at 0.6: the edge in (0.5, 0.6), below 0.7
    (0.95, None),  # generalised at every rate up to 0.95: the edge lies above them all
])
def test_search_edge_near_paper_from_fitted_member_outcomes(last_generalising, held):
    search = _search(last_generalising)
    verdict = search_edge_near_paper(search)
    assert verdict.held is held
    assert verdict.numbers["mlp: finished trials / member outcomes"] == "9 / 18"
    if held is None:
        assert "not inside" in verdict.reason
    else:
        assert last_generalising < search.estimate.upper.estimate < last_generalising + 0.1


def _fitted(upper: ThresholdFit) -> CriticalSearch:
    """A search whose estimate is given (the upper edge ``upper``), not fitted."""
    lower = ThresholdFit(0.2, 0.1, 0.3, 10, width=0.01, falling=False)
    members = pd.DataFrame({"seed": [0] * 10, "pruning_rate": [0.5] * 10,
                            "generalised": [True] * 10})
    estimate = CriticalEstimate(upper, lower, pd.DataFrame(), [], members=10, trials=10)
    return CriticalSearch(CRITICAL_RATIO_SEARCH, "/nowhere", {}, members, estimate, trials=10)


@pytest.mark.parametrize("upper, held", [
    (ThresholdFit(0.81, 0.79, 0.83, 10, width=0.01), True),   # 0.81 in [0.7, 0.9]
    (ThresholdFit(0.7, 0.68, 0.72, 10, width=0.01), True),    # the bounds count
    (ThresholdFit(0.9, 0.88, 0.92, 10, width=0.01), True),
    (ThresholdFit(0.6, 0.58, 0.62, 10), False),               # below 0.7
    (ThresholdFit(0.93, 0.9, 0.95, 10), False),               # above 0.9
    (ThresholdFit(math.nan, 0.95, math.inf, 10, status="above"), None),
    (ThresholdFit(math.nan, -math.inf, 0.1, 10, status="below"), None),
    (ThresholdFit(math.nan, -math.inf, math.inf, 0, status="empty"), None),
])
def test_search_edge_near_paper_from_a_given_fit(upper, held):
    verdict = search_edge_near_paper(_fitted(upper))
    assert verdict.held is held
    assert verdict.numbers["mlp: upper edge (95 % interval)"] == upper.describe()
    assert verdict.numbers["mlp: lower edge (95 % interval)"] == "0.200 [0.100, 0.300]"
    assert verdict.numbers["mlp: finished trials / member outcomes"] == "10 / 10"


def test_a_search_where_no_ticket_ever_generalised_has_no_edge_in_the_band():
    # every member of every seed failed at every rate: no window, so the claim did not hold
    members = pd.DataFrame({"seed": [0, 1, 0, 1], "pruning_rate": [0.5, 0.5, 0.9, 0.9],
                            "generalised": [False] * 4})
    empty = ThresholdFit(math.nan, -math.inf, math.inf, 0, status="empty")
    estimate = CriticalEstimate(empty, empty, pd.DataFrame(), [0, 1], members=4, trials=2)
    never = CriticalSearch(CRITICAL_RATIO_SEARCH, "/nowhere", {}, members, estimate, trials=2)
    verdict = search_edge_near_paper(never)
    assert verdict.held is False
    assert verdict.numbers["mlp: upper edge (95 % interval)"] == (
        "no window: no ticket of any seed generalised at any rate searched (0.50-0.90)")
    # beside an MLP search whose edge is in the band, the transformer's lack of one decides
    both = CriticalSearches({"mlp": _fitted(ThresholdFit(0.81, 0.79, 0.83, 10, width=0.01)),
                             "transformer": never})
    assert search_edge_near_paper(both).held is False


# --- the registries: claims, figures and tables name studies the CLI runs ---
TESTED_JUDGES = {"ticket_vs_dense.<locals>.judge", "ticket_beats_variants",
                 "moderate_pruning_helps", "grokking_beats_non_grokking",
                 "edge_popup_beats_weight_decay", "weight_decay_speeds_grokking",
                 "structure_changes_most_in_transition", "ticket_entropy_falls_sooner",
                 "critical_ratio_near_paper", "l1_differs_where_l2_agrees",
                 "search_edge_near_paper"}


def test_every_verdict_function_of_the_claims_is_tested_here():
    assert {claim.judge.__qualname__ for claim in CLAIMS} == TESTED_JUDGES


@pytest.mark.parametrize("claim", CLAIMS, ids=lambda c: f"{c.figure} {c.study}")
def test_every_claim_names_a_study_or_the_critical_ratio_search(claim):
    assert claim.study in set(study_names()) | {CRITICAL_RATIO_SEARCH}
    assert claim.claim and claim.criterion and callable(claim.judge)


def test_the_critical_ratio_search_is_no_grid_study():
    assert CRITICAL_RATIO_SEARCH not in study_names()
    assert [c.judge for c in CLAIMS if c.study == CRITICAL_RATIO_SEARCH] == [
        search_edge_near_paper]


def test_study_figures_and_tables_are_keyed_by_real_study_names():
    studies = set(study_names())
    assert STUDY_FIGURES and set(STUDY_FIGURES) <= studies
    assert STUDY_TABLES and set(STUDY_TABLES) <= studies


def _of_model(search: CriticalSearch, model: str) -> CriticalSearch:
    search.spec = {"template": {"model": {"name": model}}}
    return search


@pytest.mark.parametrize("mlp_edge, transformer_edge, held", [
    (0.8, 0.8, True),    # both edges in (0.8, 0.85): inside [0.7, 0.9]
    (0.8, 0.5, False),   # the transformer's in (0.5, 0.6): below 0.7
    (0.5, 0.8, False),   # the MLP's below 0.7
    (0.8, 0.95, None),   # the transformer generalised at every rate searched: no edge
])
def test_search_edges_of_both_architectures(mlp_edge, transformer_edge, held):
    searches = CriticalSearches(mlp=_of_model(_search(mlp_edge), "mlp"),
                                transformer=_of_model(_search(transformer_edge), "transformer"))
    verdict = search_edge_near_paper(searches)
    assert verdict.held is held
    assert verdict.numbers["paper"] == 0.81
    assert {"mlp: upper edge (95 % interval)",
            "transformer: upper edge (95 % interval)"} <= set(verdict.numbers)
    assert set(searches.members["model"]) == {"mlp", "transformer"}
    assert len(searches.members) == 36


def test_an_operation_whose_dense_runs_never_generalised_is_not_testable():
    # add: grokking tickets 100, 300 (200) <= dense 500; x3_xy: every dense run never
    # generalised, so its tickets (which did, at 50 and 60) are non-grokking: not counted
    trials = {"trial": ["a", "x"], "task.op": ["add", "x3_xy"]}
    members = {"trial": ["a", "a", "x", "x"], "task.op": ["add", "add", "x3_xy", "x3_xy"],
               "seed": [0, 1, 0, 1], "pruning_rate": 0.6, "t_gen": [100, 300, 50, 60],
               "base_generalised": [True, True, False, False]}
    base = {"trial": ["a", "a", "x", "x"], "seed": [0, 1, 0, 1],
            "t_gen": [400, 600, NONE, NONE]}
    verdict = ticket_vs_dense(1)(sweep(members, base, trials))
    assert verdict.held is True
    assert verdict.numbers["x3_xy"].startswith("not testable")
    assert "x3_xy: ticket median t_gen" not in verdict.numbers
    assert "not testable: x3_xy" in verdict.reason
    # with no testable cell at all the claim cannot be told
    only_x = sweep({k: v[2:] if isinstance(v, list) else v for k, v in members.items()},
                   {k: v[2:] for k, v in base.items()}, {"trial": ["x"], "task.op": ["x3_xy"]})
    assert ticket_vs_dense(1)(only_x).held is None


def test_a_seed_whose_dense_run_never_generalised_is_left_out_of_its_cell():
    # seeds 0, 1 grokked (dense 1000, 3000; tickets 100, 200); seed 2's dense run never did, so
    # its (non-grokking) ticket and its dense run are left out: ticket median 150 and dense
    # median 2000 (not 200 and 3000): 150 * 10 <= 2000
    loaded = sweep({"seed": [0, 1, 2], "pruning_rate": 0.6, "t_gen": [100, 200, 5000],
                    "base_generalised": [True, True, False]},
                   base={"seed": [0, 1, 2], "t_gen": [1000, 3000, NONE]})
    verdict = ticket_vs_dense(10)(loaded)
    assert verdict.held is True
    assert verdict.numbers["all: ticket median t_gen"] == 150.0
    assert verdict.numbers["all: dense median t_gen"] == 2000.0
    assert verdict.numbers["all: seeds counted"].startswith("2 of 3 seeds")
