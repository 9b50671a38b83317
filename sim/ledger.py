"""The money ledger: every revenue and cost of a replication, in integer cents.

Each entry has a simulation minute, a category (see ``sim.results.LEDGER_CATEGORIES``), the
customer it belongs to (-1 for costs that belong to no one customer, like agent salaries) and a
signed amount: money in positive, money out negative. Amounts are rounded to the cent when booked,
so totals computed any way reconcile exactly.
"""

from __future__ import annotations

import numpy as np

from sim.results import LEDGER_CATEGORIES

CATEGORY_INDEX: dict[str, int] = {name: i for i, name in enumerate(LEDGER_CATEGORIES)}


def to_cents(usd: np.ndarray | float) -> np.ndarray:
    return np.rint(np.asarray(usd, dtype=np.float64) * 100.0).astype(np.int64)


class Ledger:
    def __init__(self) -> None:
        self._t: list[np.ndarray] = []
        self._cat: list[np.ndarray] = []
        self._cust: list[np.ndarray] = []
        self._cents: list[np.ndarray] = []

    def book(
        self,
        category: str,
        t_min: np.ndarray | float,
        amount_usd: np.ndarray | float,
        customer: np.ndarray | int = -1,
    ) -> None:
        """Record amounts (dollars, signed) for a category at the given minutes."""
        t, cents, cust = np.broadcast_arrays(
            np.atleast_1d(np.asarray(t_min, dtype=np.float64)),
            np.atleast_1d(to_cents(amount_usd)),
            np.atleast_1d(np.asarray(customer, dtype=np.int64)),
        )
        keep = cents != 0
        if not keep.any():
            return
        self._t.append(t[keep].copy())
        self._cat.append(np.full(int(keep.sum()), CATEGORY_INDEX[category], dtype=np.int16))
        self._cust.append(cust[keep].copy())
        self._cents.append(cents[keep])

    def arrays(self) -> dict[str, np.ndarray]:
        """All entries: t_min, category (index into LEDGER_CATEGORIES), customer, cents."""
        if not self._t:
            return {
                "t_min": np.empty(0),
                "category": np.empty(0, np.int16),
                "customer": np.empty(0, np.int64),
                "cents": np.empty(0, np.int64),
            }
        return {
            "t_min": np.concatenate(self._t),
            "category": np.concatenate(self._cat),
            "customer": np.concatenate(self._cust),
            "cents": np.concatenate(self._cents),
        }
