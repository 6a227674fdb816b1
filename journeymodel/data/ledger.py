"""The :class:`Ledger`: where every row of an input went (kept, or dropped and why).

A ledger holds counts only, never customer ids, so it travels inside shareable model files (see
``docs/architecture.md``, "Event logs").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["DROP_REASONS", "Ledger"]

#: Reasons a row can be dropped, in the order the ledger reports them.
DROP_REASONS = (
    "missing_customer",
    "missing_timestamp",
    "bad_timestamp",
    "missing_touchpoint",
    "after_observed_until",
    "duplicate",
    "bad_path",
    "bad_count",
)
_REASON_TEXT = {
    "missing_customer": "missing customer id",
    "missing_timestamp": "missing timestamp",
    "bad_timestamp": "unparseable timestamp",
    "missing_touchpoint": "missing touchpoint",
    "after_observed_until": "after --observed-until",
    "duplicate": "exact duplicate",
    "bad_path": "empty path",
    "bad_count": "bad or negative count",
}


@dataclass
class Ledger:
    """Where every input row went: ``rows_read == rows_used + sum(dropped.values())``.

    ``invalid_fields`` counts optional fields (value, sentiment) that could not be read: their row
    is kept, the field is treated as missing. The ledger holds counts only, never customer ids, so
    it is safe to store inside shareable model files.
    """

    source: str
    rows_read: int = 0
    rows_used: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    invalid_fields: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def rows_dropped(self) -> int:
        return int(sum(self.dropped.values()))

    def drop(self, reason: str, count: int) -> None:
        if count:
            self.dropped[reason] = self.dropped.get(reason, 0) + int(count)

    def check(self) -> None:
        """Raise AssertionError if rows are unaccounted for (an internal bug, not a user error)."""
        if self.rows_read != self.rows_used + self.rows_dropped:
            raise AssertionError(
                f"ledger does not add up: read {self.rows_read}, used {self.rows_used}, "
                f"dropped {self.rows_dropped}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "rows_read": self.rows_read,
            "rows_used": self.rows_used,
            "rows_dropped": {k: self.dropped[k] for k in DROP_REASONS if k in self.dropped},
            "invalid_fields": dict(self.invalid_fields),
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Ledger:
        return cls(
            source=d.get("source", "?"),
            rows_read=int(d.get("rows_read", 0)),
            rows_used=int(d.get("rows_used", 0)),
            dropped={k: int(v) for k, v in d.get("rows_dropped", {}).items()},
            invalid_fields={k: int(v) for k, v in d.get("invalid_fields", {}).items()},
            notes=list(d.get("notes", [])),
        )

    def summary_line(self) -> str:
        """``dropped D of R rows: ...; invalid fields in kept rows: ...`` (one line)."""
        parts = [f"{n:,} {_REASON_TEXT.get(r, r)}" for r, n in self.dropped.items()]
        text = (f"dropped {self.rows_dropped:,} of {self.rows_read:,} rows" if self.dropped
                else f"kept all {self.rows_read:,} rows")
        text += (": " + ", ".join(parts)) if parts else ""
        if self.invalid_fields:
            text += "; invalid fields in kept rows: " + ", ".join(
                f"{n:,} {k}" for k, n in self.invalid_fields.items())
        return text

