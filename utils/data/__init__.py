"""Data sets on disk and in memory: the known data sets, preparing them, loading them into a
Dataset, splits, labelled examples, test slices and the semantic-ID files."""
