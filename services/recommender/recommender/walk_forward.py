"""Walk-forward (expanding window) folds over trading days, with a gap against label leakage.

A label at day j looks `horizon` days ahead, so a training row closer than `horizon` days to the
test period would carry test-period prices in its label. Each fold therefore trains on days
[0, test_start - gap) and tests on [test_start, test_end), with gap = horizon; the training window
grows fold after fold and every test day comes after all of its fold's training data.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Fold:
    """Day-index ranges of one fold (end exclusive)."""

    number: int
    train_end: int
    test_start: int
    test_end: int

    @property
    def train_start(self) -> int:
        return 0


def walk_forward_folds(n_days: int, n_folds: int, gap: int, min_train_fraction: float = 0.5) -> list[Fold]:
    """Split `n_days` ordered days into `n_folds` consecutive test blocks after an initial train span."""
    if n_folds < 1:
        raise ValueError("n_folds must be >= 1")
    if gap < 0:
        raise ValueError("gap must be >= 0")
    if not 0.0 < min_train_fraction < 1.0:
        raise ValueError("min_train_fraction must be between 0 and 1")
    first_test = int(n_days * min_train_fraction)
    block = (n_days - first_test) // n_folds
    if block < 1 or first_test - gap < 1:
        raise ValueError(f"{n_days} days are too few for {n_folds} folds with a gap of {gap}")
    folds = []
    for number in range(n_folds):
        start = first_test + number * block
        end = n_days if number == n_folds - 1 else start + block
        folds.append(Fold(number=number, train_end=start - gap, test_start=start, test_end=end))
    return folds
