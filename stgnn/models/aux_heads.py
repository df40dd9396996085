"""Auxiliary multi-task heads of STGNN: predict the next check-in's category and region from ``u``.

As in GETNext, the per-sample query vector ``u`` (the one that scores every POI) also feeds a
linear classifier per auxiliary target; STGNN's training loss becomes

    ``NLL(target POI) + w_category * CE(category of the target POI) + w_region * CE(region of it)``.

The auxiliary labels are *functions of the label*: the target POI's category and grid region,
looked up in the model's POI tables, which the builder makes from the training inputs
(``ModelInputs.poi_category``; the training graph's ``poi.region``). They are used in the loss
only; :meth:`STGNN.score <stgnn.models.stgnn.STGNN.score>` ignores the heads, so the option is
pure multi-task regularisation of ``u``. POIs without a category or region (``-1``) are left out
of that term's mean. The loss is independent of the POI softmax, so it works the same under
sampled-softmax training (``num_sampled > 0``).

Option (``model_kwargs.aux``): ``{category: w_c, region: w_r}``, either key optional, weights
``>= 0``; a weight of 0 switches that head off (no parameters are made). The heads are created
last in :meth:`STGNN.prepare <stgnn.models.stgnn.STGNN.prepare>`, so every other module's
initialisation, and a seeded run without ``aux``, is unchanged.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stgnn.inputs import ModelInputs

AUX_TARGETS = ("category", "region")


def parse_aux(aux: Mapping[str, Any] | None) -> dict[str, float]:
    """``{target: weight}`` of the heads that are on (weight > 0), validated.

    Raises:
        ValueError: not a mapping, an unknown key, or a weight that is not a finite number >= 0.
    """
    if aux is None:
        return {}
    if not isinstance(aux, Mapping):
        raise ValueError(f"STGNN(aux={aux!r}): a mapping like {{category: 0.2, region: 0.2}}")
    out = {}
    for key, w in aux.items():
        if key not in AUX_TARGETS:
            raise ValueError(f"STGNN(aux): unknown key {key!r}; choose among {list(AUX_TARGETS)}")
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not (0 <= float(w) < float("inf")):
            raise ValueError(f"STGNN(aux.{key}={w!r}): the weight must be a finite number >= 0")
        if float(w) > 0:
            out[key] = float(w)
    return out


def aux_needs_graph(aux: Mapping[str, Any] | None) -> bool:
    """Whether the option needs the training graph (the POIs' regions live there)."""
    return "region" in parse_aux(aux)


class AuxHeads(nn.Module):
    """Linear classifiers on ``u`` and their weighted cross-entropy against the target POI's labels.

    Args:
        weights: ``{target: weight > 0}`` (:func:`parse_aux`).
        labels: ``{target: (P,) int64}`` label of each POI (``-1``: none), e.g. its category.
        num_classes: ``{target: number of classes}``.
        dim: width of ``u``.

    Shapes:
        ``logits(u (B, dim)) -> {target: (B, num_classes[target])}``;
        ``forward(u (B, dim), target_poi (B,)) -> ()`` the weighted sum of the mean cross-entropies.
    """

    def __init__(self, weights: Mapping[str, float], labels: Mapping[str, Tensor],
                 num_classes: Mapping[str, int], dim: int) -> None:
        super().__init__()
        if not weights:
            raise ValueError("AuxHeads needs at least one target with a weight > 0")
        self.weights = dict(weights)
        self.heads = nn.ModuleDict()
        for t in AUX_TARGETS:                 # a fixed order, so the initialisation is reproducible
            if t not in self.weights:
                continue
            lab = labels[t].long().clone()                # its own copy: never an alias of the inputs
            lo, hi = (int(lab.min()), int(lab.max())) if lab.numel() else (None, None)
            if num_classes[t] < 1 or lo is None or hi >= num_classes[t] or lo < -1:
                raise ValueError(f"aux {t}: labels must lie in [-1, {num_classes[t]}), got [{lo}, {hi}]")
            self.register_buffer(f"{t}_of_poi", lab, persistent=False)   # rebuilt by prepare from the inputs
            self.heads[t] = nn.Linear(dim, num_classes[t])

    @classmethod
    def for_model(cls, inputs: ModelInputs, weights: Mapping[str, float], dim: int) -> "AuxHeads":
        """Heads for ``weights`` with labels from ``inputs``: ``poi_category`` and the training
        graph's ``poi.region``.

        Raises:
            ValueError: a region head is asked for but the inputs have no graph with regions.
        """
        labels, sizes = {}, {}
        if "category" in weights:
            labels["category"], sizes["category"] = inputs.poi_category, inputs.num_categories
        if "region" in weights:
            g = inputs.graph
            if g is None or "region" not in g["poi"] or "region" not in g.node_types:
                raise ValueError("STGNN(aux.region): these inputs have no POI regions (they come with the "
                                 "training graph); build them with STGNN.input_spec(aux=...) or drop 'region'")
            labels["region"], sizes["region"] = g["poi"].region, g["region"].num_nodes
        return cls(weights, labels, sizes, dim)

    def logits(self, u: Tensor) -> dict[str, Tensor]:
        return {t: head(u).float() for t, head in self.heads.items()}

    def forward(self, u: Tensor, target_poi: Tensor) -> Tensor:
        total = u.new_zeros((), dtype=torch.float32)
        for t, z in self.logits(u).items():
            y = getattr(self, f"{t}_of_poi")[target_poi]                     # (B,) -1: no label
            n = (y >= 0).sum().clamp(min=1)                                  # a batch without labels adds 0
            total = total + self.weights[t] * F.cross_entropy(z, y, ignore_index=-1, reduction="sum") / n
        return total

    def extra_repr(self) -> str:
        return f"weights={self.weights}"


__all__ = ["AUX_TARGETS", "AuxHeads", "aux_needs_graph", "parse_aux"]
