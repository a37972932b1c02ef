"""The pure rules: Polars frames in, frames out; no Prefect, no DuckDB, no files."""
