"""The one interface every recommender implements, neural or not.

``score(batch) -> (B, P)`` scores every POI for each sample; higher is better. Trainable
models also implement ``loss(batch) -> scalar``. Capability flags tell the builder and the
engine what a model needs, so nothing ever branches on a model's name:

* ``needs_graph``: the leakage-safe heterogeneous training graph (``inputs.graph``).
* ``needs_snapshots``: weekly POI-transition snapshots of the training period (``inputs.snapshots``).
* ``needs_text``: the POIs' language-model text vectors (``inputs.text``).
* ``uses_target_time``: the model reads ``batch.target_ts`` when the batch carries it; the
  protocol option ``target_time`` (``known``/``hidden``) decides whether it does, and the loader
  gives the target time to no model that does not declare this (written into every result).
* ``trainable``: has parameters optimised by :func:`stgnn.train.fit`.

A model is built from :class:`~stgnn.inputs.ModelInputs`, never from a split:
:meth:`Recommender.input_spec` turns the flags (and, where a model's needs depend on its
options, those options) into the :class:`~stgnn.inputs.InputSpec` the builder fills;
:meth:`Recommender.from_inputs` constructs the model and calls :meth:`Recommender.prepare`, where
non-neural models take their statistics (training-period counts, transitions) and graph models
attach their graph. Every statistic in the inputs comes from the training period only.
"""
from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

from stgnn.data.batch import Batch
from stgnn.inputs.model_inputs import InputSpec, ModelInputs

R = TypeVar("R", bound="Recommender")

DEFAULT_TEXT_MODEL = "minilm"  # what a model with needs_text gets unless it names another encoder


class Recommender(nn.Module):
    """Base class: a plain ``nn.Module`` with the scoring contract.

    Args:
        num_users, num_pois: sizes of the id spaces of the split.
    """

    needs_graph: ClassVar[bool] = False
    needs_snapshots: ClassVar[bool] = False
    needs_text: ClassVar[bool] = False
    uses_target_time: ClassVar[bool] = False
    trainable: ClassVar[bool] = True
    #: ``model_kwargs`` keys that configure the builder (read by :meth:`input_spec`), not the constructor
    input_options: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, num_users: int, num_pois: int) -> None:
        super().__init__()
        self.num_users, self.num_pois = num_users, num_pois

    # ------------------------------------------------------------------ building
    @classmethod
    def input_spec(cls, **kwargs: Any) -> InputSpec:
        """What the builder must make for this model built with ``kwargs`` (constructor keywords
        and :attr:`input_options`). Default: what the class flags say."""
        return InputSpec(graph=cls.needs_graph, text=DEFAULT_TEXT_MODEL if cls.needs_text else None)

    @classmethod
    def from_inputs(cls: type[R], inputs: ModelInputs, **kwargs: Any) -> R:
        """Construct for ``inputs``' id spaces, then :meth:`prepare` (so the optimizer sees every
        parameter). ``kwargs`` are constructor keywords."""
        model = cls(inputs.num_users, inputs.num_pois, **kwargs)
        model.prepare(inputs)
        return model

    def prepare(self, inputs: ModelInputs) -> None:
        """Take what the model needs from ``inputs`` (statistics, graph, coordinates); nothing by
        default. Called once by :meth:`from_inputs`; calling it again with other inputs of the same
        id spaces re-points the model at them (e.g. a later training period)."""

    # ------------------------------------------------------------------ scoring
    def score(self, batch: Batch) -> torch.Tensor:
        """``(B, P)`` scores over all POIs (higher = more likely next)."""
        raise NotImplementedError

    def loss(self, batch: Batch) -> torch.Tensor:
        """Scalar training loss; default: full softmax cross-entropy over all POIs."""
        return nn.functional.cross_entropy(self.score(batch).float(), batch.target_poi)

    def extra_repr(self) -> str:
        return f"num_users={self.num_users}, num_pois={self.num_pois}"

    @classmethod
    def capabilities(cls) -> dict[str, Any]:
        return {k: getattr(cls, k) for k in ("needs_graph", "needs_snapshots", "needs_text", "uses_target_time",
                                             "trainable")}
