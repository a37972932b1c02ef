"""Prefect tasks of the pipeline and the pure Polars/DuckDB transforms they call."""
