"""Data checks: Great Expectations suites and the SQL gates."""
