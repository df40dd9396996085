"""A sample's "user intent" as text: its trajectory prefix rendered for a language model.

Each row of a :class:`~stgnn.data.batch.Batch` renders as its most recent ``max_items`` prefix
check-ins, oldest first, each as local time + POI label (its name, :func:`poi_labels`), e.g.::

    Mon 08:12 Coffee Shop → 09:03 Office → 12:10 Deli / Bodega → next: Mon 18:30

The trailing ``next: <weekday> <time>`` (the query time) is written only when the batch carries
the target time (``batch.target_time_known``); the target POI is never rendered. Everything comes
from the batch itself, which holds only what the sample may see, so the text cannot leak the
future; the same renderer serves split samples and live requests (``Batch.from_sequences``).

:func:`split_intent_texts` renders every sample of a split in the loader's own way, so a builder
can encode them all in one call and fill the text encoder's disk cache before training.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from stgnn.data.batch import Batch, SampleLoader
from stgnn.data.information import InformationSetting
from stgnn.data.split import Split
from stgnn.features.profiles import ARROW, DAYS, default_region_labels, poi_names, render_trajectory
from stgnn.features.time import local_seconds

DEFAULT_ITEMS = 5


def poi_labels(split: Split, regions: bool = False) -> list[str]:
    """``(P,)`` label of each POI in intent texts: its name (:func:`~stgnn.features.profiles.poi_names`),
    with ``regions`` also its coarse place (``"Coffee Shop, 2 km north of the centre"``).

    Names only by default: the encoder's cost grows with the tokens, regions triple a text's length
    (on NYC, 11 vs 30 ms of one CPU thread per text), and STGNN already encodes distances."""
    names = poi_names(split)
    return [f"{n}, {r}" for n, r in zip(names, default_region_labels(split))] if regions else names


def _when(ts: int, tz: int) -> str:
    s = int(local_seconds(np.asarray([ts], np.int64), np.asarray([tz], np.int64))[0])
    return f"{DAYS[(s // 86400 + 3) % 7]} {(s % 86400) // 3600:02d}:{(s % 3600) // 60:02d}"


def intent_texts(batch: Batch, labels: Sequence[str], max_items: int = DEFAULT_ITEMS) -> list[str]:
    """``(B,)`` intent text of each row (module docstring).

    Args:
        batch: the samples; only their prefixes (and the target time when known) are read.
        labels: ``(P,)`` text of each POI (:func:`poi_labels`).
        max_items: most recent prefix check-ins rendered (short texts: cheaper, and the encoder
            truncates long ones from the end, which would drop the most recent steps).
    """
    if max_items < 1:
        raise ValueError(f"intent_items must be >= 1, got {max_items}")
    poi, ts, tz, mask = (x.cpu().numpy() for x in (batch.poi, batch.ts, batch.tz, batch.mask))
    known = batch.target_time_known
    tts = batch.target_ts.cpu().numpy() if known else None
    ttz = batch.target_tz.cpu().numpy() if known else None
    out = []
    for i in range(len(poi)):
        keep = np.flatnonzero(mask[i])[-max_items:]
        text = render_trajectory(poi[i][keep], ts[i][keep], tz[i][keep], labels)
        out.append(text + (f"{ARROW}next: {_when(tts[i], ttz[i])}" if known else ""))
    return out


def split_intent_texts(split: Split, labels: Sequence[str], max_items: int = DEFAULT_ITEMS,
                       parts: Sequence[str] = ("train", "val", "test"), chunk: int = 4096) -> list[str]:
    """Intent texts of every sample of ``parts``, as the split's information setting shows them
    (the target time only under ``target_time: known``)."""
    setting = InformationSetting.from_protocol(split.protocol)
    out: list[str] = []
    for part in parts:
        loader = SampleLoader(split, part, chunk, history=setting.history, target_time=setting.target_time)
        out += [t for b in loader for t in intent_texts(b, labels, max_items)]
    return out
