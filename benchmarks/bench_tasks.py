"""Speed of the feature-vector MLPs (digits, polynomial, parity) against a plain PyTorch loop of
the same net.

(a) plain: ``nn.Sequential`` of ``nn.Linear`` / ``nn.ReLU`` with the task's widths and biases,
    ``torch.optim.AdamW`` (or ``torch.optim.SGD`` for parity), the task's loss (MSE against
    one-hot targets for digits, against the value for polynomial, the binary hinge for parity),
    full batch or parity's minibatches of 32; the same measurements as the engine: train
    accuracy of every full-batch step, and every 100 steps the test split (with minibatches
    the whole training split too, as t_mem then needs it);
(b) this engine, one member (K=1); (c) a cohort of K=8 (member-steps per second).
Same data, widths, init and optimiser settings, side by side on one thread, interleaved over
repeats; prints member-steps/s, the ratios, and achieved GFLOP/s (6 x multiply-adds of the
layers per example: forward and backward).

    OMP_NUM_THREADS=1 python benchmarks/bench_tasks.py [--task digits] [--steps 200] [--repeats 3]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn as nn

from grok_core.config import ExperimentConfig
from grok_core.models import VECTOR_MLP_LAYOUTS
from grok_core.tasks import build_dataset
from grok_core.training import MemberSpec, minibatch, train_cohort

SETTINGS = {
    "digits": ["task.name=digits", "model.init_scale=8", "train.loss=mse",
               "optim.weight_decay=0.01", "train.eval_every=100"],
    "polynomial": ["task.name=polynomial", "optim.lr=0.01", "train.eval_every=100"],
    "parity": ["task.name=parity", "optim.name=sgd", "optim.lr=0.1", "optim.weight_decay=0.01",
               "train.batch_size=32", "train.loss=hinge", "train.eval_every=100"],
}


def plain_network(config: ExperimentConfig, features: int, classes: int) -> nn.Sequential:
    """The task's MLP as ``nn.Sequential``, initialised as the engine's."""
    widths, biases = VECTOR_MLP_LAYOUTS[config.task.name]
    sizes = (features, *widths, classes)
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(sizes, sizes[1:]):
        layers += [nn.Linear(fan_in, fan_out, bias=biases), nn.ReLU()]
    net = nn.Sequential(*layers[:-1])
    with torch.no_grad():
        for layer in net[::2]:
            layer.weight.normal_(0, config.model.init_scale / layer.in_features ** 0.5)
            if biases:
                layer.bias.zero_()
    return net


def plain_loss(config: ExperimentConfig, outputs: torch.Tensor, labels: torch.Tensor):
    """The task's loss written with plain tensor operations."""
    if config.task.regression:
        return nn.functional.mse_loss(outputs.squeeze(-1), labels)
    if config.loss == "hinge":  # two classes: max(0, 1 - y (z_1 - z_0))
        sign = labels.float() * 2 - 1
        return torch.relu(1 - sign * (outputs[:, 1] - outputs[:, 0])).mean()
    target = nn.functional.one_hot(labels, outputs.shape[-1]).float()
    return nn.functional.mse_loss(outputs, target)


def plain_steps_per_second(task: str, steps: int) -> float:
    config = ExperimentConfig().with_overrides(SETTINGS[task])
    data = build_dataset(config.task)
    torch.manual_seed(0)
    net = plain_network(config, data.vocab, data.classes)
    optim = config.optim
    if optim.name == "sgd":
        optimizer = torch.optim.SGD(net.parameters(), lr=optim.lr, weight_decay=optim.weight_decay)
    else:
        optimizer = torch.optim.AdamW(net.parameters(), lr=optim.lr,
                                      weight_decay=optim.weight_decay, betas=(0.9, 0.98))
    batched = config.train.batch_size is not None
    start = time.perf_counter()
    for step in range(steps):
        batch = minibatch(data.train, config.train.batch_size, step, 0)
        outputs = net(batch.inputs)
        loss = plain_loss(config, outputs, batch.labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if not batched:  # train accuracy of every step, as t_mem needs (the engine's too)
            (outputs.detach().argmax(-1) == batch.labels).float().mean()
        if step % 100 == 0:  # with minibatches the whole training split is measured too
            with torch.no_grad():
                for split in ((data.train, data.test) if batched else (data.test,)):
                    net(split.inputs).sum().item()
    return steps / (time.perf_counter() - start)


def engine_member_steps_per_second(task: str, steps: int, members: int) -> float:
    config = ExperimentConfig().with_overrides([*SETTINGS[task], f"train.steps={steps}"])
    start = time.perf_counter()
    train_cohort(config, [MemberSpec(seed=s) for s in range(members)])
    return steps * members / (time.perf_counter() - start)


def flops_per_member_step(task: str) -> float:
    """6 x the multiply-adds of the layers, per example of a step."""
    config = ExperimentConfig().with_overrides(SETTINGS[task])
    data = build_dataset(config.task)
    widths, _ = VECTOR_MLP_LAYOUTS[task]
    sizes = (data.vocab, *widths, data.classes)
    examples = config.train.batch_size or len(data.train)
    return 6 * examples * sum(a * b for a, b in zip(sizes, sizes[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(SETTINGS), default="digits")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    results: dict[str, list[float]] = {"plain": [], "engine K=1": [], "engine K=8": []}
    for _ in range(args.repeats):  # interleaved, so machine noise hits all three alike
        results["plain"].append(plain_steps_per_second(args.task, args.steps))
        results["engine K=1"].append(engine_member_steps_per_second(args.task, args.steps, 1))
        results["engine K=8"].append(engine_member_steps_per_second(args.task, args.steps, 8))
    flops = flops_per_member_step(args.task)
    median = {name: statistics.median(v) for name, v in results.items()}
    print(f"task {args.task}, {args.steps} steps")
    for name, value in median.items():
        print(f"{name:12s} {value:8.1f} member-steps/s  {value * flops / 1e9:5.1f} GFLOP/s "
              f"(median of {args.repeats})")
    for name in ("engine K=1", "engine K=8"):
        print(f"ratio {name} / plain: {median[name] / median['plain']:.2f}x (target >= 1)")


if __name__ == "__main__":
    main()
