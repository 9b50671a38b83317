"""Staffing planner: requirement, refinement by simulation, shifts."""
