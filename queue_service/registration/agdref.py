"""The prefecture's records of AGDREF numbers (the foreigner's file number).

A renewal or a permit pickup is accepted only for a number the prefecture
knows. The records are reached through `AgdrefRecords`; the one backend for
now holds the numbers the prefecture admin uploads, kept only as keyed hashes
(HMAC), so the list itself is never stored.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Protocol

from queue_service.errors import N_, ValidationFailed
from queue_service.registration import identity


class BadAgdrefLines(ValidationFailed):
    """Some lines of an uploaded file are not AGDREF numbers; nothing was changed."""

    def __init__(self, lines: list[int]) -> None:
        super().__init__({"file": N_("Some lines are not 10-digit AGDREF numbers; nothing was changed.")})
        self.lines = lines

    def shown(self) -> str:
        return ", ".join(str(n) for n in self.lines[:20]) + (" …" if len(self.lines) > 20 else "")


class AgdrefRecords(Protocol):
    def is_known(self, prefecture: str, agdref: str) -> bool:
        """True if the prefecture's records hold this (clean, 10-digit) number."""


def agdref_fingerprint(secret: bytes, prefecture: str, agdref: str) -> str:
    return hmac.digest(secret, f"agdref-record\x00{prefecture}\x00{agdref}".encode(), hashlib.sha256).hex()


class UploadedRecords:
    """The numbers uploaded by the prefecture (a file, one number a line)."""

    def __init__(self, store, secret: bytes) -> None:
        self.store = store
        self.secret = secret

    def is_known(self, prefecture: str, agdref: str) -> bool:
        return self.store.agdref_known(prefecture, agdref_fingerprint(self.secret, prefecture, agdref))

    def replace(self, prefecture: str, lines: Iterable[str]) -> int:
        """Replace the prefecture's numbers with those of `lines`; returns how many.

        Blank lines and lines starting with # are skipped. Any other line that
        is not an AGDREF number rejects the whole file (nothing is changed),
        with the line numbers in the error.
        """
        numbers, bad_lines = set(), []
        for number, line in enumerate(lines, start=1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            try:
                numbers.add(identity.clean_agdref(text))
            except identity.InvalidField:
                bad_lines.append(number)
        if bad_lines:
            raise BadAgdrefLines(bad_lines)
        prints = sorted(agdref_fingerprint(self.secret, prefecture, number) for number in numbers)
        self.store.replace_agdref_records(prefecture, prints)
        return len(prints)
