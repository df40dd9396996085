"""Initialising POI id embeddings from language-model vectors of the POIs' texts.

``poi_init="text"`` (an STGNN option) starts each POI's id embedding at the principal
components of its text vector (MiniLM of the training-period profile, built by
:func:`stgnn.inputs.build.poi_text_vectors`), instead of ``N(0, 1)``; training then proceeds as
usual. The projection is PCA fitted on those vectors, which the builder makes from training-period
check-ins and static POI metadata only, so no val/test information enters the init. It is
deterministic (no random numbers are drawn), so the rest of the model's initialisation is the same
as with ``poi_init="random"``: the two differ in the POI embedding's starting point only.

The projected vectors are rescaled so their mean row norm equals the default init's,
``sqrt(dim)`` for ``N(0, 1)`` entries: the learning rate and the other embeddings see the scale
they were tuned for, and the relative geometry (cosines up to centring) of the text vectors is kept.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

POI_INITS = ("random", "text")


def text_projection(text_emb: Tensor, dim: int) -> Tensor:
    """``(P, dim)`` PCA projection of ``text_emb`` ``(P, D)``, scaled to mean row norm ``sqrt(dim)``.

    The first ``k = min(dim, D, P)`` columns are the centred vectors' coordinates on their top
    ``k`` principal directions (signs fixed so each direction's largest loading is positive, so the
    result does not depend on the SVD routine's sign choice); columns beyond ``k`` are zero.
    """
    x = text_emb.detach().double()
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"poi_init='text' needs (P, D) text vectors, got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("poi_init='text': the POI text vectors contain NaN or inf")
    x = x - x.mean(0, keepdim=True)
    _, _, vh = torch.linalg.svd(x, full_matrices=False)                 # vh: (min(P, D), D)
    k = min(dim, vh.shape[0])
    comps = vh[:k]                                                       # (k, D)
    sign = torch.sign(comps.gather(1, comps.abs().argmax(1, keepdim=True)))  # (k, 1)
    out = x.new_zeros(x.shape[0], dim)
    out[:, :k] = x @ (comps * sign).T                                    # (P, k)
    mean_norm = out.norm(dim=1).mean()
    if mean_norm > 0:  # all-identical texts give zeros: leave them (training moves them)
        out = out * (math.sqrt(dim) / mean_norm)
    return out.float()


def init_poi_embedding(emb: nn.Embedding, poi_init: str, text_emb: Tensor | None) -> None:
    """Overwrite ``emb``'s weight with :func:`text_projection` when ``poi_init == "text"``.

    ``"random"`` leaves the module's own ``N(0, 1)`` init untouched (bit-identical to before).
    """
    if poi_init not in POI_INITS:
        raise ValueError(f"STGNN(poi_init={poi_init!r}): choose one of {list(POI_INITS)}")
    if poi_init == "random":
        return
    if text_emb is None:
        raise ValueError("STGNN(poi_init='text') needs POI text vectors: set model_kwargs.text_model "
                         "(e.g. text_model: minilm), or pass text_emb")
    if text_emb.shape[0] != emb.num_embeddings:
        raise ValueError(f"poi_init='text': {text_emb.shape[0]} text vectors for {emb.num_embeddings} POIs")
    with torch.no_grad():
        emb.weight.copy_(text_projection(text_emb, emb.embedding_dim).to(emb.weight.device))
