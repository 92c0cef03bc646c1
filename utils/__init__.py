"""Data, splits, metrics and run helpers shared by every stage of the toolkit."""
