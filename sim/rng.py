"""Named random streams derived from one seed.

A replication owns a :class:`Streams`. Each model component asks for its own stream by name
(and, for per-day batches, by day), so a change in one component's number of draws never shifts
another's: the same (seed, replication) gives common random numbers across scenarios.
"""

from __future__ import annotations

import zlib

import numpy as np


def _key(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


class Streams:
    """Factory of independent ``numpy.random.Generator`` objects for one replication."""

    def __init__(self, seed: int, replication: int) -> None:
        if not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        if replication < 0:
            raise ValueError(f"replication must be >= 0, got {replication}")
        self.seed = int(seed)
        self.replication = int(replication)

    def uniform(self, purpose: str, a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
        """Uniforms in (0, 1) that depend only on (seed, replication, purpose, a, b): a counter-based
        hash (splitmix64). Used for per-customer draws, e.g. ``a`` = customer key and ``b`` = order
        number, so the same customer makes the same draw in every scenario (common random numbers)."""
        salt = np.random.SeedSequence(self.seed, spawn_key=(self.replication, _key(purpose))).generate_state(
            1, np.uint64
        )[0]
        x = np.asarray(a).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        x ^= np.asarray(b).astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
        x ^= salt
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
        return ((x >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)

    def get(self, name: str, *index: int) -> np.random.Generator:
        """The stream for component ``name`` (optionally sub-indexed, e.g. by day)."""
        ss = np.random.SeedSequence(self.seed, spawn_key=(self.replication, _key(name), *index))
        return np.random.Generator(np.random.PCG64(ss))
