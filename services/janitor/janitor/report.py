"""What a task did (or would do): counts for metrics and logs, details for humans."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["ok", "skipped", "failed"]


@dataclass
class TaskOutcome:
    """Returned by a task body: numeric counts become metrics, details only go to the log."""

    counts: dict[str, int] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, name: str, amount: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + amount


@dataclass(frozen=True)
class TaskReport:
    """One task run as the runner saw it, including how long it took and whether it ran at all."""

    task: str
    status: Status
    dry_run: bool
    duration_s: float
    counts: dict[str, int]
    details: dict[str, Any]
    error: str | None = None
