"""Calibration: fit scenario parameters to a brand's own history (orders, contacts, returns, staffing)."""
