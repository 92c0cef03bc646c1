"""What every stage of the toolkit shares, one folder per job: data, evaluation, reporting and
running a script (runtime)."""
