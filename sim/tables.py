"""Growable column tables and day buckets: the engine's bookkeeping structures."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np


class Columns:
    """A table of named numpy columns that grows by appending rows (amortised doubling)."""

    def __init__(self, spec: dict[str, Any], capacity: int = 4096) -> None:
        self._spec = {k: np.dtype(v) for k, v in spec.items()}
        self._cap = capacity
        self._data = {k: np.empty(capacity, dt) for k, dt in self._spec.items()}
        self.n = 0

    def _grow(self, need: int) -> None:
        cap = self._cap
        while cap < need:
            cap *= 2
        for k, arr in self._data.items():
            new = np.empty(cap, arr.dtype)
            new[: self.n] = arr[: self.n]
            self._data[k] = new
        self._cap = cap

    def append(self, **cols: Any) -> np.ndarray:
        """Append rows; every column must be given (arrays of one length or scalars). Returns row ids."""
        lengths = {len(v) for v in cols.values() if np.ndim(v) > 0}
        if len(lengths) > 1:
            raise ValueError(f"columns of unequal length: {lengths}")
        m = lengths.pop() if lengths else 1
        missing = set(self._spec) - set(cols)
        if missing:
            raise ValueError(f"missing columns {sorted(missing)}")
        if self.n + m > self._cap:
            self._grow(self.n + m)
        for k, v in cols.items():
            self._data[k][self.n : self.n + m] = v
        ids = np.arange(self.n, self.n + m)
        self.n += m
        return ids

    def buffer(self, name: str) -> np.ndarray:
        """The whole underlying buffer of a column (valid rows are ``[:n]``), for in-place writes.
        Re-fetch after any append: growth replaces buffers."""
        return self._data[name]

    def __getitem__(self, name: str) -> np.ndarray:
        return self._data[name][: self.n]

    def to_dict(self) -> dict[str, np.ndarray]:
        return {k: v[: self.n].copy() for k, v in self._data.items()}


class DayBuckets:
    """Future work filed by the day it falls due: ``add(days, **arrays)``, then ``pop(day)``.

    ``add`` sorts a batch by day once and files, per day, only a reference to the sorted batch and
    the row range (no per-day copies: a batch may spread over hundreds of days); ``pop`` slices and
    joins what was filed for its day."""

    def __init__(self, n_days: int) -> None:
        self.n_days = n_days
        self._items: dict[int, list[tuple[dict[str, np.ndarray], int, int]]] = defaultdict(list)

    def add(self, days: np.ndarray, **arrays: np.ndarray) -> None:
        days = np.asarray(days, dtype=np.int64)
        keep = (days >= 0) & (days < self.n_days)
        if not keep.all():
            days = days[keep]
            arrays = {k: np.asarray(v)[keep] for k, v in arrays.items()}
        if len(days) == 0:
            return
        order = np.argsort(days, kind="stable")
        days = days[order]
        batch = {k: np.asarray(v)[order] for k, v in arrays.items()}
        starts = np.flatnonzero(np.diff(days, prepend=-1))
        ends = [*starts[1:].tolist(), len(days)]
        items = self._items
        for d, lo, hi in zip(days[starts].tolist(), starts.tolist(), ends, strict=True):
            items[d].append((batch, lo, hi))

    def pop(self, day: int, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
        chunks = self._items.pop(day, [])
        if not chunks:
            return {k: np.empty(0) for k in keys}
        if len(chunks) == 1:
            batch, lo, hi = chunks[0]
            return {k: batch[k][lo:hi] for k in keys}
        return {k: np.concatenate([b[k][lo:hi] for b, lo, hi in chunks]) for k in keys}
