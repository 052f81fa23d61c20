"""The names of a registration hash's fields in Redis: one or two characters, not the code's.

A registration's hash is one listpack (store/registrations.py) in which each field name is
stored in full with every registration: `status_changed_at`, `email_confirmed_at`,
`waiting_since`, `identity_fp`... came to about 150 bytes of its 500, and a few bytes
decide between two of the allocator's size classes. So Redis holds the short names of
FIELDS; the code, in Python and in Lua, says the long one and translates at the edge:
- Python writes through `short_name` and reads through `long_name` (HGETALL) or
  `both_names` / `first_found` (HMGET: the short name, else the long one);
- the scripts use the table FIELD (the loader, store/lua.py, puts it in front of every
  script that says `FIELD.`, built from this module, so the two cannot differ) and call
  `short_fields(key)` (scripts/fields.lua) on each registration hash before touching it.
A hash written before 2026-11-29 has the long names: Python reads both forms, and the
first script that touches the hash renames its fields (scripts/fields.lua).
The history's fields (`h`, `h<n>`, `h<n>.<part>`: scripts/history.lua) are short already.
"""

from __future__ import annotations


# Long name (the code's) -> short name (Redis's). No short name is `h`, `h<n>` or another
# long name. `person` is the first part of the packed fields, `person2`... the next
# (registrations.py `_pack`): `n`, `n2`...
FIELDS = {
    "ref": "r",
    "status": "s",
    "status_changed_at": "t",
    "channel": "c",
    "email": "e",
    "phone": "p",
    "permit_expiry": "x",
    "sites": "S",
    "half_days": "d",
    "language": "l",
    "identity_fp": "I",
    "email_fp": "E",
    "phone_fp": "P",
    "waiting_since": "w",
    "waiting_entered_at": "W",
    "email_confirmed_at": "ec",
    "draws_entered": "de",
    "draws_lost": "dl",
    "pending_email": "pe",
    "link_version": "lv",
    "person": "n",
}
# Parts with a short name: names of about 500 bytes. A registration with more parts keeps
# the long names of the parts beyond (`person10`...): read all the same (`_unpack`).
PERSON_PARTS = 9
FIELDS |= {f"person{number}": f"n{number}" for number in range(2, PERSON_PARTS + 1)}
_LONG = {short: long for long, short in FIELDS.items()}


def short_name(name: str) -> str:
    """The name Redis keeps field `name` under (a field not in FIELDS keeps its own)."""
    return FIELDS.get(name, name)


def long_name(name: str) -> str:
    """The code's name of a field as read from Redis, in either form."""
    return _LONG.get(name, name)


def both_names(names) -> list[str]:
    """What to ask HMGET for to read `names` in either form: their short names, then the long ones."""
    return [short_name(name) for name in names] + list(names)


def first_found(values: list, count: int) -> list:
    """The `count` values of an HMGET of `both_names`: each the short field's, else the long one's."""
    return [short if short is not None else long for short, long in zip(values[:count], values[count:])]


def lua_table() -> str:
    """The table FIELD of the scripts (long name -> short name) and NAMES (the long names, in order)."""
    pairs = ", ".join(f"{long} = '{short}'" for long, short in FIELDS.items())
    names = ", ".join(f"'{long}'" for long in FIELDS)
    return f"local FIELD = {{{pairs}}}\nlocal FIELD_NAMES = {{{names}}}\n"
