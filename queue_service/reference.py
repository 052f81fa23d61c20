"""Reference data: prefectures, procedures and demo sites.

Why this module exists
----------------------
Every other part of the service (the store, the draw, the web forms, the
worker) needs the same small set of facts that almost never change: which
prefectures exist and in which time zone they live, which procedures an
applicant can wait for and which identity fields each one requires, and a few
sites to run the service on out of the box. Keeping these facts in one
plain-Python module, as frozen dataclasses in constant tuples, gives:

- one spelling of every code ("01", "2A", "renewal", "agdref"...) for the
  whole code base, instead of string literals scattered in handlers;
- data that can be imported anywhere (domain, web, worker, tests) without
  Flask, Redis or any I/O: importing this module only builds tuples;
- immutable values, so no request can change the reference data of another.

Sites and opening hours are *configuration* in production (the prefecture
admin manages them, see DESIGN.md); ``DEMO_SITES`` only seeds a demo tenant,
Ain ("01"). Their street addresses are meant to be the real postal addresses
of the buildings (see the note on ``DEMO_SITES`` for which ones were checked);
their opening hours are plausible demo values, not the official timetables.

Lookups
-------
``prefecture_by_code`` and ``procedure_by_code`` raise ``KeyError`` (with a
message naming the unknown code) rather than returning ``None``: an unknown
code is a programming or input error that should fail loudly, and callers
that expect user input can catch ``KeyError`` at the boundary.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from enum import Enum


def N_(message: str) -> str:
    """Mark reference text for the applicant catalogue (web/babel-applicant.cfg): the English
    labels of the procedures are translated when shown in a language other than French."""
    return message


__all__ = [
    "Prefecture",
    "PREFECTURES",
    "IdentityField",
    "Procedure",
    "PROCEDURES",
    "OpeningHours",
    "Site",
    "SITE_KINDS",
    "DEMO_SITES",
    "HALF_DAYS",
    "DEMO_AGDREF_NUMBERS",
    "slot_class",
    "prefecture_by_code",
    "procedure_by_code",
]


# --------------------------------------------------------------------------
# Prefectures
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Prefecture:
    """A département that has a prefecture: the tenant of the service.

    ``code`` is the official département code ("01", "2A", "974");
    ``name`` its French name; ``timezone`` an IANA time zone name.
    """

    code: str
    name: str
    timezone: str


_PARIS = "Europe/Paris"


def _metro(code: str, name: str) -> Prefecture:
    return Prefecture(code=code, name=name, timezone=_PARIS)


#: All 101 départements with a prefecture, in the order of the official list
#: (01..19, 2A, 2B, 21..95, 971..976). Corsica is "2A"/"2B", never "20".
PREFECTURES: tuple[Prefecture, ...] = (
    _metro("01", "Ain"),
    _metro("02", "Aisne"),
    _metro("03", "Allier"),
    _metro("04", "Alpes-de-Haute-Provence"),
    _metro("05", "Hautes-Alpes"),
    _metro("06", "Alpes-Maritimes"),
    _metro("07", "Ardèche"),
    _metro("08", "Ardennes"),
    _metro("09", "Ariège"),
    _metro("10", "Aube"),
    _metro("11", "Aude"),
    _metro("12", "Aveyron"),
    _metro("13", "Bouches-du-Rhône"),
    _metro("14", "Calvados"),
    _metro("15", "Cantal"),
    _metro("16", "Charente"),
    _metro("17", "Charente-Maritime"),
    _metro("18", "Cher"),
    _metro("19", "Corrèze"),
    _metro("2A", "Corse-du-Sud"),
    _metro("2B", "Haute-Corse"),
    _metro("21", "Côte-d'Or"),
    _metro("22", "Côtes-d'Armor"),
    _metro("23", "Creuse"),
    _metro("24", "Dordogne"),
    _metro("25", "Doubs"),
    _metro("26", "Drôme"),
    _metro("27", "Eure"),
    _metro("28", "Eure-et-Loir"),
    _metro("29", "Finistère"),
    _metro("30", "Gard"),
    _metro("31", "Haute-Garonne"),
    _metro("32", "Gers"),
    _metro("33", "Gironde"),
    _metro("34", "Hérault"),
    _metro("35", "Ille-et-Vilaine"),
    _metro("36", "Indre"),
    _metro("37", "Indre-et-Loire"),
    _metro("38", "Isère"),
    _metro("39", "Jura"),
    _metro("40", "Landes"),
    _metro("41", "Loir-et-Cher"),
    _metro("42", "Loire"),
    _metro("43", "Haute-Loire"),
    _metro("44", "Loire-Atlantique"),
    _metro("45", "Loiret"),
    _metro("46", "Lot"),
    _metro("47", "Lot-et-Garonne"),
    _metro("48", "Lozère"),
    _metro("49", "Maine-et-Loire"),
    _metro("50", "Manche"),
    _metro("51", "Marne"),
    _metro("52", "Haute-Marne"),
    _metro("53", "Mayenne"),
    _metro("54", "Meurthe-et-Moselle"),
    _metro("55", "Meuse"),
    _metro("56", "Morbihan"),
    _metro("57", "Moselle"),
    _metro("58", "Nièvre"),
    _metro("59", "Nord"),
    _metro("60", "Oise"),
    _metro("61", "Orne"),
    _metro("62", "Pas-de-Calais"),
    _metro("63", "Puy-de-Dôme"),
    _metro("64", "Pyrénées-Atlantiques"),
    _metro("65", "Hautes-Pyrénées"),
    _metro("66", "Pyrénées-Orientales"),
    _metro("67", "Bas-Rhin"),
    _metro("68", "Haut-Rhin"),
    _metro("69", "Rhône"),
    _metro("70", "Haute-Saône"),
    _metro("71", "Saône-et-Loire"),
    _metro("72", "Sarthe"),
    _metro("73", "Savoie"),
    _metro("74", "Haute-Savoie"),
    _metro("75", "Paris"),
    _metro("76", "Seine-Maritime"),
    _metro("77", "Seine-et-Marne"),
    _metro("78", "Yvelines"),
    _metro("79", "Deux-Sèvres"),
    _metro("80", "Somme"),
    _metro("81", "Tarn"),
    _metro("82", "Tarn-et-Garonne"),
    _metro("83", "Var"),
    _metro("84", "Vaucluse"),
    _metro("85", "Vendée"),
    _metro("86", "Vienne"),
    _metro("87", "Haute-Vienne"),
    _metro("88", "Vosges"),
    _metro("89", "Yonne"),
    _metro("90", "Territoire de Belfort"),
    _metro("91", "Essonne"),
    _metro("92", "Hauts-de-Seine"),
    _metro("93", "Seine-Saint-Denis"),
    _metro("94", "Val-de-Marne"),
    _metro("95", "Val-d'Oise"),
    Prefecture("971", "Guadeloupe", "America/Guadeloupe"),
    Prefecture("972", "Martinique", "America/Martinique"),
    Prefecture("973", "Guyane", "America/Cayenne"),
    Prefecture("974", "La Réunion", "Indian/Reunion"),
    Prefecture("976", "Mayotte", "Indian/Mayotte"),
)


#: The article French puts before each département's name ("la préfecture de l'Ain", "du
#: Rhône", "des Bouches-du-Rhône"); none for Paris, Mayotte and La Réunion (whose "La" is part
#: of its name). As in INSEE's official geographic code (its "type de nom en clair").
_ARTICLES = {
    "le": "14 15 18 25 29 30 32 39 41 45 46 47 49 56 59 62 63 67 68 69 81 82 83 84 90 94 95",
    "la": "16 17 19 2A 2B 21 23 24 26 31 33 42 43 44 48 50 51 52 53 54 55 57 58 70 71 72 73 74 76 77 80 85 86 "
          "87 93 971 972 973",
    "l’": "01 02 03 07 09 10 11 12 27 28 34 35 36 37 38 60 61 89 91",
    "les": "04 05 06 08 13 22 40 64 65 66 78 79 88 92",
}
FRENCH_ARTICLES: dict[str, str] = {code: article for article, codes in _ARTICLES.items() for code in codes.split()}


def french_of(prefecture: Prefecture) -> str:
    """"de" and the département's name with its article, as French says "la préfecture de l'Ain":
    de l'Ain, du Rhône, des Bouches-du-Rhône, de la Guadeloupe, de Paris, de La Réunion."""
    article = FRENCH_ARTICLES.get(prefecture.code, "")
    contracted = {"le": "du ", "les": "des ", "la": "de la ", "l’": "de l’"}
    return contracted.get(article, "de ") + prefecture.name


def prefecture_by_code(code: str) -> Prefecture:
    """Return the prefecture with this département code.

    Raises ``KeyError`` for an unknown code (e.g. "20": Corsica is "2A"/"2B").
    """
    for prefecture in PREFECTURES:
        if prefecture.code == code:
            return prefecture
    raise KeyError(f"unknown prefecture code {code!r}")


# --------------------------------------------------------------------------
# Procedures
# --------------------------------------------------------------------------


class IdentityField(str, Enum):
    """An identity field an applicant may have to give when registering."""

    FAMILY_NAME = "family_name"
    GIVEN_NAMES = "given_names"
    BIRTH_DATE = "birth_date"
    NATIONALITY = "nationality"
    #: The 10-digit number of the foreigner's file (numéro AGDREF), printed
    #: on every residence permit and receipt.
    AGDREF = "agdref"
    #: Expiry date of the residence permit the applicant holds now.
    PERMIT_EXPIRY = "permit_expiry"


@dataclass(frozen=True)
class Procedure:
    """What an appointment is for, and which identity fields it requires."""

    code: str
    label_fr: str
    label_en: str
    description_fr: str
    description_en: str
    required_fields: tuple[IdentityField, ...]


_BASE_FIELDS: tuple[IdentityField, ...] = (
    IdentityField.FAMILY_NAME,
    IdentityField.GIVEN_NAMES,
    IdentityField.BIRTH_DATE,
    IdentityField.NATIONALITY,
)

PROCEDURES: tuple[Procedure, ...] = (
    Procedure(
        code="first_request",
        label_fr="Première demande de titre de séjour",
        label_en=N_("First residence permit application"),
        description_fr="Vous demandez un titre de séjour pour la première fois.",
        description_en=N_("You are asking for a residence permit for the first time."),
        required_fields=_BASE_FIELDS,
    ),
    Procedure(
        code="renewal",
        label_fr="Renouvellement de titre de séjour",
        label_en=N_("Residence permit renewal"),
        description_fr=(
            "Vous avez déjà un titre de séjour et vous voulez le renouveler."
        ),
        description_en=N_(
            "You already have a residence permit and you want to renew it."
        ),
        required_fields=_BASE_FIELDS
        + (IdentityField.AGDREF, IdentityField.PERMIT_EXPIRY),
    ),
    Procedure(
        code="permit_pickup",
        label_fr="Retrait de titre de séjour",
        label_en=N_("Residence permit collection"),
        description_fr="Votre titre de séjour est prêt et vous venez le chercher.",
        description_en=N_("Your residence permit is ready and you come to collect it."),
        required_fields=_BASE_FIELDS + (IdentityField.AGDREF,),
    ),
    Procedure(
        code="student",
        label_fr="Titre de séjour étudiant",
        label_en=N_("Student residence permit"),
        description_fr=(
            "Vous faites vos études en France et vous demandez un titre de "
            "séjour étudiant."
        ),
        description_en=N_(
            "You study in France and you are asking for a student residence "
            "permit."
        ),
        required_fields=_BASE_FIELDS,
    ),
)


def procedure_by_code(code: str) -> Procedure:
    """Return the procedure with this code.

    Raises ``KeyError`` for an unknown code.
    """
    for procedure in PROCEDURES:
        if procedure.code == code:
            return procedure
    known = ", ".join(p.code for p in PROCEDURES)
    raise KeyError(f"unknown procedure code {code!r} (known: {known})")


# --------------------------------------------------------------------------
# Sites
# --------------------------------------------------------------------------

# --------------------------------------------------------------------------
# Languages
# --------------------------------------------------------------------------

# The languages a registration may be in (its pages, emails and SMS), as Babel names them
# (a script or a country after "_"); the first is the default. Each but English (the source
# text) has a catalogue of the applicant domain in queue_service/translations.
LOCALES: tuple[str, ...] = ("fr", "en", "ar", "es", "pt", "ru", "uk", "tr", "zh_Hans", "fa_AF")
# The languages offered to applicants (the picker, the browser's preference, the pages and
# messages of a registration): those whose applicant catalogue is complete, as
# tests/test_translations.py checks for each of them. A language joins once its catalogue is
# translated and reviewed (docs/languages.md); until then a registration in it is spoken to
# in the default language.
OFFERED_LOCALES: tuple[str, ...] = ("fr", "en", "ar", "es", "pt", "ru", "uk", "tr", "zh_Hans", "fa_AF")
# The languages of the staff pages and the staff API: their text is in French and English only.
STAFF_LOCALES: tuple[str, ...] = ("fr", "en")
# Languages written right to left.
RTL_LOCALES: frozenset[str] = frozenset({"ar", "fa_AF"})
# Each language named in itself, as the picker shows it.
LANGUAGE_NAMES: dict[str, str] = {
    "fr": "Français",
    "en": "English",
    "ar": "العربية",
    "es": "Español",
    "pt": "Português",
    "ru": "Русский",
    "uk": "Українська",
    "tr": "Türkçe",
    "zh_Hans": "中文（简体）",
    "fa_AF": "دری",
}


def language_tag(code: str) -> str:
    """The BCP 47 tag of a language of LOCALES, for `lang` and `hreflang`: "zh_Hans" is "zh-Hans"."""
    return code.replace("_", "-")


def text_direction(code: str) -> str:
    """"rtl" for a language written right to left, "ltr" otherwise (the `dir` attribute)."""
    return "rtl" if code in RTL_LOCALES else "ltr"


def spoken_language(code: str) -> str:
    """The language the service speaks to a registration in `code`: `code` once it is offered,
    the default language until then."""
    return code if code in OFFERED_LOCALES else LOCALES[0]



SITE_KINDS: tuple[str, ...] = ("prefecture", "sub_prefecture")


@dataclass(frozen=True)
class OpeningHours:
    """One opening period of a site: ``weekday`` 0 = Monday .. 6 = Sunday,
    local wall-clock times in the prefecture's time zone."""

    weekday: int
    opens: datetime.time
    closes: datetime.time


@dataclass(frozen=True)
class Site:
    """A place with counters, belonging to one prefecture (by code)."""

    id: str
    prefecture: str
    name: str
    kind: str  # one of SITE_KINDS
    address: str
    postcode: str
    city: str
    opening_hours: tuple[OpeningHours, ...]
    # A closed site takes no new slots and is not offered to new applicants.
    closed: bool = False


def _hours(
    weekdays: tuple[int, ...], *periods: tuple[tuple[int, int], tuple[int, int]]
) -> tuple[OpeningHours, ...]:
    """Opening periods ((h, m), (h, m)) repeated on each of ``weekdays``."""
    return tuple(
        OpeningHours(
            weekday=day,
            opens=datetime.time(*opens),
            closes=datetime.time(*closes),
        )
        for day in weekdays
        for opens, closes in periods
    )


_MON_FRI = (0, 1, 2, 3, 4)

#: Demo sites for Ain ("01"): the prefecture and its three sub-prefectures.
#: Hours are demo values. Addresses: Bourg-en-Bresse and Nantua were checked
#: against public pages; Belley and Gex are from memory and still to be
#: checked against the prefecture's site (ain.gouv.fr) before any real use.
DEMO_SITES: tuple[Site, ...] = (
    Site(
        id="bourg",
        prefecture="01",
        name="Préfecture de l'Ain",
        kind="prefecture",
        address="45 avenue Alsace-Lorraine",
        postcode="01000",
        city="Bourg-en-Bresse",
        opening_hours=_hours(_MON_FRI, ((9, 0), (12, 0)), ((13, 30), (16, 0))),
    ),
    Site(
        id="belley",
        prefecture="01",
        name="Sous-préfecture de Belley",
        kind="sub_prefecture",
        address="29 rue Sainte-Marie",
        postcode="01300",
        city="Belley",
        opening_hours=_hours((0, 1, 3), ((9, 0), (11, 30))),
    ),
    Site(
        id="gex",
        prefecture="01",
        name="Sous-préfecture de Gex",
        kind="sub_prefecture",
        address="26 rue Charles Harent",
        postcode="01170",
        city="Gex",
        opening_hours=tuple(
            sorted(
                _hours(_MON_FRI, ((8, 45), (11, 45)))
                + _hours((1, 3), ((13, 30), (15, 30))),
                key=lambda h: (h.weekday, h.opens),
            )
        ),
    ),
    Site(
        id="nantua",
        prefecture="01",
        name="Sous-préfecture de Nantua",
        kind="sub_prefecture",
        address="36 rue du Collège",
        postcode="01130",
        city="Nantua",
        opening_hours=_hours((1, 3), ((9, 0), (11, 30))),
    ),
)


# --------------------------------------------------------------------------
# Half-days and slot classes
# --------------------------------------------------------------------------

#: The half-days an applicant can say they are free, Monday to Friday,
#: morning ("am", before 13:00 local time) and afternoon ("pm").
HALF_DAYS: tuple[str, ...] = tuple(
    f"{day}-{part}" for day in ("mon", "tue", "wed", "thu", "fri") for part in ("am", "pm")
)


def slot_class(site_id: str, half_day: str) -> str:
    """The unit applicants' constraints name: a site and a half-day, e.g. "bourg-mon-am"."""
    return f"{site_id}-{half_day}"


#: AGDREF numbers the demo prefecture (Ain) knows, for trying renewals and
#: pickups in development. Real prefectures upload their own (qs import-agdref).
DEMO_AGDREF_NUMBERS: tuple[str, ...] = tuple(f"01000000{n:02d}" for n in range(1, 21))
