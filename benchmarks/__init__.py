"""``./dev bench``: the benchmark table (run.py) and its steps."""
