"""Contrastive fine-tuning of the text encoder on a dataset's training pairs
(:func:`stgnn.features.contrastive.finetune`); meant for a GPU. Run from the repository root::

    python experiments/information_settings/finetune_encoder.py nyc --out results/lm/minilm_nyc_ft --device cuda

then name the folder as a text encoder: ``model_kwargs.text_model=st:results/lm/minilm_nyc_ft``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from stgnn.config import ExperimentConfig  # noqa: E402
from stgnn.features.contrastive import finetune  # noqa: E402
from stgnn.features.text import minilm_path  # noqa: E402
from stgnn.recipes import load_split  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dataset", help="dataset name (nyc) as in `stgnn data prepare`")
    ap.add_argument("--out", required=True, help="folder for the fine-tuned sentence-transformers model")
    ap.add_argument("--model", default=None, help="sentence-transformers folder to start from [MiniLM]")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-5)
    ap.add_argument("--max-pairs", type=int, default=None)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = ap.parse_args(argv)
    split = load_split(ExperimentConfig(dataset=a.dataset))
    summary = finetune(split, a.model or minilm_path(), a.out, epochs=a.epochs, batch_size=a.batch_size,
                       lr=a.lr, max_pairs=a.max_pairs, device=a.device)
    print(summary)


if __name__ == "__main__":
    main()
