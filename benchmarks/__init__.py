"""Throughput and request-count benchmarks on the local runtime (run as modules, not timed tests)."""
