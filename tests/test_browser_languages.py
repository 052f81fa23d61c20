"""End to end in Arabic, right to left, on the narrowest phone: register, confirm, read the
status page; nothing scrolls sideways at 320 CSS pixels and the reference reads left to right."""

import pytest
from helpers import SCREENSHOTS, collect_console_errors, email_link

pytestmark = pytest.mark.browser

NARROWEST = 320  # CSS pixels (WCAG 1.4.10)
ARABIC = {
    "family_name": "اسم العائلة",
    "given_names": "الأسماء الشخصية",
    "birth_date": "تاريخ الميلاد",
    "nationality": "الجنسية",
    "agdref": "رقم AGDREF",
    "permit_expiry": "تاريخ انتهاء بطاقتك",
    "email": "البريد الإلكتروني",
    "phone": "الهاتف المحمول",
    "consent": "قرأت إشعار الخصوصية",
    "register": "التسجيل",
    "confirm": "تأكيد تسجيلي",
    "waiting": "في قائمة الانتظار",
}


def scrolls_sideways(page) -> list[str]:
    """The elements that stick out of the viewport, if the page is wider than it (none expected)."""
    if page.evaluate("() => document.documentElement.scrollWidth") <= NARROWEST:
        return []
    return page.evaluate("""() => [...document.querySelectorAll("body *")]
        .filter(e => { const box = e.getBoundingClientRect(); return box.right > window.innerWidth + 1 || box.left < -1; })
        .slice(0, 5).map(e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : ""))""")


def test_register_confirm_and_read_the_status_in_arabic_at_320_pixels(live_server, browser, mailbox, deliver_messages):
    context = browser.new_context(viewport={"width": NARROWEST, "height": 640}, is_mobile=True, has_touch=True,
                                  locale="ar-MA")
    page = context.new_page()
    errors = collect_console_errors(page)
    try:
        page.goto(live_server + "/")
        assert page.evaluate("() => [document.documentElement.lang, document.documentElement.dir]") == ["ar", "rtl"]
        assert scrolls_sideways(page) == []
        page.goto(live_server + "/p/01/renewal/register")
        assert scrolls_sideways(page) == []
        page.get_by_label(ARABIC["family_name"]).fill("El Amrani")
        page.get_by_label(ARABIC["given_names"]).fill("فاطمة الزهراء")
        page.get_by_label(ARABIC["birth_date"]).fill("1988-11-02")
        page.get_by_label(ARABIC["nationality"]).select_option("MA")
        page.get_by_label(ARABIC["agdref"]).fill("0100 0000 01")
        page.get_by_label(ARABIC["permit_expiry"]).fill("2027-02-15")
        page.locator("input[name=email]").fill("fatima@example.org")  # its label holds its hint
        page.get_by_label(ARABIC["phone"]).fill("+212 612-345678")
        # Right to left, the DSFR's box sits at the label's right end: tick it there.
        label = page.locator("label[for=consent]")
        box = label.bounding_box()
        label.click(position={"x": box["width"] - 4, "y": 8})
        assert page.get_by_label(ARABIC["consent"]).is_checked()
        page.get_by_role("button", name=ARABIC["register"], exact=True).click()
        page.wait_for_url("**/registered?ref=*")
        reference = page.locator(".qs-ref bdi[dir=ltr]").inner_text()
        assert reference.startswith("01R-")
        assert scrolls_sideways(page) == []

        deliver_messages()
        (message,) = mailbox.messages
        page.goto(live_server + email_link(message, "/confirm"))
        page.get_by_role("button", name=ARABIC["confirm"]).click()
        page.wait_for_url("**/status?t=*")
        assert page.locator("#status").inner_text() == ARABIC["waiting"]
        assert page.locator("dd.qs-ref bdi").get_attribute("dir") == "ltr"
        assert page.locator("dd.qs-ref bdi").inner_text() == reference
        page.screenshot(path=str(SCREENSHOTS / "status-ar-320.png"), full_page=True)
        assert scrolls_sideways(page) == []
        assert errors == []
    finally:
        context.close()
