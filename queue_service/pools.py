"""The id of a waiting pool: one prefecture and one procedure, written "01:renewal".

A pool id travels everywhere (Redis keys, job arguments, API paths, logs), so
it is written and taken apart here only. `PoolId` is a `str`: it goes into a
key template, a JSON document or a Redis argument as the text it is, and a
plain string read back from Redis becomes one with `PoolId(text)`.
"""

from __future__ import annotations

SEPARATOR = ":"


class PoolId(str):
    """ "<prefecture>:<procedure>", checked when made: both parts present, no other separator."""

    __slots__ = ()

    def __new__(cls, text: str) -> PoolId:
        prefecture, separator, procedure = str(text).partition(SEPARATOR)
        if not (separator and prefecture and procedure) or SEPARATOR in procedure:
            raise ValueError(f"not a pool id: {text!r} (expected '<prefecture>{SEPARATOR}<procedure>')")
        return super().__new__(cls, text)

    @classmethod
    def of(cls, prefecture: str, procedure: str) -> PoolId:
        return cls(f"{prefecture}{SEPARATOR}{procedure}")

    @property
    def prefecture(self) -> str:
        return self.partition(SEPARATOR)[0]

    @property
    def procedure(self) -> str:
        return self.partition(SEPARATOR)[2]

    @property
    def parts(self) -> tuple[str, str]:
        """(prefecture, procedure), for unpacking."""
        return self.prefecture, self.procedure
