"""What became of a jump attempt: one :class:`Outcome`, with the reason text kept in history.

The integer values travel between ranks (rank 0 forecasts and broadcasts its outcome), so
they are fixed; :attr:`Outcome.reason` is the text written to ``JumpRecord.reason``.

Example:
    >>> Outcome.NONFINITE.reason
    'skipped: forecast NaN/Inf'
    >>> Outcome.from_reason("accepted") is Outcome.ACCEPTED
    True
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["Outcome"]


class Outcome(IntEnum):
    """The outcome of a forecast (``OK``, or why no jump was tried) and of the guard."""

    OK = 0  #: the forecast is usable; the guard decides next
    NONFINITE = 1  #: the forecast holds NaN/Inf
    WRONG_SIZE = 2  #: the forecast is not a ``(D,)`` tensor
    FAILED = 3  #: the forecaster raised
    ACCEPTED = 4  #: a candidate passed the guard
    ACCEPTED_NO_GUARD = 5  #: no guard: the first candidate was kept
    REJECTED = 6  #: no candidate passed the guard (lowered its loss by the margin); weights restored
    REJECTED_BAD_BEFORE = 7  #: the guard loss before the jump is NaN/Inf; weights restored

    @property
    def reason(self) -> str:
        """The text stored in :attr:`JumpRecord.reason <gfm_accel.jump.config.JumpRecord.reason>`."""
        return _REASONS[self]

    @property
    def accepted(self) -> bool:
        """Whether the model holds jumped weights after this outcome."""
        return self in (Outcome.ACCEPTED, Outcome.ACCEPTED_NO_GUARD)

    @property
    def skipped(self) -> bool:
        """Whether no candidate was tried (the forecast was unusable)."""
        return self in (Outcome.NONFINITE, Outcome.WRONG_SIZE, Outcome.FAILED)

    @classmethod
    def from_reason(cls, reason: str) -> "Outcome":
        """The outcome whose :attr:`reason` is ``reason`` (e.g. read back from a saved history)."""
        for outcome, text in _REASONS.items():
            if text == reason:
                return outcome
        if reason in _LEGACY:
            return _LEGACY[reason]
        raise ValueError(f"unknown jump reason {reason!r}")


_REASONS = {
    Outcome.OK: "",
    Outcome.NONFINITE: "skipped: forecast NaN/Inf",
    Outcome.WRONG_SIZE: "skipped: forecast has wrong size",
    Outcome.FAILED: "skipped: forecaster failed",
    Outcome.ACCEPTED: "accepted",
    Outcome.ACCEPTED_NO_GUARD: "accepted (no guard)",
    Outcome.REJECTED: "rejected by the guard",
    Outcome.REJECTED_BAD_BEFORE: "rejected: guard loss before the jump is not finite",
}

#: Reasons written by earlier versions (saved histories still read back).
_LEGACY = {
    "rejected: loss rose": Outcome.REJECTED,  # before the guard's margin (issue 15): a rejection meant a rise
}
