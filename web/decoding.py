"""Only valid Unicode comes in: checked where a request's input is decoded, once for every route.

A lone surrogate ("\\ud800" in JSON, or its bytes in a body that claims to
be UTF-8) can be read but never written out again: Redis, a template or a
log line would fail on it with a 500. A non-character (U+FFFF, U+FDD0…) is
reserved by Unicode and never text. Either makes the request an InvalidText
(400) before any view sees it: JSON bodies through the app's JSON provider
(so `request.get_json(silent=True)` raises it too), form fields and query
strings through the request class. What was refused is dropped, so a
handler that caught the error would find nothing of it.
"""

from __future__ import annotations

import re

import flask
from flask.json.provider import DefaultJSONProvider
from werkzeug.utils import cached_property

from queue_service.errors import InvalidText

# Surrogates, and the 66 non-characters: U+FDD0 to U+FDEF and the last two code points of each plane.
NOT_TEXT = re.compile(
    "[\ud800-\udfff\ufdd0-\ufdef"
    + "".join(chr(plane << 16 | 0xFFFE) + chr(plane << 16 | 0xFFFF) for plane in range(17))
    + "]"
)
REPLACEMENT = "\ufffd"
# What a problem names when the whole body, not one of its members, is at fault.
BODY = "body"


def shown(name: str) -> str:
    """A field's name as an answer may repeat it: refused characters replaced by U+FFFD."""
    return NOT_TEXT.sub(REPLACEMENT, name)


def bad_json_field(document: object) -> str | None:
    """The member of a JSON document (`BODY` if it is not an object) that holds text that is
    not valid Unicode, in its name or anywhere in its value; None if all is text."""
    members = document.items() if isinstance(document, dict) else [(BODY, document)]
    for name, value in members:
        if NOT_TEXT.search(name):
            return shown(name)
        pending = [value]
        while pending:  # depth first, without recursion: the parser already bounds the nesting
            item = pending.pop()
            if isinstance(item, str):
                if NOT_TEXT.search(item):
                    return name
            elif isinstance(item, dict):
                pending.extend(item.keys())
                pending.extend(item.values())
            elif isinstance(item, list):
                pending.extend(item)
    return None


def bad_field(fields) -> str | None:
    """The first field of a form or query string (a MultiDict) whose name or a value is not valid text."""
    for name, value in fields.items(multi=True):
        if NOT_TEXT.search(name) or NOT_TEXT.search(value):
            return shown(name)
    return None


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, reading only UTF-8 that holds valid Unicode text."""

    def loads(self, s: str | bytes, **kwargs):
        if isinstance(s, bytes):
            try:
                s = s.decode("utf-8")  # strict: json.loads alone would let surrogates' bytes through
            except UnicodeDecodeError:
                raise InvalidText(BODY) from None
        document = super().loads(s, **kwargs)
        field = bad_json_field(document)
        if field is not None:
            raise InvalidText(field)
        return document


class Request(flask.Request):
    """Flask's request, refusing form fields and query strings that are not valid text."""

    def _load_form_data(self) -> None:
        if "form" in self.__dict__:
            return
        super()._load_form_data()
        field = bad_field(self.form)
        if field is not None:
            self.__dict__["form"] = self.parameter_storage_class()
            raise InvalidText(field)

    @cached_property
    def args(self):
        parsed = super().args
        field = bad_field(parsed)
        if field is not None:
            self.__dict__["args"] = self.parameter_storage_class()
            raise InvalidText(field)
        return parsed


def init_app(app: flask.Flask) -> None:
    app.request_class = Request
    app.json = JSONProvider(app)
