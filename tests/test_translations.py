"""The catalogues are complete: every applicant text in each language offered to applicants,
every staff text in French; no message fuzzy, none losing or gaining a placeholder or an
HTML tag, every plural form written.

The applicant domain (web/babel-applicant.cfg) has one catalogue per language of LOCALES;
only those of OFFERED_LOCALES must be complete (docs/languages.md: a language is offered once
its catalogue passes this test). English is the source text and has no catalogue.
"""

import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po

from queue_service import translations
from queue_service.reference import LOCALES, OFFERED_LOCALES, STAFF_LOCALES

ROOT = Path(__file__).resolve().parent.parent
SOURCE_LANGUAGE = "en"
KEYWORDS = DEFAULT_KEYWORDS | {"N_": None}
# %(name)s, %s, {name} ({{ }} is a literal brace pair, not a placeholder).
PLACEHOLDER = re.compile(r"%\(\w+\)[sdif]|%[sdif]|(?<!\{)\{\w*\}(?!\})")
# An HTML tag ("<token>" in a sentence about a header is not one).
HTML_TAG = re.compile(r"</?(?:a|abbr|b|bdi|bdo|br|code|em|i|kbd|li|ol|p|q|small|span|strong|sub|sup|time|u|ul)\b[^<>]*>")


def _extracted(folders: tuple[str, ...], method_map) -> set[str]:
    found = set()
    for folder in folders:
        for _, _, message, _, _ in extract_from_dir(ROOT / folder, method_map, keywords=KEYWORDS):
            found.add(message if isinstance(message, str) else message[0])
    return found


def applicant_sources() -> set[str]:
    with (ROOT / "web" / "babel-applicant.cfg").open() as handle:
        method_map, _ = parse_mapping_cfg(handle)
    return _extracted(("queue_service", "web"), method_map)


def staff_sources() -> set[str]:
    with (ROOT / "web" / "babel.cfg").open() as handle:
        method_map, _ = parse_mapping_cfg(handle)
    return _extracted(("queue_service", "web", "worker"), method_map) - applicant_sources()


def catalog(language: str, domain: str):
    path = translations.CATALOG_DIRECTORY / language / "LC_MESSAGES" / f"{domain}.po"
    with path.open("rb") as handle:
        return read_po(handle, locale=language)


def problems(language: str, domain: str, sources: set[str]) -> list[str]:
    """What keeps the catalogue of `language` in `domain` from being complete, one line each."""
    found = catalog(language, domain)
    present = {message.id if isinstance(message.id, str) else message.id[0] for message in found if message.id}
    errors = [f"missing, run the translations update: {message!r}" for message in sorted(sources - present)]
    for message in found:
        first_id = message.id if isinstance(message.id, str) else message.id[0]
        if not message.id or first_id not in sources:
            continue
        label = repr(first_id)
        ids = [message.id] if isinstance(message.id, str) else list(message.id)
        strings = [message.string] if isinstance(message.id, str) else list(message.string)
        if message.fuzzy:
            errors.append(f"fuzzy: {label}")
        if not all(strings) or (isinstance(message.id, tuple) and len(strings) != found.num_plurals):
            errors.append(f"untranslated (or a plural form missing): {label}")
            continue
        source_placeholders = set().union(*(PLACEHOLDER.findall(text) for text in ids))
        for string in strings:
            added = set(PLACEHOLDER.findall(string)) - source_placeholders
            if added:
                errors.append(f"placeholder {sorted(added)} added: {label}")
        # A plural form may leave the count out ("one day"), but the forms together keep every placeholder.
        written = set().union(*(PLACEHOLDER.findall(text) for text in strings))
        if isinstance(message.id, str):
            missing = source_placeholders - written
        else:
            missing = {name for name in source_placeholders if not any(name in text for text in strings)}
        if missing:
            errors.append(f"placeholder {sorted(missing)} missing: {label}")
        for string in strings:
            if sorted(HTML_TAG.findall(string)) != sorted(HTML_TAG.findall(ids[0])):
                errors.append(f"HTML tags changed: {label}")
                break
    errors += [f"{message.id!r}: {', '.join(map(str, found_errors))}" for message, found_errors in found.check()]
    return errors


@pytest.mark.parametrize("language", [code for code in OFFERED_LOCALES if code != SOURCE_LANGUAGE])
def test_the_applicant_catalogue_of_every_offered_language_is_complete(language):
    assert problems(language, translations.APPLICANT_DOMAIN, applicant_sources()) == [], (
        f"translate queue_service/translations/{language}/LC_MESSAGES/applicant.po (docs/languages.md)")


def test_the_staff_catalogue_is_complete_in_french():
    assert problems("fr", translations.STAFF_DOMAIN, staff_sources()) == [], (
        "run `make translations-update` and translate these in fr/LC_MESSAGES/messages.po")


def test_a_new_catalogue_has_the_plural_forms_babel_knows_for_its_language():
    """Arabic has six plural forms, Russian and Ukrainian three, Chinese one (French keeps the
    two of its older catalogue: CLDR added a third for "millions de")."""
    for language in set(LOCALES) - {SOURCE_LANGUAGE, "fr"}:
        assert catalog(language, translations.APPLICANT_DOMAIN).num_plurals == get_plural(language).num_plurals
    assert catalog("ar", translations.APPLICANT_DOMAIN).num_plurals == 6


def test_every_language_has_an_applicant_catalogue_and_only_french_a_staff_one():
    folder = translations.CATALOG_DIRECTORY
    applicant = {path.parent.parent.name for path in folder.glob("*/LC_MESSAGES/applicant.po")}
    staff = {path.parent.parent.name for path in folder.glob("*/LC_MESSAGES/messages.po")}
    assert applicant == set(LOCALES) - {SOURCE_LANGUAGE}
    assert staff == set(STAFF_LOCALES) - {SOURCE_LANGUAGE}
    assert set(OFFERED_LOCALES) <= set(LOCALES) and OFFERED_LOCALES[0] == LOCALES[0]
    for language in applicant:
        assert str(catalog(language, translations.APPLICANT_DOMAIN).locale) == language


def test_a_message_lives_in_one_domain_only():
    """A text shown to staff and to applicants is translated once, in the applicant catalogue."""
    staff_template = read_po((translations.CATALOG_DIRECTORY / "messages.pot").open("rb"))
    applicant_template = read_po((translations.CATALOG_DIRECTORY / "applicant.pot").open("rb"))
    assert {m.id for m in staff_template if m.id} & {m.id for m in applicant_template if m.id} == set()
    assert {m.id if isinstance(m.id, str) else m.id[0] for m in applicant_template if m.id} == applicant_sources()


def test_the_completeness_check_finds_what_it_is_meant_to_find(tmp_path, monkeypatch):
    """A broken catalogue is reported: a fuzzy message, a lost placeholder, a changed tag, a missing form."""
    broken = tmp_path / "ar" / "LC_MESSAGES"
    broken.mkdir(parents=True)
    header = catalog("ar", translations.APPLICANT_DOMAIN)
    plural_header = header.plural_forms
    broken.joinpath("applicant.po").write_text(f'''msgid ""
msgstr ""
"Language: ar\\n"
"Plural-Forms: {plural_header}\\n"
"Content-Type: text/plain; charset=utf-8\\n"

#, fuzzy
msgid "Withdrawn"
msgstr "منسحب"

msgid "Reference: %(ref)s"
msgstr "المرجع"

msgid "<strong>Yes</strong>"
msgstr "<em>نعم</em>"

msgid "%(num)s day"
msgid_plural "%(num)s days"
msgstr[0] "%(num)s يوم"
msgstr[1] "يوم"
''', encoding="utf-8")
    monkeypatch.setattr(translations, "CATALOG_DIRECTORY", tmp_path)
    found = "\n".join(problems("ar", translations.APPLICANT_DOMAIN,
                               {"Withdrawn", "Reference: %(ref)s", "<strong>Yes</strong>", "%(num)s day", "Gone"}))
    assert "fuzzy: 'Withdrawn'" in found
    assert "placeholder ['%(ref)s'] missing" in found
    assert "HTML tags changed: '<strong>Yes</strong>'" in found
    assert "untranslated (or a plural form missing): '%(num)s day'" in found
    assert "missing, run the translations update: 'Gone'" in found
