"""Nearest-neighbour matching of face encodings against every encoding of every person.

Distances are Euclidean, as in face_recognition.  For speed on large galleries
the squared distance is expanded as |g|^2 - 2 g.q + |q|^2: one matrix-vector
product (BLAS) instead of subtracting the query from every row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .encode import ENCODING_SIZE


@dataclass(frozen=True)
class Match:
    """The nearest gallery encoding to a query: whose it is and how far."""

    owner: int  # index into the gallery's owners, -1 for an empty gallery
    distance: float


class Gallery:
    """An immutable set of encodings, each labelled with its owner's index."""

    def __init__(self, encodings: np.ndarray, owners: np.ndarray) -> None:
        encodings = np.ascontiguousarray(encodings, dtype=np.float32).reshape(-1, ENCODING_SIZE)
        if len(encodings) != len(owners):
            raise ValueError("one owner per encoding is needed")
        self.encodings = encodings
        self.owners = np.asarray(owners, dtype=np.int64)
        self._norms = np.einsum("ij,ij->i", encodings, encodings)

    def __len__(self) -> int:
        return len(self.encodings)

    def nearest(self, queries: np.ndarray) -> list[Match]:
        """The nearest encoding for each query row (an (m, 128) array or one 128 vector)."""
        queries = np.asarray(queries, dtype=np.float32).reshape(-1, ENCODING_SIZE)
        if len(self) == 0:
            return [Match(-1, float("inf")) for _ in queries]
        # |q|^2 is the same for every row, so it does not change the argmin.
        squared = self._norms[:, None] - 2.0 * (self.encodings @ queries.T)
        best = np.argmin(squared, axis=0)
        # The expanded form loses a little precision; report the exact distance.
        exact = np.linalg.norm(self.encodings[best] - queries, axis=1)
        return [Match(int(self.owners[i]), float(d)) for i, d in zip(best, exact)]

    def nearest_of(self, queries: np.ndarray, owners: np.ndarray) -> np.ndarray:
        """For each query row, the distance to the nearest encoding of the owner given for it
        (`owners[j]` for row j); inf where that owner has no encoding here."""
        queries = np.asarray(queries, dtype=np.float32).reshape(-1, ENCODING_SIZE)
        owners = np.asarray(owners, dtype=np.int64).reshape(-1)
        out = np.full(len(queries), np.inf)
        if len(self) == 0 or len(queries) == 0:
            return out
        rows = np.flatnonzero(np.isin(self.owners, owners))  # only the rows of the owners asked about
        if len(rows) == 0:
            return out
        encodings = self.encodings[rows]
        squared = self._norms[rows, None] - 2.0 * (encodings @ queries.T)
        squared[self.owners[rows, None] != owners[None, :]] = np.inf  # each query: its own owner's rows only
        best = np.argmin(squared, axis=0)
        found = np.isfinite(squared[best, np.arange(len(queries))])
        out[found] = np.linalg.norm(encodings[best[found]] - queries[found], axis=1)
        return out
