"""Features of POIs, users and times: language-model text vectors, time and space encodings.

Submodules: :mod:`~stgnn.features.text` (TextEncoder, make_text_encoder, disk cache),
:mod:`~stgnn.features.profiles` (POI profile and trajectory texts, training data only),
:mod:`~stgnn.features.time` (hour of week, Time2Vec, interval encodings and buckets),
:mod:`~stgnn.features.space` (haversine, distance buckets, kNN POIs, grid / H3 regions, coordinate features).
"""
from stgnn.features.space import (DistanceIntervalEncoding, Regions, assign_regions, coordinate_features, dist_bucket,
                                  grid_regions, h3_regions, haversine, haversine_or_zero, knn_pois,
                                  pairwise_haversine)
from stgnn.features.text import (HFEncoder, ModelNotAvailable, NullEncoder, SentenceTransformerEncoder,
                                 TextEncoder, make_text_encoder)
from stgnn.features.time import (HourOfWeekEmbedding, IntervalEncoding, Time2Vec, TimeIntervalEncoding, day_fraction,
                                 hour_of_week, log2_bucket, log_bucket, time_bucket, time_of_week_hours)

__all__ = [
    "DistanceIntervalEncoding", "Regions", "assign_regions", "coordinate_features", "dist_bucket", "grid_regions",
    "h3_regions", "haversine", "haversine_or_zero", "knn_pois", "pairwise_haversine",
    "HFEncoder", "ModelNotAvailable", "NullEncoder", "SentenceTransformerEncoder", "TextEncoder",
    "make_text_encoder",
    "HourOfWeekEmbedding", "IntervalEncoding", "Time2Vec", "TimeIntervalEncoding", "day_fraction",
    "hour_of_week", "log2_bucket", "log_bucket", "time_bucket", "time_of_week_hours",
]
