"""Scheduling and overhead benchmarks for Foreman (`python -m bench.run`)."""
