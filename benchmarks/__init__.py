"""The benchmark suite that benchmarks/RESULTS.md reports. Run each as `python -m benchmarks.<name>` from
the repository root."""
