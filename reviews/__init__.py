"""Ground truth from human review: labels parsed and checked, CSV files imported."""
