"""The registration budgets: which apply to a request, checked before its view, spent after.

Registering is counted once it is accepted or refused as a duplicate (a form
sent back with mistakes is free), in budgets shared by every route that creates
a registration or changes its email (web/__init__.py REGISTRATION_CHANGES):

- "registration", per client address, generous;
- "registration-unproven", per client address, tighter, for requests without a
  valid proof of work (web/proof_of_work.py);
- "registration-email", per email address (a keyed hash, never the address).

An agent's registration at the counter (staff) is in none. Each budget is a
setting such as "1000 per hour" (several limits may be joined with ";"),
parsed by the `limits` library as Flask-Limiter's are. A request is taken from
every counter it meets in one script before the view, all or none, and given
back in a second one if it turns out not to count (queue_service/store/
budgets.py); Flask-Limiter read and counted each limit apart, which made six
round trips and most of a registration's time in the web app
(docs/registration.md).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import redis
from flask import Response, current_app, g, request
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse_many
from werkzeug.exceptions import TooManyRequests

from queue_service.settings import Settings
from queue_service.store.budgets import BudgetCounters, Window
from queue_service.store.keys import REFERENCE_VERSION_KEY, budget_key
from web.proof_of_work import proven
from web.rate_keys import accepted_or_duplicate, email_in_request, leaves_registrations_alone


class BudgetSpent(TooManyRequests):
    """A registration budget is spent (429); `retry_after`: whole seconds until every
    budget this request needs lets it through again."""

    def __init__(self, retry_after: int) -> None:
        super().__init__()
        self.retry_after = retry_after


@dataclass(frozen=True)
class Budget:
    name: str
    limits: tuple[RateLimitItem, ...]
    holder: Callable[[], str]  # whose budget: the client address, or the email address's hash
    exempt: Callable[[], bool]  # whether this request is outside it


def _outside_unproven_budget() -> bool:
    return leaves_registrations_alone() or proven()


def _window(limit: RateLimitItem) -> str:
    """A limit as a key names it: "1000/1/hour"."""
    return f"{limit.amount}/{limit.multiples}/{limit.GRANULARITY.name}"


class RegistrationBudgets:
    """The budgets of one app (its settings), counted in the queues' Redis."""

    def __init__(self, settings: Settings, connection: redis.Redis, reads_reference_version: bool = False) -> None:
        self.counters = BudgetCounters(connection)
        # Read in the same call and kept for the view (`reference_version`): the connection is the data's.
        self.read = REFERENCE_VERSION_KEY if reads_reference_version else None
        self.budgets = (
            Budget("registration", tuple(parse_many(settings.rate_limit_registration)),
                   get_remote_address, leaves_registrations_alone),
            Budget("registration-unproven", tuple(parse_many(settings.rate_limit_registration_unproven)),
                   get_remote_address, _outside_unproven_budget),
            Budget("registration-email", tuple(parse_many(settings.rate_limit_registration_email)),
                   email_in_request, leaves_registrations_alone),
        )

    def guard(self, view: Callable, method: str) -> Callable:
        """`view`, whose `method` requests are taken from the budgets first (and given
        back by `give_back_uncounted` if they turn out not to count)."""

        @functools.wraps(view)
        def guarded(*args, **kwargs):
            if request.method == method:
                self.check()
            return view(*args, **kwargs)

        return guarded

    def check(self) -> None:
        """Take the request from every budget it needs, or refuse it (BudgetSpent) if one is
        spent; `give_back_uncounted` returns it if the request turns out not to count."""
        counters = {budget_key(budget.name, _window(limit), holder): Window(limit.amount, limit.get_expiry())
                    for budget in self.budgets if not budget.exempt()
                    for holder in (budget.holder(),) for limit in budget.limits}
        wait, version = self.counters.take_reading(counters, self.read)
        if wait:
            raise BudgetSpent(max(1, math.ceil(wait)))
        g.registration_budgets = list(counters)
        if self.read is not None:
            g.reference_version = version

    def give_back_uncounted(self, response: Response) -> Response:
        """After every request: give back what a request took from the budgets if it was
        neither accepted nor refused as a duplicate (rate_keys.accepted_or_duplicate).
        Should Redis fail then, the response stands and the budget stays one request
        lower until its window ends."""
        keys = g.pop("registration_budgets", None)
        if keys and not accepted_or_duplicate(response):
            try:
                self.counters.give_back(keys)
            except redis.RedisError as error:
                current_app.logger.warning("registration budgets not given back (Redis unavailable): %s", error)
        return response
