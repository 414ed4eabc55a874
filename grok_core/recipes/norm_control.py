"""Recipe ``norm_control``: dense theta_0 rescaled to a ticket's L1 or L2 norm (Fig. 5a).

The control tells weight norm apart from structure: same initial norm as the ticket, no mask.
"""
from __future__ import annotations

from typing import Sequence

from ..config import ExperimentConfig
from ..store import ArtifactStore
from ..training import MemberSpec
from .base import Recipe, global_norm, model_for
from .ticket import ticket_members


def norm_control_members(config: ExperimentConfig, seeds: Sequence[int],
                         rates: Sequence[float], store: ArtifactStore) -> list[MemberSpec]:
    """The norm-matched dense controls of the tickets ``ticket_members`` would build: for each
    (seed, rate), the dense theta_0 with its prunable tensors scaled by
    r = ||theta_0 * m|| / ||theta_0|| (``norm_control.norm``: L1 or L2 over the prunable
    tensors), so its initial norm equals the ticket's exactly; no mask."""
    norm = config.norm_control.norm
    prunable = model_for(config).prunable
    controls = []
    for ticket in ticket_members(config, seeds, rates, store):
        theta_0 = {n: ticket.init[n] for n in prunable}
        kept = {n: ticket.init[n] * ticket.mask[n] for n in prunable}
        ratio = global_norm(kept, norm) / global_norm(theta_0, norm)
        init = {n: (t * ratio if n in prunable else t.clone()) for n, t in ticket.init.items()}
        controls.append(MemberSpec(seed=ticket.seed, init=init, mask=None,
                                   labels={**ticket.labels, "norm_ratio": ratio}))
    return controls


class NormControl(Recipe):
    """Dense theta_0 scaled to the norm of the ticket it controls for."""

    name = "norm_control"
    description = "dense theta_0 rescaled to each ticket's L1 or L2 norm (no mask)"

    def members(self, config, seeds, rates, store):
        return norm_control_members(config, seeds, rates, store)


NORM_CONTROL = NormControl()
