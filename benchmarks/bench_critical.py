"""How well does a search locate a planted critical pruning ratio? (no training; seconds each)

Each replication plants P(generalise | k) = 1 / (1 + exp((k - r*) / w)) with r* drawn from
U(0.70, 0.85) and a small width w, and gives every method the same number of single-member
evaluations over [0.5, 0.95]:

* threshold: our ``ThresholdSampler``; the estimate and its 95 % interval from ``fit_threshold``
  over every outcome (what ``grok critical-ratio`` reports);
* tpe-best: Optuna's TPE maximising "k if it generalised, else 0", its best trial taken as the
  answer (the usual way to "search the critical ratio with Optuna");
* grid: evenly spaced rates, then the same fit as ours (a non-adaptive design).

Prints per method: median absolute error, the share of replications within 0.01 and 0.005,
and how often the 95 % interval covers r*. Target (the issue): ours within 0.01 in >= 90 %
of replications with <= 60 evaluations, median error well under 0.005, coverage near 95 %.

    OMP_NUM_THREADS=1 python benchmarks/bench_critical.py [--reps 200] [--evals 60] [--width 0.002]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import optuna

from analysis.critical_ratio import fit_threshold
from sweeps.critical_ratio_sampler import ThresholdSampler, trial_outcomes

LOW, HIGH = 0.5, 0.95


def planted(r_star: float, width: float, rng: np.random.Generator):
    """One stochastic outcome per call: generalised with the planted logistic probability."""
    def objective(trial: optuna.Trial) -> float:
        rate = trial.suggest_float("pruning_rate", LOW, HIGH)
        return float(rng.random() < 1 / (1 + np.exp((rate - r_star) / width)))
    return objective


def run_threshold(r_star, width, evals, seed):
    study = optuna.create_study(direction="maximize", sampler=ThresholdSampler(LOW, HIGH, seed))
    study.optimize(planted(r_star, width, np.random.default_rng(seed)), n_trials=evals)
    fit = fit_threshold(*trial_outcomes(study.trials))
    return fit.estimate, fit.ci_low, fit.ci_high


def run_tpe_best(r_star, width, evals, seed):
    rng = np.random.default_rng(seed)
    outcome = planted(r_star, width, rng)

    def objective(trial):
        generalised = outcome(trial)
        return trial.params["pruning_rate"] if generalised else 0.0

    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=evals)
    return study.best_value, float("nan"), float("nan")


def run_grid(r_star, width, evals, seed):
    rng = np.random.default_rng(seed)
    rates = np.linspace(LOW, HIGH, evals)
    outcomes = rng.random(evals) < 1 / (1 + np.exp((rates - r_star) / width))
    fit = fit_threshold(rates, outcomes)
    return fit.estimate, fit.ci_low, fit.ci_high


METHODS = {"threshold": run_threshold, "tpe-best": run_tpe_best, "grid": run_grid}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--evals", type=int, default=60)
    parser.add_argument("--width", type=float, default=0.002)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    planted_rates = np.random.default_rng(2026).uniform(0.70, 0.85, args.reps)
    print(f"{args.reps} replications, {args.evals} single-member evaluations each, "
          f"r* ~ U(0.70, 0.85), width {args.width}")
    print(f"{'method':10s} {'median err':>10s} {'<=0.01':>7s} {'<=0.005':>8s} "
          f"{'covers r*':>9s} {'s/rep':>6s}")
    for name, method in METHODS.items():
        errors, covered, started = [], [], time.perf_counter()
        for rep, r_star in enumerate(planted_rates):
            estimate, low, high = method(r_star, args.width, args.evals, rep)
            errors.append(abs(estimate - r_star) if estimate == estimate else 1.0)
            covered.append(low <= r_star <= high)
        errors_arr = np.asarray(errors)
        coverage = f"{np.mean(covered):9.2f}" if name != "tpe-best" else f"{'-':>9s}"
        print(f"{name:10s} {statistics.median(errors):10.4f} {np.mean(errors_arr <= 0.01):7.2f} "
              f"{np.mean(errors_arr <= 0.005):8.2f} {coverage} "
              f"{(time.perf_counter() - started) / args.reps:6.2f}", flush=True)


if __name__ == "__main__":
    main()
