"""Benchmarks; run them all with ``python -m bench.run_all`` (results in bench/results/)."""
