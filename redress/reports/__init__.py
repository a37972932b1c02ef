"""What a run tells its readers: summary, data quality, reconciliation."""
