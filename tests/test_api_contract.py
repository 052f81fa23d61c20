"""The OpenAPI document is the contract: Schemathesis checks the live API against it.

Every operation of /api/v1/openapi.json gets requests generated from its
schema, both valid ones (positive) and ones that break the schema (negative),
sent over HTTP to the app served on loopback, and every response goes through
all of Schemathesis's checks: no server error, a documented status, content
type, headers and body schema, negative data rejected, valid data accepted…
Routes that need a bearer token are given a real one, so their handlers run.
The run is seeded (derandomized): the same cases every time.
"""

from __future__ import annotations

import datetime
import time

import pytest
import schemathesis
from helpers import UNLIMITED, key_of, register_people
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from queue_service.registration.tokens import status_token
from queue_service.staff import accounts

pytestmark = pytest.mark.slow

CASES_PER_OPERATION_AND_MODE = 80


@pytest.fixture
def app(make_app, reference_data):
    """The app without rate limits: a 429 is documented everywhere, but would hide what the handler does."""
    return make_app(**UNLIMITED)


def test_the_api_keeps_to_its_openapi_document(live_server, store, staff, settings):
    person = register_people(store, 1, datetime.datetime.now(datetime.timezone.utc))[0]
    applicant_token = status_token(settings.secret_key, key_of(person.key.registration_id))
    staff_token, _ = accounts.new_api_token(store, staff["national"], "contract", datetime.datetime.now(datetime.timezone.utc))
    schema = schemathesis.openapi.from_url(f"{live_server}/api/v1/openapi.json")
    # A schema says which requests are well formed, not which phone numbers exist or which site
    # ids a prefecture has: valid data may still meet the domain's 422 (field by field) or 410.
    schema.config.checks.positive_data_acceptance.expected_statuses = [
        *schema.config.checks.positive_data_acceptance.expected_statuses, "410", "422"]
    cases = 0
    started = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        token = {"statusToken": applicant_token, "apiToken": staff_token}.get(
            next(iter((operation.definition.raw.get("security") or [{}])[0]), None))
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @hypothesis_settings(max_examples=CASES_PER_OPERATION_AND_MODE, derandomize=True, database=None,
                                 deadline=None, suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case):
                nonlocal cases
                cases += 1
                case.call_and_validate(base_url=f"{live_server}/api/v1", headers=headers)

            try:
                check()
            except Unsatisfiable:  # nothing in the request can be made invalid (a GET without parameters)
                assert mode is GenerationMode.NEGATIVE
    print(f"Schemathesis: {cases} cases in {time.monotonic() - started:.0f} s")
    assert cases >= 2000
