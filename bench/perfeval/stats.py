"""Summaries of repeated runs and the interleaved run order.

Every figure in the report is the median of repeated runs with its spread
(the 25th and 75th percentiles, and min/max). Runs are interleaved: each
round runs every configuration once, in a freshly shuffled order, so slow
drift (another engineer's build, thermal state) hits all configurations alike
instead of biasing whichever ran during it.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Summary:
    """Median and spread of one measured quantity."""

    median: float
    p25: float
    p75: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        if not values:
            raise ValueError("no samples")
        xs = sorted(float(v) for v in values)
        if len(xs) == 1:
            return cls(xs[0], xs[0], xs[0], xs[0], xs[0], 1)
        q = statistics.quantiles(xs, n=4, method="inclusive")
        return cls(statistics.median(xs), q[0], q[2], xs[0], xs[-1], len(xs))

    @property
    def iqr(self) -> float:
        return self.p75 - self.p25

    def as_json(self) -> dict[str, float]:
        return {"median": self.median, "p25": self.p25, "p75": self.p75, "min": self.low, "max": self.high,
                "n": self.n}


def difference(a: Sequence[float], b: Sequence[float]) -> Summary:
    """Spread of a - b over paired rounds (sample i of a and of b ran in the same round)."""
    return Summary.of([x - y for x, y in zip(a, b, strict=True)])


def ratio(a: Sequence[float], b: Sequence[float]) -> Summary:
    """Spread of a / b over paired rounds."""
    return Summary.of([x / y for x, y in zip(a, b, strict=True) if y])


def interleaved(items: Sequence[T], rounds: int, seed: int = 1) -> Iterator[tuple[int, T]]:
    """(round, item) for `rounds` rounds, each running every item once in a new shuffled order."""
    rng = random.Random(seed)
    for r in range(rounds):
        order = list(items)
        rng.shuffle(order)
        for item in order:
            yield r, item
