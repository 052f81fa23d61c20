"""Pages for applicants: the home page, each prefecture's page and its public statistics."""

from __future__ import annotations

import datetime

from babel.dates import get_day_names
from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import format_date, format_time, get_locale, gettext

from queue_service.draws import DrawState
from queue_service.errors import UnknownPrefecture
from queue_service.pools import PoolId
from queue_service.reference import Site
from web import charts, services

blueprint = Blueprint("applicant", __name__)


@blueprint.get("/")
def home():
    return render_template("home.html", prefectures=services().store.prefectures())


@blueprint.get("/p")
def choose_prefecture():
    """The home page's form (a plain GET, so it works without JavaScript)."""
    code = request.args.get("code", "").strip().upper()
    if not code:
        return redirect(url_for("applicant.home"))
    services().store.prefecture(code)  # 404 for an unknown code
    return redirect(url_for("applicant.prefecture", code=code))


@blueprint.get("/p/<code>")
def prefecture(code: str):
    store = services().store
    if len(code) > 3:
        raise UnknownPrefecture()
    return render_template(
        "prefecture.html",
        prefecture=store.prefecture(code),
        procedures=[(procedure, latest_and_next_draw(code, procedure.code)) for procedure in store.procedures()],
        sites=[(site, opening_days(site)) for site in store.sites(code) if not site.closed],
    )


@blueprint.get("/statistics")
def statistics_index():
    """Every prefecture's public statistics, from one page (the footer links here)."""
    return render_template("statistics_index.html", prefectures=services().store.prefectures())


@blueprint.get("/p/<code>/statistics")
def statistics(code: str):
    """Public statistics (no login, no personal data): pool sizes, slots per week, waits, every draw."""
    from queue_service.metrics import statistics as stats

    store = services().store
    if len(code) > 3:
        raise UnknownPrefecture()
    now = datetime.datetime.now(datetime.timezone.utc)
    summary = stats.public_summary(store, store.prefecture(code), now)
    for pool in summary["pools"]:
        weeks = pool["slots_offered_per_week"]
        pool["chart"] = charts.chart([format_date(monday, "d MMM") for monday, _ in weeks], bars=[n for _, n in weeks])
    return render_template("statistics.html", summary=summary, prefecture=summary["prefecture"], draw_states=draw_states())


def draw_states() -> dict[DrawState, str]:
    return {
        DrawState.SCHEDULED: gettext("Announced"),
        DrawState.FROZEN: gettext("Entrants frozen"),
        DrawState.DRAWN: gettext("Drawn"),
        DrawState.COMMITTED: gettext("Applied"),
        DrawState.PUBLISHED: gettext("Published"),
        DrawState.HELD: gettext("Held for review"),
    }


def latest_and_next_draw(code: str, procedure_code: str) -> dict:
    """The pool's last published draw and its next announced one, for links to their public pages."""
    store = services().store
    pool = PoolId.of(code, procedure_code)
    recent = store.draws(pool, limit=10)
    published = next((draw for draw in recent if draw.state is DrawState.PUBLISHED), None)
    announced = next((draw for draw in reversed(recent) if draw.state is DrawState.SCHEDULED), None)
    return {"published": published, "announced": announced}


def opening_days(site: Site) -> list[tuple[str, str]]:
    """(day name, "9:00 – 12:00, 13:30 – 16:00") for each day the site opens, in the page's language."""
    day_names = get_day_names("wide", locale=get_locale())
    days: dict[int, list[str]] = {}
    for hours in sorted(site.opening_hours, key=lambda h: (h.weekday, h.opens)):
        period = f"{format_time(hours.opens, 'short')} – {format_time(hours.closes, 'short')}"
        days.setdefault(hours.weekday, []).append(period)
    return [(day_names[weekday].capitalize(), ", ".join(periods)) for weekday, periods in days.items()]


@blueprint.get("/draws/<draw_id>")
def draw_page(draw_id: str):
    """A draw's public page: commitment, counts, digest; after publication the seed,
    the winners' references, the record to download, and anyone's own key."""
    from queue_service import draws
    from web.api import draw_pool

    store = services().store
    pool = draw_pool(draw_id)
    record = draws.public_record(store, pool, draw_id)
    ref = request.args.get("ref", "").strip().upper()[:20]
    mine = draws.own_key(record, ref) if ref else None
    mine_slot = store.slot(pool, mine["slot"]) if mine and mine["won"] else None  # its time, not its id
    return render_template("draw.html", record=record, ref=ref, mine=mine, mine_slot=mine_slot,
                           timezone=store.prefecture(record["prefecture"]).timezone)
