"""``grok train RECIPE``: one experiment (a cohort of seeds x pruning rates) without Ray.

Every check the user's input can fail runs before torch loads. Dense runs go to the artifact
store under ``--storage`` (the one ``grok sweep`` uses, so either reuses the other's runs); the
outputs (config, member and curve tables, ``curves.png``) go to ``--out``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
from typing import Optional, Sequence

from analysis.figures import accuracy_curves_png
from grok_core.config import RECIPES, ExperimentConfig, choice, plain_value
from grok_core.layout import (BASE_CURVES_FILE, BASE_MEMBERS_FILE, CURVES_FILE, MEMBERS_FILE,
                              RUN_CONFIG_FILE, TRAIN_FIGURE_FILE, TRAIN_OUT_DIR)
from grok_core.store import ArtifactStore, Storage

from ._common import UsageError, add_overrides, add_storage, parse_rates, parse_seeds

log = logging.getLogger("grok")
DENSE_HAS_NO_RATE = "--rates: a dense run has no pruning rate; use the ticket recipe"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``grok train``."""
    parser.add_argument("recipe", help=f"one of: {', '.join(RECIPES)}")
    parser.add_argument("--seeds", default="0", help="model seeds, e.g. 0,1,2 or 0-4 (default 0)")
    parser.add_argument("--rates", default=None,
                        help="ticket pruning rates, e.g. 0.5,0.6 (default: prune.rate)")
    add_overrides(parser, "override a setting (repeatable); see `grok keys`")
    parser.add_argument("--out", default=None,
                        help=f"output directory (default {TRAIN_OUT_DIR}/<recipe>-<config hash>)")
    add_storage(parser)
    parser.add_argument("--store", dest="storage", default=argparse.SUPPRESS,
                        action=DeprecatedAlias, help="deprecated spelling of --storage")
    parser.add_argument("--json", action="store_true",
                        help="print the member rows as a JSON list on stdout (nothing else)")
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


class DeprecatedAlias(argparse.Action):
    """An option kept under an old name: stores its value and says which name replaced it."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        log.warning(f"note: {option_string} is deprecated; use --{self.dest}")
        setattr(namespace, self.dest, values)


def default_out(config: ExperimentConfig, seeds: Sequence[int],
                rates: Optional[Sequence[float]]) -> str:
    """Output directory named by what was run (never by time, so reruns land in one place)."""
    identity = json.dumps({"config": config.to_dict(), "seeds": list(seeds),
                           "rates": list(rates or [])}, sort_keys=True)
    digest = hashlib.sha256(identity.encode()).hexdigest()[:12]
    return os.path.join(TRAIN_OUT_DIR, f"{config.recipe}-{digest}")


def _resolve_device(name: str) -> str:
    choice("--device", name, ("auto", "cpu", "cuda"))
    if name == "cuda":
        import torch  # heavy: only to check that CUDA is there

        if not torch.cuda.is_available():
            raise UsageError("--device cuda: no CUDA device is available here")
    return name


def _prepare(args: argparse.Namespace):
    """Every check a user's input can fail, before any work: config, seeds, rates, device,
    output directory and store."""
    choice("recipe", args.recipe, RECIPES)
    config = ExperimentConfig().with_overrides([f"recipe={args.recipe}", *args.overrides])
    seeds = parse_seeds(args.seeds)
    rates = parse_rates(args.rates) if args.rates is not None else None
    if rates is not None and config.recipe == "dense":
        raise UsageError(DENSE_HAS_NO_RATE)
    device = _resolve_device(args.device)
    out = Storage(args.out or default_out(config, seeds, rates))
    store = ArtifactStore(args.storage)
    out.check_writable()
    store.check_writable()
    return config, seeds, rates, device, out, store


def _table(frame, columns: Sequence[str]) -> str:
    shown = frame[[c for c in columns if c in frame.columns]].copy()
    return shown.to_string(index=False, na_rep="-", float_format=lambda v: f"{v:.4g}")


def _write_outputs(out: Storage, config: ExperimentConfig, seeds, rates, result) -> None:
    """config.json, members / curves parquet (and the dense runs' for tickets), curves.png."""
    import torch  # loaded by the run already

    out.write_json({"config": config.to_dict(), "seeds": seeds, "rates": rates,
                    "dense_key": result.dense_key, "torch": torch.__version__}, RUN_CONFIG_FILE)
    out.write_parquet(result.members, MEMBERS_FILE)
    out.write_parquet(result.curves, CURVES_FILE)
    if result.base_members is not None:
        out.write_parquet(result.base_members, BASE_MEMBERS_FILE)
        out.write_parquet(result.base_curves, BASE_CURVES_FILE)
    title = f"{config.recipe}: {config.task.op} mod {config.task.p}, {config.model.name}"
    out.write_bytes(accuracy_curves_png(result.curves, result.base_curves, title=title),
                    TRAIN_FIGURE_FILE)


def _print_result(result, as_json: bool, columns: Sequence[str]) -> None:
    """The member table on stdout (tickets: their dense runs first), or JSON rows."""
    if as_json:
        print(json.dumps([{c: plain_value(row[c]) for c in columns if c in row}
                          for row in result.members.to_dict("records")]))
        return
    if result.base_members is not None:
        print("dense runs behind the tickets:")
        print(_table(result.base_members, columns))
        print(f"\n{result.recipe}:")
    print(_table(result.members, columns))


def run(args: argparse.Namespace) -> int:
    """Validate everything, run, write outputs, print the member table."""
    config, seeds, rates, device, out, store = _prepare(args)
    # torch only now: bad input never waits for it
    from grok_core.recipes import MEMBER_COLUMNS, run_recipe

    result = run_recipe(config, seeds, store, rates=rates, device=device,
                        progress=not args.no_progress)
    _write_outputs(out, config, seeds, rates, result)
    log.info(f"wrote {MEMBERS_FILE}, {CURVES_FILE} and {TRAIN_FIGURE_FILE} to {out.display()}")
    _print_result(result, args.json, MEMBER_COLUMNS)
    return 0
