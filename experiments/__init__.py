"""A/B experiments: sticky assignment and analysis (SQL in, report out)."""
