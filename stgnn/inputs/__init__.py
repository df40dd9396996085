"""What models are built from: :class:`ModelInputs`, made once per run by :func:`build_inputs`.

The layer between the data (split, features, graphs) and the models: a model declares what it
needs (capability flags, resolved by ``Recommender.input_spec(**kwargs)`` into an
:class:`InputSpec`), the builder makes exactly that from the split's training period, and
``Recommender.from_inputs`` builds the model from it. Models never read a split.
"""
from stgnn.inputs.build import build_inputs, poi_text_vectors, train_stats
from stgnn.inputs.model_inputs import INPUTS_FILE, InputSpec, ModelInputs, TrainStats

__all__ = ["INPUTS_FILE", "InputSpec", "ModelInputs", "TrainStats", "build_inputs", "poi_text_vectors",
           "train_stats"]
