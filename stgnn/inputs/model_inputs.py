"""What a model consumes besides batches: :class:`ModelInputs`, asked for with an :class:`InputSpec`.

A model never reads a :class:`~stgnn.data.split.Split`. The builder
(:func:`stgnn.inputs.build.build_inputs`) turns the split into a :class:`ModelInputs` once per
run: id-space sizes, POI metadata, training-period statistics, and the expensive parts the
model's capability flags ask for (the leakage-safe graph, transition snapshots, POI text
vectors). ``Recommender.from_inputs(inputs, **kwargs)`` builds a model from it.

The object is saved beside a run's checkpoint (``inputs.pt``, tensors only, loaded with
``weights_only=True``), so a trained model can be rebuilt for serving without its split.
"""
from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from stgnn.features.history import VisibleCounts
from stgnn.utils.io import atomic_write_bytes

INPUTS_FILE = "inputs.pt"
INPUTS_FORMAT_VERSION = 1


@dataclass(frozen=True)
class InputSpec:
    """What a model asks the builder for (``Recommender.input_spec(**kwargs)`` makes it).

    Args:
        graph: the heterogeneous training graph (:func:`stgnn.graph.hetero.build_hetero_graph`
            of ``part == 0`` check-ins).
        snapshots: number of weekly POI-transition snapshots of the training period
            (:func:`stgnn.graph.snapshots.transition_snapshots`); 0: none.
        snapshot_days: window (and stride) of the snapshots.
        dist_table_max_pois: build the ``(P, P)`` uint8 POI distance-bucket table
            (:func:`stgnn.features.space.dist_bucket_table`) when ``P`` is at most this (0: never).
        text: a text-encoder spec (:func:`stgnn.features.text.make_text_encoder`) whose vectors of
            the POIs' texts the model reads; ``None``: no text vectors.
        text_profile: embed the templated training-period POI profile rather than the bare name
            (``"neighbours"``: the profile + its training predecessors' and successors' categories).
        visible_counts: the index that counts popularity and transitions per sample as of its
            query time under the split's history setting
            (:class:`~stgnn.features.history.VisibleCounts`; the one input that holds val/test
            check-ins, each readable only by samples scored after it).
        intent: a text-encoder spec for the per-sample intent text (:mod:`stgnn.features.intent`):
            the builder records the POI labels the model renders with and fills the encoder's
            vector cache with every sample's text; ``None``: no intent.
        intent_items: most recent prefix check-ins per intent text.
    """

    graph: bool = False
    snapshots: int = 0
    snapshot_days: float = 7.0
    dist_table_max_pois: int = 0
    text: str | None = None
    text_profile: bool | str = True
    visible_counts: bool = False
    intent: str | None = None
    intent_items: int = 5


@dataclass
class TrainStats:
    """Statistics of the training period (``part == 0`` check-ins), cheap enough to always build.

    Shapes: ``P`` POIs, ``E`` distinct transitions, ``V`` distinct (user, POI) pairs.

    Attributes:
        poi_count: ``(P,)`` int64 training check-ins per POI.
        trans_src, trans_dst, trans_count: ``(E,)`` int64 transitions between consecutive
            check-ins of one trajectory, both in the training period, sorted by (src, dst).
        visit_user, visit_poi: ``(V,)`` int64 distinct (user, POI) pairs, sorted.
        longest_trajectory_s: longest first-to-last time span of one trajectory's training
            check-ins, in seconds.
    """

    poi_count: Tensor
    trans_src: Tensor
    trans_dst: Tensor
    trans_count: Tensor
    visit_user: Tensor
    visit_poi: Tensor
    longest_trajectory_s: int


@dataclass
class ModelInputs:
    """Everything a model is built from (module docstring).

    Shapes: ``U`` users, ``P`` POIs, ``C`` categories.

    Attributes:
        num_users, num_pois, num_categories: id-space sizes.
        user_ids, poi_ids, category_names: the raw id (name) of each integer id, so a service
            maps requests and answers without the split.
        poi_lat, poi_lon: ``(P,)`` float64 degrees (NaN: unknown).
        poi_category: ``(P,)`` int64 most frequent category of each POI.
        stats: :class:`TrainStats`.
        spec: the :class:`InputSpec` this was built for.
        graph: the training graph when ``spec.graph`` (else ``None``).
        snapshots: ``[(edge_index (2, E_i), count (E_i,)), ...]`` oldest first, when
            ``spec.snapshots``.
        dist_table: ``(P, P)`` uint8 distance buckets between POIs when ``spec`` asks for it; not
            saved (:meth:`save`): a model that wants it recomputes it from the coordinates.
        text: ``(P, D)`` float32 POI text vectors when ``spec.text``.
        visible: the :class:`~stgnn.features.history.VisibleCounts` when ``spec.visible_counts``.
        source: provenance (split name, fingerprint, protocol); not read by models.
        intent_labels: ``(P,)`` POI labels of intent texts when ``spec.intent``; intent_dim: their
            vectors' width.
        intent_encoder: the encoder the builder used (not saved: a loaded model makes one from
            ``spec.intent``).
    """

    num_users: int
    num_pois: int
    num_categories: int
    poi_lat: Tensor
    poi_lon: Tensor
    poi_category: Tensor
    stats: TrainStats
    user_ids: list[str] = field(default_factory=list)
    poi_ids: list[str] = field(default_factory=list)
    category_names: list[str] = field(default_factory=list)
    spec: InputSpec = field(default_factory=InputSpec)
    graph: HeteroData | None = None
    snapshots: list[tuple[Tensor, Tensor]] | None = None
    dist_table: Tensor | None = None
    text: Tensor | None = None
    visible: VisibleCounts | None = None
    source: dict[str, Any] = field(default_factory=dict)
    intent_labels: list[str] = field(default_factory=list)
    intent_dim: int = 0
    intent_encoder: Any = None

    def missing(self, spec: InputSpec) -> list[str]:
        """The parts ``spec`` asks for that this object lacks (empty: it serves ``spec``)."""
        out = []
        if spec.graph and self.graph is None:
            out.append("graph")
        if spec.snapshots and (self.snapshots is None or self.spec.snapshots != spec.snapshots
                               or self.spec.snapshot_days != spec.snapshot_days):
            out.append(f"snapshots ({spec.snapshots} x {spec.snapshot_days} days)")
        if spec.text is not None and (self.text is None or (self.spec.text, self.spec.text_profile)
                                      != (spec.text, spec.text_profile)):
            out.append(f"text vectors ({spec.text}, profile={spec.text_profile})")
        if spec.visible_counts and self.visible is None:
            out.append("visible counts")
        if spec.intent is not None and (not self.intent_labels or self.spec.intent != spec.intent):
            out.append(f"intent texts ({spec.intent})")
        return out

    # ------------------------------------------------------------------ persistence
    def to_state(self) -> dict[str, Any]:
        """A dict of tensors, numbers and strings (what :meth:`save` writes)."""
        state: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)
                                 if f.name not in ("stats", "spec", "graph", "dist_table", "visible", "intent_encoder")}
        state.update(format=INPUTS_FORMAT_VERSION, stats=asdict(self.stats), spec=asdict(self.spec),
                     graph=self.graph.to_dict() if self.graph is not None else None)
        if self.visible is not None:   # absent otherwise, so inputs saved before it still load
            state["visible"] = self.visible.to_state()
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "ModelInputs":
        if state.get("format") != INPUTS_FORMAT_VERSION:
            raise ValueError(f"model inputs of format {state.get('format')!r}; this stgnn reads format "
                             f"{INPUTS_FORMAT_VERSION}: rebuild them from the split (stgnn eval does)")
        kw = {k: v for k, v in state.items() if k not in ("format", "stats", "spec", "graph", "visible")}
        graph = HeteroData.from_dict(state["graph"]) if state["graph"] is not None else None
        visible = VisibleCounts.from_state(state["visible"]) if state.get("visible") is not None else None
        return cls(**kw, stats=TrainStats(**state["stats"]), spec=InputSpec(**state["spec"]), graph=graph,
                   visible=visible)

    def save(self, path: str | Path) -> None:
        """Write :meth:`to_state` atomically with ``torch.save``."""
        buf = io.BytesIO()
        torch.save(self.to_state(), buf)
        atomic_write_bytes(Path(path), buf.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> "ModelInputs":
        """Read what :meth:`save` wrote (``weights_only``: no code runs while loading)."""
        return cls.from_state(torch.load(Path(path), map_location="cpu", weights_only=True))

    def __repr__(self) -> str:
        parts = [f"users={self.num_users}", f"pois={self.num_pois}", f"categories={self.num_categories}"]
        if self.graph is not None:
            parts.append(f"graph={self.graph.num_edges} edges")
        if self.snapshots is not None:
            parts.append(f"snapshots={len(self.snapshots)}")
        if self.text is not None:
            parts.append(f"text={tuple(self.text.shape)}")
        if self.visible is not None:
            parts.append(f"visible={self.visible.history}")
        return f"ModelInputs({', '.join(parts)})"
