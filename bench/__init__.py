"""propsec benchmarks: `python -m bench.run` (see docs/performance.md)."""
