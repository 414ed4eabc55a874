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


def test_the_gpu_throughput_cohort_also_runs_on_the_cpu():
    rate = _script("gpu_throughput").cohort_rate("cpu", members=3, steps=5)
    assert rate > 0
