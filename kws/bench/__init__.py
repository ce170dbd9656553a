"""Benchmarks: speed and memory measured against stated targets, ratios within one run."""
