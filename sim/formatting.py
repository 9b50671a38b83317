"""Text for KPI values and the reading of a difference, shared by the CLI and the dashboard.

Shares print as percentages (differences in percentage points), money in dollars, durations with
their unit; a difference "counts" only when its 95% interval excludes zero.
"""

from __future__ import annotations

import math

MINUS = "−"

_COUNT_UNITS = {"orders", "customers", "contacts", "subscribers"}


def as_float(x: object) -> float:
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return v


def with_sign(text: str, negative: bool, signed: bool) -> str:
    if negative:
        return MINUS + text
    return ("+" + text) if signed else text


def format_value(value: object, unit: str, signed: bool = False) -> str:
    """Human text for a KPI value in its unit (``signed``: always show + or −). NaN is "—"."""
    v = as_float(value)
    if not math.isfinite(v):
        return "—"
    neg, a = v < 0, abs(v)
    if unit == "share":
        if signed:
            return with_sign(f"{a * 100:.2f} pp", neg, signed)
        return with_sign(f"{a * 100:.1f}%", neg, signed)
    if unit == "USD":
        return with_sign(f"${a:,.0f}" if a >= 1000 else f"${a:,.2f}", neg, signed)
    if unit == "USD/order":
        return with_sign(f"${a:,.2f}", neg, signed)
    if unit == "months":
        return with_sign(f"{a:.1f}", neg, signed)
    if unit == "minutes":
        return with_sign(f"{a:.2f} min" if a < 10 else f"{a:,.1f} min", neg, signed)
    if unit == "points":
        return with_sign(f"{a:.1f}", neg, signed)
    if unit == "contacts/order":
        return with_sign(f"{a:.3f}", neg, signed)
    if unit in _COUNT_UNITS:
        return with_sign(f"{a:,.0f}" if a >= 100 else f"{a:,.1f}", neg, signed)
    return with_sign(f"{a:,.4g}", neg, signed)


def format_diff(value: object, unit: str) -> str:
    """A difference: always signed; shares in percentage points."""
    return format_value(value, unit, signed=True)


def format_ratio(value: object) -> str:
    """A ratio such as an ROI: two decimals, signed minus, "—" when undefined."""
    v = as_float(value)
    if not math.isfinite(v):
        return "—"
    return with_sign(f"{abs(v):.2f}", v < 0, False)


def format_interval(low: object, high: object, unit: str, diff: bool = False) -> str:
    """``low – high`` (or ``low to high`` for differences); "no interval" when it is undefined."""
    lo, hi = as_float(low), as_float(high)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "no interval"
    if diff:
        return f"{format_diff(lo, unit)} to {format_diff(hi, unit)}"
    return f"{format_value(lo, unit)} – {format_value(hi, unit)}"



BETTER, WORSE, CHANGED, UNCLEAR, NO_INTERVAL, BASELINE = (
    "better",
    "worse",
    "changed",
    "no clear difference",
    "no interval",
    "baseline",
)


def verdict(mean_diff: float, ci_low: float, ci_high: float, better: str) -> str:
    """How a difference from the baseline reads: better / worse / changed / no clear difference.

    A difference counts only when its 95% interval excludes zero; then ``better`` says which sign
    is good (``"higher"``, ``"lower"``; ``"neutral"`` gives ``changed``).
    """
    d, lo, hi = as_float(mean_diff), as_float(ci_low), as_float(ci_high)
    if not math.isfinite(d):
        return NO_INTERVAL
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return NO_INTERVAL
    if lo <= 0 <= hi:
        return UNCLEAR
    if better == "higher":
        return BETTER if d > 0 else WORSE
    if better == "lower":
        return BETTER if d < 0 else WORSE
    return CHANGED
