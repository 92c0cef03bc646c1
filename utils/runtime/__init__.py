"""Running a script: the experiment scaffold, flags, errors, atomic I/O, seeds and device,
torchrun and stable hashing."""
