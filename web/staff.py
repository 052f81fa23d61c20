"""Pages for prefecture staff: sign-in, sites, slots, schedules, draws, agents, assisted registration.

Every handler loads its arguments, checks access with `allow(action,
prefecture)` (one table in queue_service.staff.accounts), then calls the domain.
The session is server-side: the cookie holds only a random id, replaced at
every sign-in and deleted in Redis at sign-out.
"""

from __future__ import annotations

import csv
import datetime
import io
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, g, make_response, redirect, render_template, request, session, url_for
from flask_babel import format_date, get_locale, gettext
from werkzeug.exceptions import BadRequest, NotFound

from queue_service import draws as draw_rules
from queue_service import health, inventory, metrics, notifications
from queue_service import simulator as simulator_rules
from queue_service import offers as offer_rules
from queue_service.draws import DrawState
from queue_service.draws import schedules as schedule_rules
from queue_service.errors import (
    N_,
    AccountExists,
    CheckInNeedsOverride,
    InvalidTransition,
    LoginFailed,
    LoginThrottled,
    NotSignedIn,
    UnknownBooking,
    ValidationFailed,
)
from queue_service.inventory import sites as site_rules
from queue_service.inventory import slots as slot_rules
from queue_service.metrics import statistics
from queue_service.offers import OfferTiming
from queue_service.pools import PoolId
from queue_service.registration import Channel, identity
from queue_service.registration.agdref import UploadedRecords
from queue_service.staff import accounts
from queue_service.staff.accounts import Action, Role, Scope
from web import charts, forms, services, simulation, staff_actions
from web.applicant import draw_states
from web.errors import message_of, translated
from web.i18n import safe_next
from web.registration import (
    attempt_registration,
    form_values,
    identity_secret,
    render_registration_form,
    status_url,
)

blueprint = Blueprint("staff", __name__, url_prefix="/staff")
SESSION_KEY = "staff_session"
PUBLIC_ENDPOINTS = {"staff.login"}


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


@blueprint.before_request
def load_principal():
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    try:
        g.principal = accounts.session_principal(services().store, session.get(SESSION_KEY), now())
    except NotSignedIn:
        session.pop(SESSION_KEY, None)
        return redirect(url_for("staff.login", next=request.full_path.rstrip("?")))
    g.account = services().store.staff_account(g.principal.account_id)
    return None


def allow(action: Action, prefecture: str | None) -> None:
    accounts.require(g.principal, action, prefecture)


@blueprint.app_context_processor
def permissions_in_templates() -> dict:
    """`may("manage", "01")` in a template: whether the signed-in person may do that there, so
    that menus and buttons show only what they may open."""
    def may(action: str, prefecture: str | None = None) -> bool:
        principal = g.get("principal")
        return principal is not None and accounts.allowed(principal, Action(action), prefecture)

    return {"may": may}


def known_prefecture(code: str):
    """The prefecture (404 if unknown) after checking the principal may view it (403)."""
    allow(Action.VIEW, code)
    return services().store.prefecture(code)


# Sign-in ---------------------------------------------------------------------------


@blueprint.route("/login", methods=["GET", "POST"])
def login():
    refusal = None
    if request.method == "POST":
        try:
            account = accounts.sign_in(
                services().store, request.form.get("email", ""), request.form.get("password", ""),
                request.remote_addr, now(),
            )
        except (LoginFailed, LoginThrottled) as refused:
            refusal = refused
        else:
            accounts.close_session(services().store, session.get(SESSION_KEY))
            session.clear()
            session.permanent = False
            session[SESSION_KEY] = accounts.open_session(services().store, account, now())
            return redirect(safe_next(request.args.get("next")) if request.args.get("next") else url_for("staff.home"))
    if refusal is None:
        return render_template("staff/login.html", error=None)
    headers = {"Retry-After": str(refusal.retry_after)} if refusal.retry_after is not None else {}
    return render_template("staff/login.html", error=message_of(refusal)), refusal.http_status, headers


@blueprint.post("/logout")
def logout():
    accounts.close_session(services().store, session.get(SESSION_KEY))
    session.clear()
    return redirect(url_for("staff.login"))


@blueprint.get("/")
def home():
    store = services().store
    if g.principal.prefecture is None:
        prefectures = store.prefectures()
    else:
        prefectures = [store.prefecture(g.principal.prefecture)]
    return render_template("staff/home.html", prefectures=prefectures)


@blueprint.get("/p/<code>/")
def prefecture(code: str):
    found = known_prefecture(code)
    store = services().store
    pools = [(procedure, store.waiting_count(PoolId.of(code, procedure.code))) for procedure in store.procedures()]
    held = [(procedure, draw.draw_id) for procedure, _ in pools
            for draw in store.draws(PoolId.of(code, procedure.code), limit=20) if draw.state is DrawState.HELD]
    return render_template("staff/prefecture.html", prefecture=found, sites=store.sites(code), pools=pools,
                           held=held)


# Sites ------------------------------------------------------------------------------


@blueprint.route("/p/<code>/sites", methods=["GET", "POST"])
def sites(code: str):
    found = known_prefecture(code)
    store = services().store
    errors, values = {}, {"kind": site_rules.DEFAULT_KIND}
    if request.method == "POST":
        allow(Action.MANAGE, code)
        values = request.form
        try:
            inventory.create_site(store, code, forms.site_values(request.form))
        except ValidationFailed as failure:
            errors = translated(failure.errors)
        else:
            return redirect(url_for("staff.sites", code=code))
    return (
        render_template(
            "staff/sites.html",
            prefecture=found,
            sites=store.sites(code),
            errors=errors,
            values=values,
            can_manage=accounts.allowed(g.principal, Action.MANAGE, code),
        ),
        422 if errors else 200,
    )


@blueprint.route("/p/<code>/sites/<site_id>", methods=["GET", "POST"])
def edit_site(code: str, site_id: str):
    found = known_prefecture(code)
    store = services().store
    site = store.site(code, site_id)
    if site is None:
        raise NotFound()
    errors = {}
    if request.method == "POST":
        allow(Action.MANAGE, code)
        try:
            inventory.edit_site(store, code, site_id, forms.site_values(request.form))
        except ValidationFailed as failure:
            errors = translated(failure.errors)
        else:
            return redirect(url_for("staff.sites", code=code))
    values = {
        "name": site.name,
        "kind": site.kind,
        "address": site.address,
        "postcode": site.postcode,
        "city": site.city,
        "closed": "on" if site.closed else "",
        **{site_rules.hours_field(day): site_rules.hours_text(site, day) for day in range(7)},
    }
    if request.method == "POST":
        values = request.form
    return (
        render_template("staff/site_edit.html", prefecture=found, site=site, values=values, errors=errors),
        422 if errors else 200,
    )


@blueprint.post("/p/<code>/sites/<site_id>/delete")
def delete_site(code: str, site_id: str):
    allow(Action.MANAGE, code)
    inventory.delete_site(services().store, code, site_id, now())
    return redirect(url_for("staff.sites", code=code))


# Accounts -----------------------------------------------------------------------------


@blueprint.route("/p/<code>/accounts", methods=["GET", "POST"])
def staff_accounts(code: str):
    found = known_prefecture(code)
    allow(Action.MANAGE_AGENTS, code)
    store = services().store
    errors, created = {}, None
    if request.method == "POST":
        role = Role.PREFECTURE_ADMIN if request.form.get("role") == Role.PREFECTURE_ADMIN.value else Role.AGENT
        try:
            created = accounts.create_account(
                store,
                g.principal,
                email=request.form.get("email", ""),
                name=request.form.get("name", ""),
                role=role,
                prefecture=code,
                password=request.form.get("password", ""),
                now=now(),
            )
        except ValidationFailed as failure:
            errors = translated(failure.errors)
        except AccountExists as refusal:
            errors = {"email": gettext(refusal.message)}
    return (
        render_template(
            "staff/accounts.html",
            prefecture=found,
            accounts=store.staff_accounts(code),
            created=created,
            errors=errors,
            can_create_admins=accounts.allowed(g.principal, Action.MANAGE_ADMINS, code),
        ),
        422 if errors else 200,
    )


@blueprint.post("/p/<code>/accounts/<account_id>/deactivate")
def deactivate_account(code: str, account_id: str):
    allow(Action.MANAGE_AGENTS, code)
    store = services().store
    account = store.staff_account(account_id)
    if account is None or account.prefecture != code or account.id == g.principal.account_id:
        raise NotFound()
    if account.role is not Role.AGENT:
        allow(Action.MANAGE_ADMINS, code)
    store.set_staff_account_active(account_id, False)
    return redirect(url_for("staff.staff_accounts", code=code))


# API tokens ---------------------------------------------------------------------------


# What each scope of a token opens, as the token form names it.
SCOPE_LABELS = {
    Scope.READ: N_("Read: sites, slots, schedules, draws, counts, undelivered messages"),
    Scope.SITES_WRITE: N_("Sites: create, change, delete"),
    Scope.SLOTS_WRITE: N_("Slots: publish, import, cancel"),
    Scope.SCHEDULES_WRITE: N_("Schedules and draw policy"),
    Scope.DRAWS_RUN: N_("Draws: run now, release a held draw"),
    Scope.COUNTER_CHECK_IN: N_("Counter: look up a booking code, check in, mark a no-show"),
    Scope.MESSAGES_RETRY: N_("Undelivered messages: send again"),
    Scope.REGISTRATIONS_WRITE: N_("Assisted registration"),
    Scope.TOKENS_WRITE: N_("Tokens: create narrower tokens, list and revoke them"),
}


@blueprint.route("/tokens", methods=["GET", "POST"])
def tokens():
    """A person's API tokens: each with the scopes ticked (never more than the role's) and, for a
    national admin, one prefecture or all."""
    store = services().store
    offered = [scope for scope in Scope if scope in accounts.role_scopes(g.principal.role)]
    national = g.principal.role is Role.NATIONAL_ADMIN and g.principal.prefecture is None
    shown, errors = None, {}
    chosen = {"scopes": [scope.value for scope in offered], "prefecture": ""}
    if request.method == "POST":
        # A form without the checkboxes (a script's) asks for every scope, as before they existed.
        asked = request.form.getlist("scopes") if request.form.get("scopes_shown") else None
        chosen = {"scopes": asked or [], "prefecture": request.form.get("prefecture", "")}
        try:
            shown, _ = accounts.new_api_token(store, g.account, request.form.get("label", ""), now(),
                                              prefecture=known_prefecture_or_none(chosen["prefecture"]),
                                              scopes=asked, creator=g.principal)
        except ValidationFailed as failure:
            errors = translated(failure.errors)
    listed = [token for _, token in store.api_tokens(g.account.id)]
    return render_template(
        "staff/tokens.html", tokens=sorted(listed, key=lambda token: token.created_at), shown=shown, errors=errors,
        scope_options=[(scope.value, gettext(SCOPE_LABELS[scope])) for scope in offered], chosen=chosen,
        prefectures=store.prefectures() if national else None,
    ), 422 if errors else 200


def known_prefecture_or_none(code: str) -> str | None:
    """A prefecture chosen on a form: None for none, ValidationFailed for one that does not exist."""
    if not code:
        return None
    if code not in {prefecture.code for prefecture in services().store.prefectures()}:
        raise ValidationFailed({"prefecture": N_("Choose a prefecture from the list, or none.")})
    return code


@blueprint.post("/tokens/<token_id>/revoke")
def revoke_token(token_id: str):
    services().store.revoke_api_token(g.account.id, token_id)
    return redirect(url_for("staff.tokens"))


# Assisted registration --------------------------------------------------------------


@blueprint.route("/p/<code>/register/<procedure_code>", methods=["GET", "POST"])
def assisted_registration(code: str, procedure_code: str):
    known_prefecture(code)
    allow(Action.REGISTER, code)
    procedure = services().store.procedure(procedure_code)
    errors, values = {}, {"language": "fr"}
    if request.method == "POST":
        values = form_values()
        created, errors = attempt_registration(
            code, procedure, values, channel=Channel.ASSISTED, agent=g.principal.account_id
        )
        if created:
            link = status_url(created)
            return render_template("staff/assisted_done.html", registration=created, status_link=link)
    return render_registration_form(code, procedure, values, errors, assisted=True)



# Slots ------------------------------------------------------------------------------


def parse_day(text: str | None, default: datetime.date) -> datetime.date:
    """A date from the filter, within five years of today (anything else: the default)."""
    try:
        day = datetime.date.fromisoformat(text) if text else default
    except ValueError:
        return default
    return day if abs((day - datetime.date.today()).days) <= 5 * 366 else default


@blueprint.route("/p/<code>/slots", methods=["GET", "POST"])
def slots(code: str):
    found = known_prefecture(code)
    store = services().store
    open_sites = [site for site in store.sites(code) if not site.closed]
    procedures = store.procedures()
    errors, published, conflicts, row_errors = {}, None, [], []
    today = slot_rules.local_today(now(), found.timezone)  # the prefecture's day, not UTC's
    if request.method == "POST":
        allow(Action.MANAGE, code)
        try:
            if request.form.get("source") == "csv":
                upload = request.files.get("file")
                text = upload.read().decode("utf-8", "replace") if upload and upload.filename else ""
                created, row_errors = inventory.publish_from_csv(store, code, text, now(), keep_good_rows=True)
            else:
                created = inventory.publish_from_template(store, code, forms.template_values(request.form), now())
            published = len(created)
        except inventory.SlotsOverlap as overlap:
            errors, conflicts = translated(overlap.errors), overlap.conflicts[:20]
        except ValidationFailed as failure:
            errors = translated(failure.errors)
    first = parse_day(request.args.get("from"), today)
    last = parse_day(request.args.get("to"), first + datetime.timedelta(days=14))
    zone = ZoneInfo(found.timezone)
    listed = inventory.listed_slots(store, code, first, last, site=request.args.get("site") or None,
                                    procedure=request.args.get("procedure") or None)
    return (
        render_template(
            "staff/slots.html",
            prefecture=found,
            sites=open_sites,
            procedures=procedures,
            slots=listed[:500],
            more=len(listed) > 500,
            first=first,
            last=last,
            zone=zone,
            errors=errors,
            published=published,
            conflicts=conflicts,
            row_errors=row_errors,
            values=request.form if request.method == "POST" else {},
            filters={name: request.args[name] for name in ("from", "to", "site", "procedure") if name in request.args},
            can_manage=accounts.allowed(g.principal, Action.MANAGE, code),
        ),
        422 if errors or row_errors else 200,
    )


@blueprint.post("/p/<code>/slots/<procedure_code>/<slot_id>/cancel")
def cancel_slot(code: str, procedure_code: str, slot_id: str):
    allow(Action.MANAGE, code)
    pool = PoolId.of(code, procedure_code)
    offer_rules.cancel_slot(services().store, pool, slot_id, now())  # a holder is told through the outbox
    filters = {name: request.args[name] for name in ("from", "to", "site", "procedure") if name in request.args}
    return redirect(url_for("staff.slots", code=code, **filters))


# Schedules and draws --------------------------------------------------------------------


@blueprint.route("/p/<code>/schedules/<procedure_code>", methods=["GET", "POST"])
def schedule(code: str, procedure_code: str):
    found = known_prefecture(code)
    store = services().store
    procedure = store.procedure(procedure_code)
    pool = PoolId.of(code, procedure.code)
    current = store.schedule(pool)
    errors = {}
    if request.method == "POST":
        allow(Action.MANAGE, code)
        try:
            staff_actions.save_schedule(code, procedure.code, forms.schedule_values(request.form))
        except ValidationFailed as failure:
            errors = translated(failure.errors)
        else:
            return redirect(url_for("staff.schedule", code=code, procedure_code=procedure.code))
    return (
        render_template(
            "staff/schedule.html",
            prefecture=found,
            procedure=procedure,
            schedule=current,
            values=request.form if request.method == "POST" else schedule_form_values(current),
            errors=errors,
            upcoming=draw_rules.upcoming(store, current, now(), timing=OfferTiming.from_settings(services().settings))
            if current else [],
            draws=store.draws(pool, limit=20),
            draw_states=draw_states(),
            zone=ZoneInfo(found.timezone),
            can_manage=accounts.allowed(g.principal, Action.MANAGE, code),
        ),
        422 if errors else 200,
    )


def schedule_form_values(current) -> dict[str, object]:
    """The schedule form filled in: from the pool's schedule, or with the defaults for a new one."""
    settings = {
        name: ("on" if value else "") if isinstance(value, bool) else value
        for name, value in schedule_rules.admin_values(current).items()
    }
    if current is None:
        return {"cron": "0 10 * * MON", **settings}  # a suggestion: every Monday at 10:00
    editable = schedule_rules.editable_values(current, now())
    return {"cron": editable["cron"] or "", "dates": "\n".join(editable["dates"]), **settings}


@blueprint.post("/p/<code>/schedules/<procedure_code>/draws/<draw_id>/release")
def release_draw(code: str, procedure_code: str, draw_id: str):
    """A held draw reviewed by an admin: its record (seed, winners) is published."""
    allow(Action.MANAGE, code)
    procedure = services().store.procedure(procedure_code)
    staff_actions.release_draw(code, procedure.code, draw_id, by=g.principal.account_id)
    return redirect(url_for("staff.schedule", code=code, procedure_code=procedure.code))


@blueprint.route("/p/<code>/schedules/<procedure_code>/run", methods=["GET", "POST"])
def run_draw_now(code: str, procedure_code: str):
    """Run a draw now: a confirmation that names the draw and says who enters and when; the POST
    then redirects to its result (a reload never posts again), and the draw is named by the minute
    the confirmation showed, so sending the same confirmation twice starts it once."""
    found = known_prefecture(code)
    allow(Action.MANAGE, code)
    store = services().store
    procedure = store.procedure(procedure_code)
    pool = PoolId.of(code, procedure.code)
    schedule = store.schedule(pool)
    shown = request.args.get("draw")
    zone = ZoneInfo(found.timezone)  # times read on the prefecture's clock
    if request.method == "GET" and shown:
        record = store.draw(pool, shown)
        return render_template("staff/run_draw.html", prefecture=found, procedure=procedure, record=record,
                               draw_id=shown, started=request.args.get("started") == "1", draw_states=draw_states(),
                               closes=record.cutoff_at.astimezone(zone) if record else None)
    if request.method == "GET":
        due = draw_rules.draw_now(schedule, code, procedure.code, found.timezone, now())
        preview = draw_rules.run_now_preview(store, due, now(), services().settings.run_now_entry_delay)
        preview["cutoff"] = preview["cutoff"].astimezone(zone)
        return render_template("staff/run_draw.html", prefecture=found, procedure=procedure, due=due, preview=preview)
    due, started = staff_actions.start_run_now(code, procedure.code, at=confirmed_minute(request.form.get("at")))
    return redirect(url_for("staff.run_draw_now", code=code, procedure_code=procedure.code, draw=due.draw_id,
                            started="1" if started else "0"))


def confirmed_minute(text: str | None) -> datetime.datetime | None:
    """The minute a run-now confirmation showed (its hidden field; UTC if it has no offset), or
    None without one; a text that is not a time gives a minute refused as too old."""
    if not text:
        return None
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        moment = datetime.datetime.min
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=datetime.timezone.utc)


# AGDREF records -------------------------------------------------------------------------


@blueprint.route("/p/<code>/agdref", methods=["GET", "POST"])
def agdref_records(code: str):
    """The prefecture's known AGDREF numbers: an admin uploads the file (kept only as keyed hashes)."""
    found = known_prefecture(code)
    allow(Action.MANAGE, code)
    store = services().store
    errors, loaded = {}, None
    if request.method == "POST":
        upload = request.files.get("file")
        text = upload.read().decode("utf-8", "replace") if upload and upload.filename else ""
        try:
            if not text.strip():
                raise ValidationFailed({"file": N_("Choose a file of AGDREF numbers, one per line.")})
            loaded = UploadedRecords(store, services().settings.identity_key.encode()).replace(code, text.splitlines())
        except ValidationFailed as failure:
            errors = translated(failure.errors)
            if hasattr(failure, "shown"):
                errors["file"] += " " + gettext("Lines: %(lines)s", lines=failure.shown())
    return (
        render_template("staff/agdref.html", prefecture=found, count=store.agdref_count(code), loaded=loaded,
                        errors=errors),
        422 if errors else 200,
    )


# The counter ---------------------------------------------------------------------------


COUNTER_SITE_COOKIE = "counter_site"


@blueprint.route("/p/<code>/check-in", methods=["GET", "POST"])
def check_in(code: str):
    """An agent types or scans a booking code, compares the identity shown with the person's
    document (the appointment is personal), then marks it attended. A booking for another day,
    or another site than the agent's (chosen on the page, remembered on this device), is shown
    with a warning and needs the agent's explicit override, recorded with their account."""
    from web.offers import appointment

    prefecture = known_prefecture(code)
    allow(Action.CHECK_IN, code)
    store = services().store
    sites = store.sites(code)
    site = request.values.get("site", request.cookies.get(COUNTER_SITE_COOKIE, ""))
    site = site if site in {known.id for known in sites} else None
    typed = request.values.get("code", "")
    found, error, notice, warnings = None, None, None, []
    if typed:
        try:
            key, _ = offer_rules.find_booking(store, code, typed, identity_secret())
            found = store.registration(key)
            warnings = offer_rules.booking_warnings(store, key, site, now(), prefecture.timezone)
            if request.method == "POST" and request.form.get("action") == "attended":
                offer_rules.check_in(store, key, now(), agent=g.principal.account_id, timezone=prefecture.timezone,
                                     site=site, override=request.form.get("override") == "yes")
                found, warnings = store.registration(key), []
                notice = gettext("Checked in: the appointment is marked as attended.")
            elif request.method == "POST" and request.form.get("action") == "no_show":
                offer_rules.mark_no_show(store, key, now(), agent=g.principal.account_id)
                found, warnings = store.registration(key), []
                notice = gettext("Marked as a no-show: the person did not come.")
        except (UnknownBooking, InvalidTransition, CheckInNeedsOverride) as refused:
            error = gettext(refused.detail or refused.message)
    elif request.method == "POST":
        error = gettext("Type or scan the booking code.")
    status = 200 if error is None else 404 if found is None else 409
    nationalities = dict(identity.nationality_choices(str(get_locale())))
    response = make_response(render_template(
        "staff/check_in.html", prefecture=prefecture, typed=typed, registration=found, sites=sites, site=site,
        appointment=appointment(found) if found else None, error=error, notice=notice, warnings=warnings, now=now(),
        nationality=nationalities.get(found.applicant.nationality, found.applicant.nationality) if found else None,
    ), status)
    if site:
        response.set_cookie(COUNTER_SITE_COOKIE, site, max_age=365 * 24 * 3600, samesite="Lax", httponly=True,
                            path="/staff")
    return response


@blueprint.get("/p/<code>/deliveries")
def deliveries(code: str):
    """Messages to applicants that could not be delivered (after retries, or still retrying)."""
    prefecture = known_prefecture(code)
    store = services().store
    failures = notifications.undelivered(store, code)
    for failure in failures:
        if failure.get("retried_by"):
            account = store.staff_account(failure["retried_by"])
            failure["retried_by_name"] = account.name if account else failure["retried_by"]
    retried = request.args.get("retried", "")
    return render_template("staff/deliveries.html", prefecture=prefecture, failures=failures,
                           may_retry=accounts.allowed(g.principal, Action.MANAGE, code),
                           notice=gettext("Message %(ref)s sent again.", ref=retried) if retried else None)


@blueprint.post("/p/<code>/deliveries/retry")
def retry_delivery(code: str):
    """Send a message that could not be delivered once more (then back to the list: a reload
    of the list sends nothing)."""
    known_prefecture(code)
    allow(Action.MANAGE, code)
    store = services().store
    procedure = store.procedure(request.form.get("procedure", ""))
    pool = PoolId.of(code, procedure.code)
    message_id, channel = request.form.get("message_id", ""), request.form.get("channel", "")
    record = notifications.retry_delivery(store, pool, message_id, channel, g.principal.account_id, now())
    return redirect(url_for("staff.deliveries", code=code, retried=record.get("ref", "")))


# Dashboard ---------------------------------------------------------------------------------


@blueprint.get("/p/<code>/dashboard")
def dashboard(code: str):
    """The queue at a glance, per pool, from counters (fast at any size); printable."""
    found = known_prefecture(code)
    store = services().store
    moment = now()
    pools = []
    for procedure in store.procedures():
        summary = statistics.pool_summary(store, PoolId.of(code, procedure.code), found.timezone, moment)
        summary["procedure"] = procedure
        summary["charts"] = dashboard_charts(summary)
        pools.append(summary)
    return render_template(
        "staff/dashboard.html",
        prefecture=found,
        pools=pools,
        service=service_health(moment, [draw for summary in pools for draw in summary["draws"]]),
        now=moment,
        outcome_labels=outcome_labels(),
        draw_states=draw_states(),
    )


def dashboard_charts(summary: dict) -> dict:
    daily = summary["daily"]
    days = sorted(daily)
    weeks = summary["weekly_offered"]
    sizes = dict(summary["pool_size_by_week"])
    mondays = sorted(set(monday for monday, _ in weeks) | set(sizes))
    offered = dict(weeks)
    return {
        "registrations": charts.chart([format_date(day, "d MMM") for day in days],
                                      bars=[daily[day][metrics.Event.REGISTERED.value] for day in days], label_every=7),
        "pool_vs_offered": charts.chart([format_date(monday, "d MMM") for monday in mondays],
                                        bars=[offered.get(monday, 0) for monday in mondays],
                                        line=[sizes.get(monday) for monday in mondays]),
        "waits": charts.chart([f"{first}–{first + 6}" for first, _ in summary["wait_bins"]],
                              bars=[count for _, count in summary["wait_bins"]]),
    }


def outcome_labels() -> dict[str, str]:
    return {
        "offer_confirmed": gettext("Confirmed"),
        "offer_declined": gettext("Declined"),
        "offer_expired": gettext("Expired"),
        "offer_reoffered": gettext("Re-offered"),
        "slot_returned_to_draw": gettext("Back to a draw"),
        "booking_cancelled": gettext("Cancelled by the applicant"),
        "slot_cancelled_by_prefecture": gettext("Cancelled by the prefecture"),
        "attended": gettext("Attended"),
        "no_show": gettext("No-show"),
    }


def service_health(moment: datetime.datetime, latest_draws: list[dict]) -> dict:
    from worker.queues import queue_sizes

    settings = services().settings
    report = health.readiness(services().store, moment, settings.heartbeat_max_age_seconds)
    # The last draw that ran: an announced draw (its commitment published, its entrants not even
    # frozen) is a coming one, not the last.
    drawn = [draw for draw in latest_draws if draw["state"] not in (DrawState.SCHEDULED, DrawState.FROZEN)]
    latest = max(drawn, key=lambda draw: draw["scheduled_at"], default=None)
    return {"readiness": report, "queues": queue_sizes(services().redis), "last_draw": latest}


@blueprint.get("/dashboard")
def national_dashboard():
    """Every prefecture at a glance: for the national admin."""
    allow(Action.VIEW, None)
    store = services().store
    moment = now()
    rows = statistics.national_rows(store, store.prefectures(), moment)
    return render_template("staff/national.html", rows=rows, now=moment,
                           service=service_health(moment, []))


# Days a CSV export may cover at most (ten years of daily rows).
CSV_MAX_DAYS = 3660


@blueprint.get("/p/<code>/dashboard/<procedure_code>/daily.csv")
def daily_csv(code: str, procedure_code: str):
    """The pool's daily series as CSV: one row per day, one column per event."""
    found = known_prefecture(code)
    store = services().store
    procedure = store.procedure(procedure_code)
    today = datetime.date.fromisoformat(metrics.stats_day(now(), found.timezone))
    try:
        last = datetime.date.fromisoformat(request.args["to"]) if request.args.get("to") else today
        first = datetime.date.fromisoformat(request.args["from"]) if request.args.get("from") else (
            last - datetime.timedelta(days=364))
    except ValueError:
        raise BadRequest(gettext("Give the dates as YYYY-MM-DD.")) from None
    if first > last or (last - first).days >= CSV_MAX_DAYS:
        raise BadRequest(gettext("The first day must come before the last, at most ten years apart."))
    daily = store.stats_days(PoolId.of(code, procedure.code), first, last)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["day", *metrics.EVENTS])
    for day in sorted(daily):
        writer.writerow([day.isoformat(), *[daily[day][event] for event in metrics.EVENTS]])
    filename = f"daily-{code}-{procedure.code}-{first.isoformat()}-{last.isoformat()}.csv"
    return Response(text.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


# Policy simulator ---------------------------------------------------------------------------


@blueprint.route("/p/<code>/simulator", methods=["GET", "POST"])
def simulator_page(code: str):
    """Compare first come, first served with the lottery on one scenario (queue_service/simulator),
    run as a job; the prefecture's admins and the national admin."""
    allow(Action.MANAGE, code)
    found = known_prefecture(code)
    store = services().store
    errors = {}
    if request.method == "POST":
        scenario, seed, vary, errors = simulation.read_form(request.form, store, code, found.timezone, now())
        if not errors:
            job_id = simulation.start_job(services().redis, code, scenario, seed, vary)
            return redirect(url_for("staff.simulation_result", code=code, job_id=job_id), code=303)
    return render_template(
        "staff/simulator.html", prefecture=found, errors=errors,
        values=request.form if request.method == "POST" else simulation.default_values(),
        starting_points=simulation.starting_points(store.procedures()),
        parameters=simulation.parameter_labels(), varied=simulator_rules.VARIED,
        assumptions=simulation.scenario_assumptions(),
    ), 422 if errors else 200


def _simulation_job(code: str, job_id: str):
    allow(Action.MANAGE, code)
    found = known_prefecture(code)
    job = simulation.find_job(services().redis, code, job_id)
    if job is None:
        raise NotFound()
    return found, simulation.job_view(job)


@blueprint.get("/p/<code>/simulator/<job_id>")
def simulation_result(code: str, job_id: str):
    found, job = _simulation_job(code, job_id)
    result = job["result"]
    runs = []
    if result:
        for key in ("base", "varied"):
            if result.get(key):
                runs.append({"key": key, "run": result[key], "rows": simulation.rows(result[key]),
                             "charts": simulation.result_charts(result[key]),
                             "label": simulation.scenario_label(result[key]["scenario"],
                                                                services().store.procedures())})
    return render_template(
        "staff/simulation_result.html", prefecture=found, job=job, runs=runs,
        vary=result.get("vary") if result else None, rules=simulation.rule_labels(),
        parameters=simulation.parameter_labels(),
    )


@blueprint.get("/p/<code>/simulator/<job_id>/progress")
def simulation_progress(code: str, job_id: str):
    """The job's state as JSON, read by static/js/simulation-progress.js to move the page's progress
    bar (the pages' security policy allows no inline script)."""
    _, job = _simulation_job(code, job_id)
    return {"progress": job["progress"], "done": job["done"], "failed": job["failed"]}


@blueprint.get("/p/<code>/simulator/<job_id>/<run>.csv")
def simulation_csv(code: str, job_id: str, run: str):
    _, job = _simulation_job(code, job_id)
    if run not in ("base", "varied") or not job["result"] or not job["result"].get(run):
        raise NotFound()
    return Response(job["result"][run]["csv"], mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="simulation-{code}-{job_id}-{run}.csv"'})
