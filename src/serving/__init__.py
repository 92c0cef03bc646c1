"""Serving: trained models back from their checkpoints (checked against the data they are asked
about), and their recommendations for a user or a history."""
