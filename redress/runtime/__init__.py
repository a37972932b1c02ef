"""Service machinery: the run's Prefect server, the data folder's lock, retries, crash hooks, permissions."""
