"""Speed of the engine against the authors' training loop, per member, one thread, side by side.

For each model of the paper's modular-addition runs (p=67, fraction 0.4, pairs i <= j, full
batch, AdamW lr 1e-3 wd 1): the authors' loop (``authors_loop.py``: their step, rewritten on the
CPU) and this engine at cohorts of K = 1, 8 and 32 members, interleaved over ``--repeats`` rounds
so that machine noise hits all alike. Prints member-steps/s (medians), the ratio to the authors'
loop (targets: MLP >= 40x at K=1 and K=8, transformer >= 20x), both as the ratio of the medians
and as the median of the rounds' own ratios (paired: both timed within seconds, so free of the
machine's drift between rounds), and the fraction of the compute floor: the engine's
floating-point work per member-step (its matmuls, counted from the shapes, evaluation included)
at this core's fp32 matmul peak (a 1024^3 matmul, measured in the same run).

    OMP_NUM_THREADS=1 python benchmarks/bench_engine.py [--steps 600] [--repeats 3]
                                                       [--models mlp,transformer] [--cohorts 1,8,32]
                                                       [--before REV]

``--before REV`` also times the engine of git revision REV (its ``grok_core``, imported beside
this one), alternating with this tree's in every round (each first in every other round, as the
first of two identical runs measured ~3% slower), and prints the median of the paired after /
before ratios: on a shared machine whose speed drifts, the only stable before/after.
"""
from __future__ import annotations

import argparse
import importlib
import io
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from authors_loop import authors_steps_per_second  # noqa: E402

from grok_core import native  # noqa: E402
from grok_core.config import ExperimentConfig  # noqa: E402
from grok_core.tasks import build_dataset  # noqa: E402
from grok_core.training import MemberSpec, train_cohort  # noqa: E402

MODELS = {
    "mlp": [],
    "transformer": ["model.name=transformer", "model.pos_embed=false", "model.biases=false"],
}
AUTHORS_STEPS = {"mlp": 100, "transformer": 80}  # their loop runs ~30 steps/s here


THIS_ENGINE = (ExperimentConfig, MemberSpec, train_cohort)


def engine_member_steps_per_second(model: str, steps: int, members: int,
                                   engine: tuple = THIS_ENGINE) -> float:
    """Member-steps/s of ``members`` dense members trained together for ``steps`` steps (data
    built and the last evaluation included, as in a run), by ``engine`` (its ExperimentConfig,
    MemberSpec and train_cohort; this tree's by default)."""
    config_class, member_class, train = engine
    config = config_class().with_overrides([f"train.steps={steps}", *MODELS[model]])
    start = time.perf_counter()
    train(config, [member_class(seed=s) for s in range(members)])
    return steps * members / (time.perf_counter() - start)


def engine_at(revision: str, folder: Path) -> tuple:
    """(ExperimentConfig, MemberSpec, train_cohort) of ``grok_core`` as it was at git
    ``revision``, unpacked into ``folder`` as the package ``grok_core_before`` (its imports
    are relative, so it runs beside this tree's)."""
    root = Path(__file__).resolve().parent.parent
    archive = subprocess.run(["git", "archive", revision, "grok_core"], cwd=root, check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    (folder / "grok_core").rename(folder / "grok_core_before")
    sys.path.insert(0, str(folder))
    config = importlib.import_module("grok_core_before.config")
    training = importlib.import_module("grok_core_before.training")
    return config.ExperimentConfig, training.MemberSpec, training.train_cohort


def flops_per_member_step(model: str) -> float:
    """Matmul FLOPs of one member-step of the engine at the paper's size (forward, backward and
    the test evaluation every ``train.eval_every`` steps), from the shapes."""
    config = ExperimentConfig().with_overrides(MODELS[model])
    data = build_dataset(config.task)
    n_train, n_test, vocab, c = len(data.train), len(data.test), data.vocab, data.classes
    d, h = config.model.emb_width, config.model.hidden_width
    if model == "mlp":  # tables W_emb W_in, W_out W_unemb; per example [N, h] x [h, C]
        tables, per_example = 2 * (vocab * d * h), h * c
        backward_tables = 4 * (vocab * d * h)
    else:  # tables: V O; T [Q | K | V O | M] (M = [W_in | W_U]); F = G M; Q K^T; W_out W_U
        wide = 3 * d + h + c
        tables = d * d * d + vocab * d * wide + vocab * d * (h + c) + vocab * vocab * d + h * d * c
        # d Q, d K0 (vocab^2 d); d G = d F M^T; d B = T^T d P and d T = d P B^T; d M += G^T d F;
        # d W_V, d W_O (d^3 each); d W_out, d W_U (h d C each)
        backward_tables = (2 * vocab * vocab * d + 2 * vocab * (h + c) * d + 2 * vocab * wide * d
                           + 2 * d * d * d + 2 * h * d * c)
        per_example = h * c
    forward = 2 * (tables + n_train * per_example)
    backward = 2 * (backward_tables + 2 * n_train * per_example)
    evaluation = 2 * (tables + n_test * per_example) / config.train.eval_every
    return forward + backward + evaluation


def paired_ratios(engine: list[float], authors: list[float]) -> tuple[float, float, float]:
    """(lowest, median, highest) of the rounds' engine / authors' ratios. Each round times both
    within seconds of each other, so a round's ratio is free of the machine's drift over the
    run, which the ratio of the two medians is not (the medians may come from rounds an hour
    apart, with the machine at other speeds)."""
    ratios = sorted(e / a for e, a in zip(engine, authors))
    return ratios[0], statistics.median(ratios), ratios[-1]


def matmul_peak_flops() -> float:
    """fp32 FLOP/s of a 1024 x 1024 x 1024 matmul on this thread (best of 5)."""
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * 1024 ** 3 / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600, help="engine steps per timing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default="mlp,transformer")
    parser.add_argument("--cohorts", default="1,8,32")
    parser.add_argument("--before", metavar="REV", help="also time the engine of this git "
                        "revision, alternating, and print paired after / before ratios")
    args = parser.parse_args()
    torch.set_num_threads(1)
    models, cohorts = args.models.split(","), [int(k) for k in args.cohorts.split(",")]
    before = engine_at(args.before, Path(tempfile.mkdtemp())) if args.before else None
    results: dict[tuple[str, str], list[float]] = {}
    peaks = []
    for round_ in range(args.repeats):  # interleaved, so machine noise hits all alike
        peaks.append(matmul_peak_flops())
        for model in models:
            results.setdefault((model, "authors"), []).append(
                authors_steps_per_second(model, AUTHORS_STEPS[model]))
            for k in cohorts:
                steps = max(20, args.steps // max(1, k // 8))
                engines = [(f"K={k}", THIS_ENGINE)] + ([(f"before K={k}", before)]
                                                       if before else [])
                if round_ % 2:  # each tree first in every other round: no order bias
                    engines.reverse()
                for key, engine in engines:
                    results.setdefault((model, key), []).append(
                        engine_member_steps_per_second(model, steps, k, engine))
    peak = statistics.median(peaks)
    print(f"fp32 matmul peak of this thread: {peak / 1e9:.1f} GFLOP/s (median of "
          f"{args.repeats}); member-steps/s are medians of {args.repeats}; compiled kernels "
          f"(grok_core.native): {'on' if native.available() else 'off'}")
    for model in models:
        authors = statistics.median(results[(model, "authors")])
        floor = peak / flops_per_member_step(model)
        print(f"{model}: authors' loop {authors:7.1f} steps/s; compute floor {floor:7.0f} "
              f"member-steps/s ({flops_per_member_step(model) / 1e6:.0f} MFLOP per step)")
        for k in cohorts:
            value = statistics.median(results[(model, f"K={k}")])
            low, paired, high = paired_ratios(results[(model, f"K={k}")],
                                              results[(model, "authors")])
            print(f"  engine K={k:<3d} {value:8.1f} member-steps/s  {value / authors:5.1f}x the "
                  f"authors' loop (paired {paired:5.1f}x, rounds {low:.1f}-{high:.1f})  "
                  f"{value / floor:5.1%} of the floor")
            if before:
                old = results[(model, f"before K={k}")]
                ratios = [a / b for a, b in zip(results[(model, f"K={k}")], old)]
                print(f"    {args.before} K={k:<3d} {statistics.median(old):8.1f} member-steps/s"
                      f"  {statistics.median(old) / authors:5.1f}x; paired after / before "
                      f"{statistics.median(ratios):.2f} ({', '.join(f'{r:.2f}' for r in ratios)})")
    print("targets: mlp >= 40x at K=1 and K=8; transformer >= 20x")


if __name__ == "__main__":
    main()
