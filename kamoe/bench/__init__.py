"""Benchmarks run by ``python -m kamoe bench ...``."""
