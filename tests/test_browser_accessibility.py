"""Every kind of page, public and staff, in French and English, in Chromium: axe-core finds no
serious or critical violation, at 320 CSS pixels nothing scrolls sideways (WCAG 1.4.10, reflow),
and no raw value of the code (a state, a role, a procedure or site code, a time zone offset)
nor any English sentence on a French page is shown to a person.

axe-core comes from npm (package.json, installed by `make`): it is injected into each page
as a person's browser would load a script, and run there.
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import pytest
from helpers import DRAW_ID, POOL, PASSWORD, first_offer

from queue_service import offers
from queue_service.registration.tokens import status_token

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"
NARROWEST = 320  # CSS pixels: WCAG 1.4.10 asks for no horizontal scrolling at this width
BLOCKING = ("serious", "critical")


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE.exists():
        pytest.fail(f"axe-core is missing ({AXE}): run `make install-test` (it runs npm ci)")
    return AXE.read_text()


def applicant_pages(store, settings, booked_key, waiting_key) -> dict[str, str]:
    booked, waiting = status_token(settings.secret_key, booked_key), status_token(settings.secret_key, waiting_key)
    return {
        "home": "/",
        "prefecture": "/p/01",
        "registration form": "/p/01/renewal/register",
        "recovery": "/recover",
        "privacy notice": "/privacy",
        "legal notice": "/legal",
        "accessibility statement": "/accessibility",
        "statistics index": "/statistics",
        "statistics": "/p/01/statistics",
        "draw record": f"/draws/{DRAW_ID}",
        "verification": "/verify",
        "status (waiting)": f"/status?t={waiting}",
        "status (booked)": f"/status?t={booked}",
        "offer (booked)": f"/offer?t={booked}",
        "offer (none)": f"/offer?t={waiting}",
        "proof": f"/status/proof?t={waiting}",
        "withdrawal": f"/status/withdraw?t={waiting}",
        "error page": "/status?t=forged",
    }


STAFF_PAGES = {
    "staff home": "/staff/",
    "staff prefecture": "/staff/p/01/",
    "dashboard": "/staff/p/01/dashboard",
    "national dashboard": "/staff/dashboard",
    "sites": "/staff/p/01/sites",
    "slots": "/staff/p/01/slots",
    "schedule": "/staff/p/01/schedules/first_request",
    "run a draw": "/staff/p/01/schedules/first_request/run",
    "counter check-in": "/staff/p/01/check-in",
    "counter registration": "/staff/p/01/register/renewal",
    "staff accounts": "/staff/p/01/accounts",
    "AGDREF numbers": "/staff/p/01/agdref",
    "undelivered messages": "/staff/p/01/deliveries",
    "policy simulator": "/staff/p/01/simulator",
    "API tokens": "/staff/tokens",
}


def raw_values() -> re.Pattern:
    """Values of the code that a person should never read as they are: states, roles,
    procedure and site codes, triggers (whole words, as the code spells them)."""
    from queue_service.draws import DrawState, Trigger
    from queue_service.inventory.slots import SlotStatus
    from queue_service.offers import OfferStatus
    from queue_service.reference import DEMO_SITES, PROCEDURES
    from queue_service.registration import RegistrationStatus
    from queue_service.staff.accounts import Role

    words = {member.value for enum in (DrawState, Trigger, SlotStatus, OfferStatus, RegistrationStatus, Role)
             for member in enum}
    words |= {procedure.code for procedure in PROCEDURES} | {site.id for site in DEMO_SITES}
    words -= {"agent"}  # also an English word, and the French one
    return re.compile(r"(?<![\w/.@-])(" + "|".join(sorted(map(re.escape, words), key=len, reverse=True)) + r")(?![\w/.@-])"
                      + r"|[+-]\d{4}\b(?=\s|$)")  # or a time zone offset such as +0100


def untranslated(locale: str) -> list[str]:
    """English sentences of the catalogue whose French differs: on a French page, one is untranslated."""
    if not locale.startswith("fr"):
        return []
    from babel.messages.pofile import read_po

    catalogue = Path(__file__).resolve().parent.parent / "queue_service" / "translations" / "fr" / "LC_MESSAGES"
    found = []
    for domain in ("applicant.po", "messages.po"):  # the applicant's text, and the staff's
        with (catalogue / domain).open("rb") as handle:
            messages = read_po(handle)
        found += [message.id for message in messages if isinstance(message.id, str) and "%" not in message.id
                  and len(message.id) > 25 and message.string and message.string != message.id]
    return found


RAW = raw_values()
SITE_CODES = {"bourg", "belley", "gex", "nantua"}
ENGLISH_SENTENCES = {"fr-FR": untranslated("fr-FR")}


def problems_on(page, url: str, axe: str, locale: str = "en-GB") -> list[str]:
    """What fails on the page at `url`: axe's serious and critical violations, the reflow, raw
    values of the code, English left on a French page."""
    response = page.goto(url)
    assert response is not None and response.status < 500, url
    # What a person reads: the main content without the identifiers it shows as such (<code>).
    text = page.evaluate("""() => {
        const shown = [...document.querySelectorAll("main code, main kbd, main samp")];
        shown.forEach(e => e.style.display = "none");
        const text = document.querySelector("main").innerText;
        shown.forEach(e => e.style.display = "");
        return text; }""")
    # In English most states are also words ("waiting", "drawn"): there only codes with an
    # underscore, site codes and offsets are sure to be raw values.
    raw = [found.group(0) for found in RAW.finditer(text)]
    if not locale.startswith("fr"):
        raw = [value for value in raw if "_" in value or value in SITE_CODES or value[0] in "+-"]
    problems = [f"raw value {value!r}" for value in raw]
    problems += [f"untranslated {sentence!r}" for sentence in ENGLISH_SENTENCES.get(locale, ()) if sentence in text]
    page.add_script_tag(content=axe)
    found = page.evaluate(
        """async () => {
            const result = await axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21aa"]}});
            return result.violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.length,
                                                 target: v.nodes[0] && v.nodes[0].target.join(" ")}));
        }"""
    )
    problems += [f"{v['impact']} {v['id']} ({v['nodes']}x, e.g. {v['target']})" for v in found
                 if v["impact"] in BLOCKING]
    width = page.evaluate("() => document.documentElement.scrollWidth")
    if width > NARROWEST:
        widest = page.evaluate(
            """() => [...document.querySelectorAll("body *")]
                .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
                .slice(0, 3).map(e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "")
                                  + (e.className && typeof e.className === "string" ? "." + e.className.split(" ")[0] : ""))"""
        )
        problems.append(f"scrolls sideways at {NARROWEST}px: {width}px wide ({', '.join(widest)})")
    return problems


@pytest.mark.parametrize("locale", ["fr-FR", "en-GB"])
def test_every_page_kind_passes_axe_reflows_and_shows_no_raw_value(live_server, browser, drawn, ain_staff, settings,
                                                              axe_source, locale):
    store, _, people = drawn
    booked_key, _ = first_offer(store)
    offers.confirm(store, booked_key, settings.identity_key.encode(), datetime.datetime.now(datetime.timezone.utc))
    waiting_key = next(p.key for p in people if store.registration(p.key).status.value == "waiting")
    booking = offers.display_code(store.offer(booked_key).booking_code)
    # The test injects axe as a script of its own: the page's CSP rightly forbids that, so this context bypasses it.
    context = browser.new_context(viewport={"width": NARROWEST, "height": 720}, locale=locale, bypass_csp=True)
    page = context.new_page()
    failures = {}
    for name, path in applicant_pages(store, settings, booked_key, waiting_key).items():
        if problems := problems_on(page, live_server + path, axe_source, locale):
            failures[name] = problems
    page.goto(live_server + "/staff/login")
    page.locator("#email").fill("admin@ain.example.org")
    page.locator("#password").fill(PASSWORD)
    page.locator("button[type=submit]").click()
    page.wait_for_url(live_server + "/staff/")
    for name, path in (STAFF_PAGES | {"counter with a booking": f"/staff/p/01/check-in?code={booking}"}).items():
        if problems := problems_on(page, live_server + path, axe_source, locale):
            failures[name] = problems
    context.close()
    assert not failures, "\n".join(f"{name}: {'; '.join(problems)}" for name, problems in failures.items())
    assert POOL  # the pages above are those of this pool's draw
