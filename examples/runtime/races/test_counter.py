"""Both pass as they are; under `--asyncfix-perturb` the unlocked counter loses updates."""

from __future__ import annotations

import asyncio

from counter import Counter, LockedCounter, two_increments


def test_counter() -> None:
    assert asyncio.run(two_increments(Counter())) == 2


def test_locked_counter() -> None:
    assert asyncio.run(two_increments(LockedCounter())) == 2
