"""The benchmark scripts that the README quotes: what they count and that their CPU path runs."""
import importlib.util
from pathlib import Path

from grok_core.layout import CRITICAL_RATIO_SEARCH

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_reproduction_estimate_counts_each_member_and_dense_run_of_the_full_study():
    estimate = _script("estimate_reproduction")
    members, dense = estimate.work("headline")  # 3 seeds at k=0.6, 30k steps each
    assert [steps for _, steps in members] == [3 * 30_000]
    assert sorted(seed for _, seed in dense) == [0, 1, 2]
    assert {steps for _, steps in dense.values()} == {30_000}
    members, dense = estimate.work(CRITICAL_RATIO_SEARCH)  # 40 trials of 3 seeds
    assert [steps for _, steps in members] == [40 * 3 * members[0][0].train.steps]
    # the grid study of the same dense runs shares them (the store trains each once)
    assert set(dense) <= set(estimate.work("critical_ratio")[1])
    # the transformer's search: its own trials and budget, the transformer study's dense runs
    members, dense = estimate.work(f"{CRITICAL_RATIO_SEARCH}-transformer")
    assert [(config.model.name, steps) for config, steps in members] == [
        ("transformer", 12 * 3 * 10_000)]
    assert set(dense) == set(estimate.work("transformer")[1])


def test_the_engine_benchmark_counts_the_floor_and_runs_the_authors_step():
    bench = _script("bench_engine")
    # the MLP's matmuls per member-step: ~37 MFLOP of training, plus evaluation
    assert 35e6 < bench.flops_per_member_step("mlp") < 45e6
    assert bench.flops_per_member_step("transformer") > bench.flops_per_member_step("mlp")
    authors = _script("authors_loop")
    for model in ("mlp", "transformer"):
        assert authors.authors_steps_per_second(model, 2) > 0
    train, test = authors.pairs_split()
    assert (len(train), len(test)) == (911, 1367)  # p=67, i <= j, fraction 0.4


def test_the_engine_benchmark_pairs_each_rounds_engine_with_that_rounds_authors_loop():
    """The machine slows down over three rounds, both timings with it: the ratio of the medians
    (60 / 8 = 7.5x) mixes rounds, the rounds' own ratios say 10x, 10x and 5x."""
    bench = _script("bench_engine")
    assert bench.paired_ratios([100.0, 60.0, 40.0], [10.0, 6.0, 8.0]) == (5.0, 10.0, 10.0)


def test_the_engine_benchmark_times_a_git_revisions_engine_beside_this_one(tmp_path):
    bench = _script("bench_engine")
    config_class, member_class, train = bench.engine_at("HEAD", tmp_path)
    assert Path(train.__code__.co_filename).is_relative_to(tmp_path)  # not this tree's
    assert bench.engine_member_steps_per_second("mlp", 3, 2,
                                                (config_class, member_class, train)) > 0


def test_the_gpu_throughput_cohort_also_runs_on_the_cpu():
    rate = _script("gpu_throughput").cohort_rate("cpu", members=3, steps=5)
    assert rate > 0
