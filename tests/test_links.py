"""The links in messages lead to pages the web app answers (notifications.links and the URL map cannot drift)."""

import datetime
import urllib.parse

import pytest
from flask import url_for

from queue_service.notifications import links
from queue_service.registration.tokens import RegistrationKey, confirmation_token, status_token

KEY = RegistrationKey("01", "renewal", "r-123")
ISSUED = datetime.datetime(2027, 1, 4, 9, 0, tzinfo=datetime.timezone.utc)


def tokens(secret: str) -> dict[str, str]:
    return {"status": status_token(secret, KEY), "confirmation": confirmation_token(secret, KEY, "print", ISSUED)}


@pytest.mark.parametrize(("build", "token", "endpoint"), [
    (links.status_link, "status", "registration.status"),
    (links.confirmation_link, "confirmation", "registration.confirm"),
    (links.email_change_link, "confirmation", "registration.confirm_email_change"),
    (links.offer_link, "status", "offers.offer_page"),
])
def test_each_link_in_messages_is_a_page_of_the_app(make_app, settings, build, token, endpoint):
    app = make_app()
    token = tokens(settings.secret_key)[token]
    link = build(settings.base_url, token)
    parts = urllib.parse.urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}" == settings.base_url
    assert app.url_map.bind("localhost").match(parts.path, method="GET") == (endpoint, {})
    assert urllib.parse.parse_qs(parts.query) == {"t": [token]}
    with app.test_request_context():
        assert link == settings.base_url + url_for(endpoint, t=token)


def test_a_status_token_names_its_link_version_and_nothing_else_passes():
    from itsdangerous import URLSafeSerializer

    from queue_service.errors import InvalidLink
    from queue_service.registration.tokens import STATUS_SALT, read_status_token

    secret = "s" * 32
    assert read_status_token(secret, status_token(secret, KEY)) == (KEY, 0)
    assert read_status_token(secret, status_token(secret, KEY, 3)) == (KEY, 3)
    # Links sent before versions existed carry three parts: they are version 0, unchanged.
    assert status_token(secret, KEY) == URLSafeSerializer(secret, salt=STATUS_SALT).dumps(["01", "renewal", "r-123"])
    for payload in (["01", "renewal", "r-123", -1], ["01", "renewal", "r-123", "1"], ["01", "renewal", "r-123", True],
                    ["01", "renewal", "r-123", 1.0], ["01", "renewal"], ["01", "renewal", "r-123", 1, 2]):
        with pytest.raises(InvalidLink):
            read_status_token(secret, URLSafeSerializer(secret, salt=STATUS_SALT).dumps(payload))
