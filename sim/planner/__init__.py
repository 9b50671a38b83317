"""Staffing planner: from per-interval requirements to shifts a team can work."""
