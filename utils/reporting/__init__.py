"""What a run leaves behind: the results-file layout, Markdown tables, figures, the examples page
and the run record."""
