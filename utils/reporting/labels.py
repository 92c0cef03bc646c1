"""Names people read for the models the scripts know by their flag values (``tiger_item``,
``mf_hybrid``, a CTR model's ``semantic`` mode): one table for tables, plot legends and the
demo's summary, so a reader never has to know the flags to read a figure."""

from __future__ import annotations

MODEL_LABELS = {
    # next-item models (tiger_train_eval.py --models)
    "tiger": "TIGER (token-level)",
    "tiger_item": "TIGER (item-level)",
    "sasrec": "SASRec (item IDs)",
    "most_popular": "most popular items",
    "transition": "item-to-item transitions",
    # rating / preference models (mf_train_eval.py --models)
    "global_mean": "global mean",
    "bias": "user and item biases",
    "mf_id": "MF on item IDs",
    "mf_semantic": "MF on semantic IDs",
    "mf_hybrid": "MF on item IDs + semantic IDs",
    # CTR models and their item features (neural_train_eval.py --models, --modes)
    "wide_deep": "Wide&Deep",
    "deepfm": "DeepFM",
    "dlrm": "DLRM",
    "baseline": "item IDs",
    "semantic": "semantic IDs",
    "hybrid": "item IDs + semantic IDs",
    "semantic-ngram": "semantic-ID n-grams",
}


def model_label(name: str) -> str:
    """The readable name of a model (a name it does not know is returned as it is)."""
    return MODEL_LABELS.get(name, name)


def ctr_label(model: str, mode: str) -> str:
    """A CTR model with its item features, e.g. 'DeepFM on semantic IDs'."""
    return f"{model_label(model)} on {model_label(mode)}"
