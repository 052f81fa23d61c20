"""Identity fields: check and normalise what an applicant types.

Why this module exists
----------------------
Applicants are foreign residents; many read little French and write their
names in their own script (Arabic, Cyrillic, Chinese, Vietnamese with its
stacked accents...). Every identity field they type passes through one of the
``clean_*`` / ``parse_*`` functions here before anything is stored, so that
the web form, the agent's counter form and the JSON API all accept and refuse
the same things, and store the same canonical value.

The second job of the module is the duplicate key. DESIGN.md ("Redis as the
store") makes "one active registration per person per pool" atomic with a
``SET NX`` on an HMAC of the normalised identity. ``identity_fingerprint`` and
``contact_fingerprint`` compute those HMACs; ``name_words`` (through
``confusables.word_skeleton``) and ``normalise_email`` fold the spelling
variants of one identity onto one key, and ``identity_lookups`` lists the keys
a new registration must find free: those of every order of the person's
words (docs/registration.md, "Identity matching").

Rules of the module
-------------------
- Plain Python: no Flask, no Redis; importing it only builds constants.
- On bad input every function raises :class:`InvalidField` and nothing else,
  whatever the text (the tests feed arbitrary Unicode to every function).
- Error messages are English sentences for a person, marked with ``N_`` so
  that Babel extracts them (``pybabel extract -k N_``) and the web layer
  translates them. They never contain what the user typed.
"""

from __future__ import annotations

import datetime
import functools
import hmac
import itertools
import re
import unicodedata
from dataclasses import dataclass

import babel
import email_validator
import phonenumbers
import pycountry

from queue_service.registration.confusables import main_script, word_skeleton

__all__ = [
    "N_",
    "InvalidField",
    "NAME_MAX_LENGTH",
    "BIRTH_DATE_MAX_AGE_YEARS",
    "STATELESS",
    "clean_name",
    "normalise_name",
    "name_words",
    "ARRANGED_WORDS_MAX",
    "parse_birth_date",
    "parse_permit_expiry",
    "clean_nationality",
    "nationality_choices",
    "EMAIL_MAX_LENGTH",
    "clean_email",
    "normalise_email",
    "clean_phone",
    "clean_agdref",
    "identity_fingerprint",
    "identity_lookups",
    "contact_fingerprint",
]


def N_(message: str) -> str:
    """Mark a message for translation without translating it here."""
    return message


class InvalidField(ValueError):
    """A field of a form does not hold an acceptable value.

    ``field`` is the form field name ("phone", "family_name"...), so the web
    layer can show ``message`` next to the right input. ``message`` is an
    English sentence, marked with ``N_``, that names the field in words and
    says what to type; the web layer translates it.
    """

    def __init__(self, field: str, message: str) -> None:
        # Both go to ValueError.__init__ so that args == (field, message):
        # the exception pickles (RQ jobs) and compares like its arguments.
        super().__init__(field, message)
        self.field = field
        self.message = message

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


# --------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------

#: Longest family name or given names accepted, in characters after cleaning.
NAME_MAX_LENGTH = 100


@dataclass(frozen=True)
class _NameMessages:
    empty: str
    too_long: str
    characters: str


_NAME_MESSAGES = {
    "family_name": _NameMessages(
        empty=N_("Enter your family name."),
        too_long=N_("Your family name is too long: use at most 100 characters."),
        characters=N_(
            "Write your family name in letters, in any alphabet. Spaces, hyphens,"
            " apostrophes and full stops are allowed; digits and other signs are not."
        ),
    ),
    "given_names": _NameMessages(
        empty=N_("Enter your given names."),
        too_long=N_("Your given names are too long: use at most 100 characters."),
        characters=N_(
            "Write your given names in letters, in any alphabet. Spaces, hyphens,"
            " apostrophes and full stops are allowed; digits and other signs are not."
        ),
    ),
}
# For a name field this module does not know by name (e.g. a future form).
_ANY_NAME_MESSAGES = _NameMessages(
    empty=N_("Enter a name."),
    too_long=N_("This name is too long: use at most 100 characters."),
    characters=N_(
        "Write this name in letters, in any alphabet. Spaces, hyphens,"
        " apostrophes and full stops are allowed; digits and other signs are not."
    ),
)

# Separators that clean_name turns into one ordinary space: every Unicode
# space (categories Zs, Zl, Zp) and the ASCII tab and line breaks a pasted
# name may carry. Other control characters are refused, not collapsed.
_ASCII_WHITESPACE = frozenset("\t\n\r\x0b\x0c")
# U+2010 HYPHEN and U+2011 NON-BREAKING HYPHEN are hyphens too; stored as "-".
_HYPHENS = frozenset("-\u2010\u2011")
# Punctuation a name may hold besides letters and marks: the apostrophes
# (straight, and the typographic one phones type) and the full stop.
_NAME_PUNCTUATION = frozenset("'\u2019.")
# Zero-width non-joiner and joiner: Persian, Kurdish and Indic scripts need
# them inside words to spell a name correctly; they are invisible and keyed out.
_JOINERS = frozenset("\u200c\u200d")


def _is_name_space(char: str) -> bool:
    return char in _ASCII_WHITESPACE or unicodedata.category(char) in ("Zs", "Zl", "Zp")


def clean_name(field: str, text: str) -> str:
    """Return the family name or given names as they will be stored.

    NFC, trimmed, runs of spaces collapsed to one space, 1 to 100 characters,
    at least one letter. Allowed: letters of any script, combining marks,
    spaces, hyphens, apostrophes (' and ’), full stops and the zero-width
    joiners some scripts need. Refused: digits, controls, emoji, other signs.
    ``field`` is the form field name reported in :class:`InvalidField`.
    """
    messages = _NAME_MESSAGES.get(field, _ANY_NAME_MESSAGES)
    # Cheap guard before any Unicode work on a pasted novel.
    if len(text) > 4 * NAME_MAX_LENGTH:
        raise InvalidField(field, messages.too_long)
    chars: list[str] = []
    for char in unicodedata.normalize("NFC", text):
        if _is_name_space(char):
            if chars and chars[-1] != " ":
                chars.append(" ")
        elif char in _HYPHENS:
            chars.append("-")
        else:
            chars.append(char)
    cleaned = "".join(chars).rstrip(" ")
    if not cleaned:
        raise InvalidField(field, messages.empty)
    if len(cleaned) > NAME_MAX_LENGTH:
        raise InvalidField(field, messages.too_long)
    has_letter = False
    for char in cleaned:
        category = unicodedata.category(char)
        if category[0] == "L":
            has_letter = True
        elif category[0] == "M" or char in " -" or char in _NAME_PUNCTUATION or char in _JOINERS:
            continue
        else:
            raise InvalidField(field, messages.characters)
    if not has_letter:
        raise InvalidField(field, messages.characters)
    return cleaned


# Removed from the duplicate key: every way of separating or joining the
# parts of a name, so "Jean-Luc", "Jean Luc" and "Jeanluc" give one key.
# U+02BC MODIFIER LETTER APOSTROPHE is how Ukrainian keyboards type the
# apostrophe; U+0640 ARABIC TATWEEL only stretches a word on screen.
_KEY_SEPARATORS = frozenset("-\u2010\u2011'\u2019\u02bc.\u0640") | _JOINERS


def normalise_name(text: str) -> str:
    """Fold a name to its duplicate key; for comparing, never for display.

    NFKD, combining marks removed (accents, Arabic vowel signs), casefolded,
    and spaces, hyphens, apostrophes and full stops removed: "Jean-Luc",
    "jean luc", "JEAN LUC" and "Jéan-Luc" all give "jeanluc". Variants in
    different scripts (Mohamed / محمد) stay different: no transliteration.
    """
    # Casefolding can produce letters with marks again (e.g. "ǰ"), hence a
    # second decomposition before the marks are dropped.
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    return "".join(
        char
        for char in folded
        if not unicodedata.category(char).startswith("M")
        and char not in _KEY_SEPARATORS
        and not char.isspace()
    )


# --------------------------------------------------------------------------
# Digits and dates
# --------------------------------------------------------------------------


def _ascii_digits(text: str) -> str:
    """NFKC, then every decimal digit of any script as its ASCII digit.

    NFKC turns full-width "１２" into "12"; the second step covers the
    Arabic-Indic "١٢" and Persian "۱۲" digits that Arabic and Persian phone
    keyboards type, which NFKC leaves alone.
    """
    return "".join(
        str(unicodedata.decimal(char)) if unicodedata.category(char) == "Nd" else char
        for char in unicodedata.normalize("NFKC", text)
    )


# re.ASCII: \d is [0-9] only, after _ascii_digits has converted the rest.
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)
_FRENCH_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})", re.ASCII)
# No date is written in more characters than this, even with spaces around.
_DATE_MAX_LENGTH = 40


def _parse_date(text: str) -> datetime.date | None:
    """Read "YYYY-MM-DD" (an HTML date input) or "DD/MM/YYYY"; None if neither."""
    if len(text) > _DATE_MAX_LENGTH:
        return None
    text = _ascii_digits(text).strip()
    if match := _ISO_DATE.fullmatch(text):
        year, month, day = (int(part) for part in match.groups())
    elif match := _FRENCH_DATE.fullmatch(text):
        day, month, year = (int(part) for part in match.groups())
    else:
        return None
    try:
        return datetime.date(year, month, day)
    except ValueError:  # 31/02, month 13, year 0
        return None


def _add_years(day: datetime.date, years: int) -> datetime.date:
    """The same calendar day ``years`` later (or earlier); 29 Feb → 28 Feb."""
    year = day.year + years
    if year < datetime.MINYEAR:
        return datetime.date.min
    if year > datetime.MAXYEAR:
        return datetime.date.max
    try:
        return day.replace(year=year)
    except ValueError:
        return day.replace(year=year, day=28)


#: Oldest plausible applicant, in years.
BIRTH_DATE_MAX_AGE_YEARS = 120
# How long ago a permit may have expired for its holder to use these
# procedures, and how far ahead the longest permit (10-year card) runs.
_PERMIT_EXPIRED_MAX_YEARS = 1
_PERMIT_VALID_MAX_YEARS = 10


def parse_birth_date(text: str, today: datetime.date) -> datetime.date:
    """Read a date of birth: not in the future, at most 120 years ago."""
    birth_date = _parse_date(text)
    if birth_date is None:
        raise InvalidField(
            "birth_date",
            N_("Enter your date of birth as day/month/year, for example 31/12/1990."),
        )
    if not _add_years(today, -BIRTH_DATE_MAX_AGE_YEARS) <= birth_date <= today:
        raise InvalidField(
            "birth_date",
            N_("Check your date of birth: it cannot be in the future or more than 120 years ago."),
        )
    return birth_date


def parse_permit_expiry(text: str, today: datetime.date) -> datetime.date:
    """Read the expiry date of the current permit: from a year ago to 10 years ahead."""
    expiry = _parse_date(text)
    if expiry is None:
        raise InvalidField(
            "permit_expiry",
            N_(
                "Enter the expiry date of your residence permit as day/month/year,"
                " for example 31/12/2026."
            ),
        )
    earliest = _add_years(today, -_PERMIT_EXPIRED_MAX_YEARS)
    latest = _add_years(today, _PERMIT_VALID_MAX_YEARS)
    if not earliest <= expiry <= latest:
        raise InvalidField(
            "permit_expiry",
            N_(
                "Check the expiry date of your residence permit: it must be between"
                " one year ago and ten years from today."
            ),
        )
    return expiry


# --------------------------------------------------------------------------
# Nationality
# --------------------------------------------------------------------------

#: The nationality of refugees and stateless people (apatrides), who have none.
STATELESS = "stateless"

# Codes whose people are French citizens and need no residence permit:
# France and the overseas departments, collectivities and territories that
# ISO 3166-1 lists separately.
_FRENCH_CODES = frozenset(
    {"FR", "GF", "GP", "MQ", "RE", "YT", "PM", "BL", "MF", "NC", "PF", "WF", "TF"}
)
# Kosovo is not in ISO 3166-1 (so not in pycountry), yet its passport is
# recognised by France and many of its citizens live here: "XK" is the
# user-assigned code the EU, CLDR and Babel use for it.
_EXTRA_CODES = {"XK": "Kosovo"}

_STATELESS_LABELS = {"fr": "Apatride", "en": "Stateless"}


@functools.cache
def _country_names_en() -> dict[str, str]:
    """Code → English name of every accepted nationality (read on first use)."""
    names = {country.alpha_2: country.name for country in pycountry.countries}
    names.update(_EXTRA_CODES)
    for code in _FRENCH_CODES:
        names.pop(code, None)
    return names


def clean_nationality(code: str) -> str:
    """Return the nationality as an upper-case ISO 3166-1 alpha-2 code, or "stateless"."""
    code = code.strip()
    if code.casefold() == STATELESS:
        return STATELESS
    code = code.upper()
    if code in _FRENCH_CODES:
        raise InvalidField(
            "nationality",
            N_(
                "French citizens do not need a residence permit and cannot register"
                " here. If you have another nationality, choose it instead."
            ),
        )
    if code not in _country_names_en():
        raise InvalidField(
            "nationality",
            N_("Choose your nationality from the list, or “Stateless” if you have none."),
        )
    return code


def _sort_key(name: str) -> tuple[str, str]:
    """Sort "Égypte" among the E, not after "Zimbabwe"."""
    return normalise_name(name), name


# Bounded: the locale may come from a request header.
@functools.lru_cache(maxsize=16)
def _nationality_choices(language: str) -> tuple[tuple[str, str], ...]:
    try:
        territories = babel.Locale.parse(language).territories
    except (ValueError, TypeError, babel.UnknownLocaleError):
        territories = babel.Locale("en").territories
    countries = sorted(
        ((code, territories.get(code) or english) for code, english in _country_names_en().items()),
        key=lambda choice: _sort_key(choice[1]),
    )
    stateless = (STATELESS, _STATELESS_LABELS.get(language, _STATELESS_LABELS["en"]))
    return (stateless, *countries)


def nationality_choices(locale: str) -> list[tuple[str, str]]:
    """(code, country name in ``locale``) for a nationality list, "stateless" first.

    Sorted by name, accents ignored. Names come from Babel (CLDR), or
    pycountry's English name where Babel has none. French codes are left
    out: clean_nationality refuses them. ``locale`` may be "fr", "en",
    "fr_FR" or "fr-FR"; an unknown locale gives the English names.
    """
    language = locale.replace("-", "_").split("_")[0].lower()
    return list(_nationality_choices(language))


# --------------------------------------------------------------------------
# Email
# --------------------------------------------------------------------------

#: Longest email address accepted (RFC 5321 path limit less the brackets).
EMAIL_MAX_LENGTH = 254


# A request cleans the same address or number more than once (its form, its fingerprint,
# its registration budget): the last few results are kept, a few entries only, so that
# the process holds no more contacts than the requests it is serving.
RECENT_CONTACTS = 16


@functools.lru_cache(maxsize=RECENT_CONTACTS)
def clean_email(text: str) -> str:
    """Return the normalised email address (domain lower-cased, Unicode kept).

    International domains (bücher.de, 例子.广告) and non-ASCII local parts
    (SMTPUTF8) are accepted; no DNS lookup is made.
    """
    text = text.strip()
    message = N_("Enter your email address, for example name@example.com.")
    if not text or len(text) > EMAIL_MAX_LENGTH:
        raise InvalidField("email", message)
    try:
        # Every option is explicit: the library's module-level defaults can
        # be changed by other code (tests, plug-ins) and must not apply here.
        validated = email_validator.validate_email(
            text,
            allow_smtputf8=True,
            allow_empty_local=False,
            allow_quoted_local=False,
            allow_domain_literal=False,
            allow_display_name=False,
            check_deliverability=False,
            test_environment=False,
            globally_deliverable=True,
        )
    except email_validator.EmailNotValidError:
        raise InvalidField("email", message) from None
    # Defensive: the idna package signals bad labels with UnicodeError
    # subclasses; email_validator wraps those it expects, not necessarily all.
    except UnicodeError:
        raise InvalidField("email", message) from None
    if len(validated.normalized) > EMAIL_MAX_LENGTH:
        raise InvalidField("email", message)
    return validated.normalized


def normalise_email(text: str) -> str:
    """The email address as a key for duplicate checks and caps: normalised, lower case.

    Lower-casing the local part is right for a key (almost no mailbox
    provider tells "Ana" from "ana"), not for sending: send to clean_email's value.
    """
    return clean_email(text).lower()


# --------------------------------------------------------------------------
# Phone
# --------------------------------------------------------------------------

# Numbers written without "+" or "00" are read as French.
_PHONE_DEFAULT_REGION = "FR"
_PHONE_MAX_LENGTH = 40
# Types an SMS reaches. FIXED_LINE_OR_MOBILE is how the library classes
# countries whose plans do not tell them apart (United States, Canada...).
_SMS_TYPES = frozenset(
    {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
)


@functools.lru_cache(maxsize=RECENT_CONTACTS)
def clean_phone(text: str) -> str:
    """Return a mobile phone number in E.164 form, e.g. "+33612345678".

    French numbers may be written 06 12 34 56 78, +33 6 12 34 56 78 or
    0033 6 12 34 56 78; foreign numbers need "+" or "00" and the country code.
    Landlines, VoIP (09) and service numbers are refused: we send SMS.
    """
    unreadable = N_(
        "Enter a mobile phone number, for example 06 12 34 56 78 or +44 7911 123456."
        " For a number outside France, start with + and the country code."
    )
    if len(text) > _PHONE_MAX_LENGTH:
        raise InvalidField("phone", unreadable)
    try:
        number = phonenumbers.parse(text, _PHONE_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        raise InvalidField("phone", unreadable) from None
    # An extension cannot receive a text message.
    if number.extension or not phonenumbers.is_valid_number(number):
        raise InvalidField("phone", unreadable)
    if phonenumbers.number_type(number) not in _SMS_TYPES:
        raise InvalidField(
            "phone",
            N_(
                "This is not a mobile phone number. Enter a mobile number"
                " (in France, starting with 06 or 07): we send you text messages."
            ),
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# --------------------------------------------------------------------------
# AGDREF number
# --------------------------------------------------------------------------

_AGDREF = re.compile(r"[0-9]{10}", re.ASCII)
_AGDREF_MAX_LENGTH = 40


def clean_agdref(text: str) -> str:
    """Return the 10-digit AGDREF number (numéro étranger) as 10 ASCII digits.

    Spaces, full stops and dashes between digits are dropped; digits of any
    script (full-width, Arabic-Indic...) are read as their ASCII value.
    """
    message = N_(
        "Enter your foreigner number (AGDREF): the 10 digits printed on your"
        " residence permit, for example 0123456789."
    )
    if len(text) > _AGDREF_MAX_LENGTH:
        raise InvalidField("agdref", message)
    digits = "".join(
        char
        for char in _ascii_digits(text)
        if not (char.isspace() or char == "." or unicodedata.category(char) == "Pd")
    )
    if not _AGDREF.fullmatch(digits):
        raise InvalidField("agdref", message)
    return digits


# --------------------------------------------------------------------------
# Fingerprints (duplicate and cap keys)
# --------------------------------------------------------------------------


def _hmac_hex(key: bytes, *parts: str) -> str:
    """HMAC-SHA256, in hex, of the parts joined by NUL (which no part holds)."""
    if not key:
        raise ValueError("the fingerprint key must not be empty")
    if any("\x00" in part for part in parts):
        raise ValueError("a fingerprint part must not contain NUL")
    # surrogatepass: a lone surrogate (never valid UTF-8) still hashes
    # instead of raising; every real text encodes as plain UTF-8.
    message = "\x00".join(parts).encode("utf-8", "surrogatepass")
    return hmac.digest(key, message, "sha256").hex()


# --------------------------------------------------------------------------
# The person's names, for the duplicate key
# --------------------------------------------------------------------------

# Where a cleaned name splits into words: its spaces and hyphens.
_WORD_BREAK = re.compile("[ -]+")

#: A person whose names hold at most this many words (family and given names
#: together) is checked against every order of them: 5,040 orders, at most
#: 15,120 keys (about 30 ms). With more words, the shortest two neighbours of
#: one name are taken as one word until there are this many.
ARRANGED_WORDS_MAX = 7

# The version of the canonical text of a person's key. The first version
# ("person", family then given names by normalise_name) is replaced by this
# one by `qs migrate-identity` (docs/operations.md).
_PERSON_LABEL = "person/2"


def name_words(text: str) -> list[str]:
    """The keys of the words of a name, in order: split at spaces and hyphens,
    each folded by :func:`confusables.word_skeleton` (case, accents, look-alike
    letters of any script, read in the script of most of the name's letters);
    words that fold to nothing are left out.

    For comparing, never for display: "Mаrtin" (Cyrillic а) gives ["rnartin"].
    """
    script = main_script(text)
    return [key for word in _WORD_BREAK.split(text) if (key := word_skeleton(word, script))]


def _name_pair(first: str, second: str) -> tuple[str, str]:
    # Unordered: family and given names swapped are the same person.
    return (first, second) if first <= second else (second, first)


def _glue_shortest(family: list[str], given: list[str]) -> tuple[list[str], list[str]]:
    """The two neighbouring words of one name with the fewest letters together, made one
    ("da", "Silva" -> "daSilva"): the names written without spaces do not change."""
    candidates = [
        (len(words[i]) + len(words[i + 1]), side, i)
        for side, words in enumerate((family, given))
        for i in range(len(words) - 1)
    ]
    _, side, i = min(candidates)
    words = list((family, given)[side])
    words[i : i + 2] = [words[i] + words[i + 1]]
    return (words, given) if side == 0 else (family, words)


def _name_pairs(family: list[str], given: list[str]) -> set[tuple[str, str]]:
    """Every way the words could spell two names, each written without spaces:
    every order of the words, cut in two at every place (at most
    ARRANGED_WORDS_MAX words: neighbours glued beyond)."""
    pairs = {_name_pair("".join(family), "".join(given))}
    while len(family) + len(given) > ARRANGED_WORDS_MAX:
        family, given = _glue_shortest(family, given)
    for order in set(itertools.permutations(family + given)):
        for cut in range(1, len(order)):
            pairs.add(_name_pair("".join(order[:cut]), "".join(order[cut:])))
    return pairs


def _person_fields(
    family_name: str, given_names: str, birth_date: datetime.date, nationality: str
) -> tuple[list[str], list[str], str, str]:
    family = name_words(clean_name("family_name", family_name))
    given = name_words(clean_name("given_names", given_names))
    # Formatted by hand: isoformat() of a datetime would add the time.
    birth = f"{birth_date.year:04d}-{birth_date.month:02d}-{birth_date.day:02d}"
    return family, given, birth, clean_nationality(nationality)


def identity_fingerprint(
    key: bytes,
    pool: str,
    *,
    agdref: str | None,
    family_name: str,
    given_names: str,
    birth_date: datetime.date,
    nationality: str,
) -> str:
    """The duplicate key of one person in one pool (hex HMAC-SHA256): the key a
    registration holds.

    With an AGDREF number the key is that number alone: the prefecture gives
    one number per foreigner for life, so it names the person whatever the
    spelling or script of their name on this form, and two people with the
    same name and birth date are never merged. Without one (first request),
    the key is the two names, each folded word by word (:func:`name_words`)
    and written without spaces, in either order, with the birth date and the
    nationality: "Nguyen / Thi Lan" and "THI-LAN / Nguyễn" hold one key.

    An empty or blank ``agdref`` counts as none. Each value is cleaned here
    again (raising :class:`InvalidField`), so raw form values give the same
    key as cleaned ones. The key is an HMAC with a server secret so that the
    stored key does not let anyone test guesses of a person's identity.

    A pool should key everyone the same way: a person who registers once
    with and once without an AGDREF number gets two different keys.
    """
    if agdref is not None and agdref.strip():
        return _hmac_hex(key, "agdref", pool, clean_agdref(agdref))
    family, given, birth, nationality = _person_fields(family_name, given_names, birth_date, nationality)
    first, second = _name_pair("".join(family), "".join(given))
    return _hmac_hex(key, _PERSON_LABEL, pool, first, second, birth, nationality)


def identity_lookups(
    key: bytes,
    pool: str,
    *,
    agdref: str | None,
    family_name: str,
    given_names: str,
    birth_date: datetime.date,
    nationality: str,
) -> tuple[str, ...]:
    """The duplicate keys a new registration must find free, its own first.

    A registration holds one key (:func:`identity_fingerprint`); it is refused
    if any of these is held. Without an AGDREF number they are the keys of
    every way its words could spell two names (words moved between the family
    and given names, or put in another order: "Lan Thi / Nguyen" finds
    "Nguyen / Thi Lan"). With one, the number's key alone.
    """
    if agdref is not None and agdref.strip():
        return (_hmac_hex(key, "agdref", pool, clean_agdref(agdref)),)
    family, given, birth, nationality = _person_fields(family_name, given_names, birth_date, nationality)
    held = _hmac_hex(key, _PERSON_LABEL, pool, *_name_pair("".join(family), "".join(given)), birth, nationality)
    others = {
        _hmac_hex(key, _PERSON_LABEL, pool, first, second, birth, nationality)
        for first, second in _name_pairs(family, given)
    }
    return (held, *sorted(others - {held}))


_CONTACT_NORMALISERS = {"email": normalise_email, "phone": clean_phone}


def contact_fingerprint(key: bytes, pool: str, kind: str, value: str) -> str:
    """The cap key of one email address or phone number in one pool (hex HMAC-SHA256).

    ``kind`` is "email" or "phone"; ``value`` is normalised here
    (normalise_email, or E.164 by clean_phone), raising :class:`InvalidField`
    if it does not clean, so "Ana@Mail.fr" and "ana@mail.fr" count as one.
    """
    try:
        normalise = _CONTACT_NORMALISERS[kind]
    except KeyError:
        raise ValueError(f"unknown contact kind {kind!r}: expected 'email' or 'phone'") from None
    return _hmac_hex(key, kind, pool, normalise(value))
