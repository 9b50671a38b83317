"""Consistency checks across the history files, run before any fit (a few vectorised joins: seconds
for a million rows).

Each file on its own is validated by :mod:`calibration.schemas`; here the files are checked against
each other, as real exports get them wrong: contacts or returns pointing at orders that are not in
orders.csv, returns requested before their order, parcels shipped or delivered before their order,
files whose date ranges lie more than a month apart. Every finding is a warning with the count, the share and
up to three example rows (line numbers as in the file, the header being line 1); the fits then
leave the offending links out (an unknown order has no trigger time, a negative lag is dropped).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from calibration.schemas import History

__all__ = ["Finding", "cross_file_checks"]

EXAMPLES = 3
NO_OVERLAP_DAYS = 30
"""Two files whose date ranges are further apart than this are not the same history (contacts and
returns may follow the last order by a few weeks)."""


@dataclass
class Finding:
    """One inconsistency: ``count`` of ``total`` rows of ``file`` fail ``check``."""

    file: str
    check: str
    count: int
    total: int
    examples: list[tuple[int, str]] = field(default_factory=list)

    def text(self) -> str:
        share = f" ({100 * self.count / self.total:.1f}%)" if self.total else ""
        shown = "; ".join(f"line {line}: {v}" for line, v in self.examples)
        return f"{self.file}: {self.count:,} of {self.total:,} row(s){share} {self.check}" + (f" (e.g. {shown})" if shown else "")

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "check": self.check, "count": self.count, "total": self.total,
                "examples": [{"line": line, "value": v} for line, v in self.examples]}


def _examples(df: pd.DataFrame, mask: np.ndarray, show: list[str]) -> list[tuple[int, str]]:
    rows = df.loc[mask].head(EXAMPLES)
    return [(int(r["_line"]), ", ".join(f"{c}={'' if pd.isna(r[c]) else r[c]}" for c in show)) for _, r in rows.iterrows()]


def _finding(out: list[Finding], file: str, check: str, df: pd.DataFrame, mask: np.ndarray, show: list[str]) -> None:
    mask = np.asarray(mask, dtype=bool)
    if mask.any():
        out.append(Finding(file, check, int(mask.sum()), len(df), _examples(df, mask, show)))


def cross_file_checks(h: History) -> list[Finding]:
    """Every cross-file inconsistency of the history (an empty list when there is none)."""
    found: list[Finding] = []
    o, c, r = h.orders, h.contacts, h.returns
    if o is not None:
        ts = o["order_ts"]
        for col, what in (("shipped_ts", "shipped"), ("delivered_ts", "delivered")):
            if col in o.columns:
                _finding(found, "orders.csv", f"{what} before the order was placed ({col} < order_ts)", o,
                         (o[col] < ts).fillna(False).to_numpy(dtype=bool), ["order_id", "order_ts", col])
    if o is not None:
        order_ts = o.drop_duplicates("order_id").set_index("order_id")["order_ts"]
        known = pd.Index(order_ts.index)
        if c is not None and "order_id" in c.columns:
            oid = c["order_id"]
            linked = oid.notna().to_numpy()
            unknown = linked & ~oid.isin(known).to_numpy()
            _finding(found, "contacts.csv", "point at an order_id that is not in orders.csv (treated as not linked)", c, unknown,
                     ["contact_id", "order_id"])
        if r is not None:
            unknown = ~r["order_id"].isin(known).to_numpy()
            _finding(found, "returns.csv", "point at an order_id that is not in orders.csv (left out of rate and lag fits)", r, unknown,
                     ["order_id", "requested_ts"])
            placed = order_ts.reindex(r["order_id"].to_numpy()).to_numpy()
            before = (r["requested_ts"].to_numpy() < placed) & ~unknown
            _finding(found, "returns.csv", "requested before their order was placed (requested_ts < order_ts; left out of the lag fit)", r,
                     before, ["order_id", "requested_ts"])
    spans = {}
    for name, frame, col in (("orders.csv", o, "order_ts"), ("contacts.csv", c, "created_ts"), ("returns.csv", r, "requested_ts")):
        if frame is not None and len(frame) and frame[col].notna().any():
            spans[name] = (frame[col].min(), frame[col].max())
    names = list(spans)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            (a0, a1), (b0, b1) = spans[a], spans[b]
            if (b0 - a1).days > NO_OVERLAP_DAYS or (a0 - b1).days > NO_OVERLAP_DAYS:
                found.append(Finding(b, f"dated {b0.date()} to {b1.date()}, outside {a}'s {a0.date()} to {a1.date()}: the files do not overlap",
                                     len(h.frames()[b.removesuffix('.csv')]), len(h.frames()[b.removesuffix('.csv')])))
    return found
