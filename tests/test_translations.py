"""Every text shown to people exists in French and in English."""

from pathlib import Path

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
FRENCH_CATALOG = ROOT / "queue_service" / "translations" / "fr" / "LC_MESSAGES" / "messages.po"
METHOD_MAP = [("**.py", "python"), ("**/templates/**.html", "jinja2"), ("**/templates/**.txt", "jinja2")]


def source_messages() -> set[str]:
    keywords = DEFAULT_KEYWORDS | {"N_": None}
    found = set()
    for folder in ("queue_service", "web", "worker"):
        for _, _, message, _, _ in extract_from_dir(ROOT / folder, METHOD_MAP, keywords=keywords):
            found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_message_in_the_code_has_a_french_translation():
    with FRENCH_CATALOG.open("rb") as handle:
        catalog = read_po(handle, locale="fr")
    untranslated = sorted(
        message for message in source_messages() if catalog.get(message) is None or not catalog.get(message).string
    )
    assert untranslated == [], "run `make translations-update` and translate these in messages.po"


def test_french_catalog_has_no_fuzzy_or_broken_entries():
    with FRENCH_CATALOG.open("rb") as handle:
        catalog = read_po(handle, locale="fr")
    fuzzy = [message.id for message in catalog if message.id and message.fuzzy]
    broken = [(message.id, errors) for message, errors in catalog.check()]
    assert fuzzy == [] and broken == []
