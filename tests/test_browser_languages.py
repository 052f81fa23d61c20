"""End to end in Arabic, right to left, and in Chinese, on the narrowest phone: register,
confirm, read the status page, confirm an offer; nothing scrolls sideways at 320 CSS pixels and
the reference and the booking code read left to right."""

import datetime

import pytest
from helpers import SCREENSHOTS, TIMING, collect_console_errors, email_link, plain_text

from queue_service import draws, offers
from queue_service.draws.schedules import DrawPolicy, DrawSchedule
from queue_service.inventory.slots import Slot
from worker import jobs

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
    "drawn": "تمّ اختيارك",
    "confirm_offer": "تأكيد هذا الموعد",
    "booked": "تمّ حجز موعدك",
}
CHINESE = {
    "family_name": "姓",
    "given_names": "名",
    "birth_date": "出生日期",
    "nationality": "国籍",
    "agdref": "AGDREF 号码",
    "permit_expiry": "您现有居留证的到期日期",
    "email": "电子邮箱",
    "phone": "手机（选填）",
    "consent": "我已阅读并接受个人数据保护说明。",
    "register": "登记",
    "confirm": "确认我的登记",
    "waiting": "在等候名单中",
    "drawn": "您已中签",
    "confirm_offer": "确认此预约",
    "booked": "您的预约已确定",
}
RENEWAL = "01:renewal"


def scrolls_sideways(page) -> list[str]:
    """The elements that stick out of the viewport, if the page is wider than it (none expected)."""
    if page.evaluate("() => document.documentElement.scrollWidth") <= NARROWEST:
        return []
    return page.evaluate("""() => [...document.querySelectorAll("body *")]
        .filter(e => { const box = e.getBoundingClientRect(); return box.right > window.innerWidth + 1 || box.left < -1; })
        .slice(0, 5).map(e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : ""))""")


def draw_now_in_renewal(store) -> None:
    """An admin's draw run now in Ain's renewal pool, three slots three days on (as conftest's
    drawn_pool does): whoever waits in the pool enters it."""
    now = datetime.datetime.now(datetime.timezone.utc)
    schedule = DrawSchedule(prefecture="01", procedure="renewal", timezone="Europe/Paris", cron="0 10 * * TUE",
                            horizon_from_days=1, horizon_to_days=14, created_at=now - datetime.timedelta(days=2),
                            policy=DrawPolicy(aging=1.0, urgency_window_days=30, urgency_share=0.1))
    store.save_schedule(schedule)
    first_day = (now + datetime.timedelta(days=3)).replace(hour=8, minute=0, second=0, microsecond=0)
    store.add_slots([Slot(id=f"bourg-renewal-{number:03d}", prefecture="01", site="bourg", procedure="renewal",
                          starts_at=first_day + datetime.timedelta(minutes=20 * number), duration_minutes=20,
                          counter=1) for number in range(3)])
    due = draws.draw_now(schedule, "01", "renewal", "Europe/Paris", now)
    draws.announce(store, schedule, due, now)
    assert draws.run(store, RENEWAL, due.draw_id, now, TIMING) is draws.DrawState.PUBLISHED


def confirm_the_offer(page, live_server, texts: dict, reference: str, language: str, store, redis, run_jobs,
                      mailbox) -> None:
    """`reference` (waiting) is drawn; the link of its offer email opens the offer page in the
    registration's language; the applicant confirms and reads the booking code, left to right."""
    draw_now_in_renewal(store)
    jobs.dispatch_pool(redis, store, RENEWAL)
    run_jobs()
    key = store.registration_key_by_ref(RENEWAL, reference)
    assert store.registration(key).status.value == "offered"
    offer_mail = next(message for message in reversed(mailbox.messages) if "/offer?t=" in plain_text(message))
    page.goto(live_server + email_link(offer_mail, "/offer"))
    assert texts["drawn"] in page.locator("h1").inner_text()
    assert scrolls_sideways(page) == []
    page.get_by_role("button", name=texts["confirm_offer"]).click()
    page.wait_for_url("**/offer?*done=booked*")
    assert page.locator("h1").inner_text() == texts["booked"]
    code = page.locator("#booking-code bdi")
    assert code.get_attribute("dir") == "ltr"
    assert code.inner_text() == offers.display_code(store.offer(key).booking_code)
    page.screenshot(path=str(SCREENSHOTS / f"booking-{language}-320.png"), full_page=True)
    assert scrolls_sideways(page) == []


def test_register_confirm_read_the_status_and_confirm_an_offer_in_arabic_at_320_pixels(
        live_server, browser, mailbox, deliver_messages, store, redis, run_jobs):
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

        confirm_and_read_the_status(page, live_server, ARABIC, reference, "ar", deliver_messages, mailbox)

        confirm_the_offer(page, live_server, ARABIC, reference, "ar", store, redis, run_jobs, mailbox)
        assert page.evaluate("() => [document.documentElement.lang, document.documentElement.dir]") == ["ar", "rtl"]
        assert errors == []
    finally:
        context.close()


def confirm_and_read_the_status(page, live_server, texts, reference, language, deliver_messages, mailbox):
    """Open the emailed confirmation link, confirm, and read the status page: waiting, with the
    reference isolated left to right, nothing scrolling sideways (a screenshot is kept)."""
    deliver_messages()
    (message,) = mailbox.messages
    page.goto(live_server + email_link(message, "/confirm"))
    page.get_by_role("button", name=texts["confirm"]).click()
    page.wait_for_url("**/status?t=*")
    assert page.locator("#status").inner_text() == texts["waiting"]
    assert page.locator("dd.qs-ref bdi").get_attribute("dir") == "ltr"
    assert page.locator("dd.qs-ref bdi").inner_text() == reference
    page.screenshot(path=str(SCREENSHOTS / f"status-{language}-320.png"), full_page=True)
    assert scrolls_sideways(page) == []


def test_register_confirm_read_the_status_and_confirm_an_offer_in_chinese_at_320_pixels(
        live_server, browser, mailbox, deliver_messages, store, redis, run_jobs):
    context = browser.new_context(viewport={"width": NARROWEST, "height": 640}, is_mobile=True, has_touch=True,
                                  locale="zh-CN")
    page = context.new_page()
    errors = collect_console_errors(page)
    try:
        page.goto(live_server + "/")  # the phone asks for zh-CN: Simplified Chinese
        assert page.evaluate("() => [document.documentElement.lang, document.documentElement.dir]") == [
            "zh-Hans", "ltr"]
        assert scrolls_sideways(page) == []
        page.goto(live_server + "/p/01/renewal/register")
        assert scrolls_sideways(page) == []
        # "姓" and "名" (family name, given names) are one character: their labels, exactly.
        assert page.locator("label[for=family_name]").inner_text().startswith(CHINESE["family_name"])
        page.locator("#family_name").fill("Wang")
        assert page.locator("label[for=given_names]").inner_text().startswith(CHINESE["given_names"])
        page.locator("#given_names").fill("Xiuying")
        page.get_by_label(CHINESE["birth_date"]).fill("1991-03-14")
        page.get_by_label(CHINESE["nationality"]).select_option("CN")
        page.get_by_label(CHINESE["agdref"]).fill("0100 0000 02")
        page.get_by_label(CHINESE["permit_expiry"]).fill("2027-02-15")
        page.locator("input[name=email]").fill("xiuying@example.org")
        page.get_by_label(CHINESE["phone"]).fill("+33 6 12 34 56 78")
        page.locator("label[for=consent]").click(position={"x": 8, "y": 8})
        assert page.get_by_label(CHINESE["consent"]).is_checked()
        page.get_by_role("button", name=CHINESE["register"], exact=True).click()
        page.wait_for_url("**/registered?ref=*")
        reference = page.locator(".qs-ref bdi[dir=ltr]").inner_text()
        assert reference.startswith("01R-")
        assert scrolls_sideways(page) == []

        confirm_and_read_the_status(page, live_server, CHINESE, reference, "zh_Hans", deliver_messages, mailbox)

        confirm_the_offer(page, live_server, CHINESE, reference, "zh_Hans", store, redis, run_jobs, mailbox)
        assert page.evaluate("() => document.documentElement.lang") == "zh-Hans"
        assert errors == []
    finally:
        context.close()
