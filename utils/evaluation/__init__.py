"""Scoring models: the metrics, the saved test predictions, and the metrics recomputed from them."""
