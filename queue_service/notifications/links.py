"""The links that messages carry to applicants: the one place that knows their paths.

A message is composed away from any request (in the worker), so its links are
absolute: the service's public address (settings.base_url) then the path of
a web page and the link's token. The web app answers these paths itself
(tests/test_links.py checks each one against its URL map, so they cannot drift).
"""

from __future__ import annotations

# Applicant pages a message links to; each takes the link's token as `t`.
STATUS_PATH = "/status"  # the private status page (status token)
CONFIRM_PATH = "/confirm"  # confirms the email given at registration (confirmation token)
EMAIL_CONFIRM_PATH = "/email/confirm"  # confirms a new email address (confirmation token)
OFFER_PATH = "/offer"  # the offer, then the booking (status token)
RECOVER_PATH = "/recover"  # asks for one's links again (no token)
# An SMS's short link: this path then its code, redirected to the page it stands for
# (notifications/short_links.py).
SHORT_LINK_PATH = "/o/"


def _path(path: str, token: str) -> str:
    return f"{path}?t={token}"


def _link(base_url: str, path: str, token: str) -> str:
    return f"{base_url}{_path(path, token)}"


def status_link(base_url: str, token: str) -> str:
    """The applicant's private status page, from their status token."""
    return _link(base_url, STATUS_PATH, token)


def confirmation_link(base_url: str, token: str) -> str:
    """Where the applicant confirms the email address they registered with."""
    return _link(base_url, CONFIRM_PATH, token)


def email_change_link(base_url: str, token: str) -> str:
    """Where the applicant confirms a new email address."""
    return _link(base_url, EMAIL_CONFIRM_PATH, token)


def offer_link(base_url: str, token: str) -> str:
    """The page of the applicant's offer or booking, from their status token."""
    return _link(base_url, OFFER_PATH, token)


def offer_path(token: str) -> str:
    """The offer page's path and query, without the service's address: what a short link leads to."""
    return _path(OFFER_PATH, token)


def short_link(base_url: str, code: str) -> str:
    """An SMS's short link, from its code (notifications/short_links.py)."""
    return f"{base_url}{SHORT_LINK_PATH}{code}"


def recover_link(base_url: str) -> str:
    """Where an applicant who lost their link asks for it again, by email."""
    return f"{base_url}{RECOVER_PATH}"
