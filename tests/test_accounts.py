"""Staff accounts against the real Redis: who may do what, sign-in, sessions, tokens."""

import datetime

import pytest

from queue_service.errors import (
    AccountExists,
    LoginFailed,
    LoginThrottled,
    NotAllowed,
    NotSignedIn,
    ValidationFailed,
)
from queue_service.staff import accounts
from queue_service.staff.accounts import Action, Principal, Role
from queue_service.store.keys import ALL_PATTERN, staff_session_key

UTC = datetime.timezone.utc
NOW = datetime.datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
NATIONAL = Principal("n", Role.NATIONAL_ADMIN, None)
ADMIN_01 = Principal("a", Role.PREFECTURE_ADMIN, "01")
AGENT_01 = Principal("g", Role.AGENT, "01")


@pytest.mark.parametrize(
    ("principal", "action", "prefecture", "expected"),
    [
        (NATIONAL, Action.MANAGE, "69", True),
        (NATIONAL, Action.MANAGE_ADMINS, "01", True),
        (ADMIN_01, Action.MANAGE, "01", True),
        (ADMIN_01, Action.MANAGE, "69", False),
        (ADMIN_01, Action.VIEW, "69", False),
        (ADMIN_01, Action.MANAGE_AGENTS, "01", True),
        (ADMIN_01, Action.MANAGE_ADMINS, "01", False),
        (AGENT_01, Action.VIEW, "01", True),
        (AGENT_01, Action.REGISTER, "01", True),
        (AGENT_01, Action.MANAGE, "01", False),
        (AGENT_01, Action.REGISTER, "69", False),
        (Principal("t", Role.NATIONAL_ADMIN, "01"), Action.MANAGE, "69", False),  # a token narrowed to 01
    ],
)
def test_permissions(principal, action, prefecture, expected):
    assert accounts.allowed(principal, action, prefecture) is expected


def make(store, creator, role, prefecture, email="x@prefecture.gouv.fr"):
    return accounts.create_account(
        store, creator, email=email, name="Camille", role=role, prefecture=prefecture, password=PASSWORD, now=NOW
    )


def test_who_creates_whom(store):
    make(store, None, Role.NATIONAL_ADMIN, None, "national@interieur.gouv.fr")
    make(store, NATIONAL, Role.PREFECTURE_ADMIN, "01", "admin01@ain.gouv.fr")
    make(store, ADMIN_01, Role.AGENT, "01", "agent01@ain.gouv.fr")
    with pytest.raises(NotAllowed):
        make(store, ADMIN_01, Role.AGENT, "69", "agent69@rhone.gouv.fr")
    with pytest.raises(NotAllowed):
        make(store, ADMIN_01, Role.PREFECTURE_ADMIN, "01", "admin2@ain.gouv.fr")
    with pytest.raises(NotAllowed):
        make(store, AGENT_01, Role.AGENT, "01", "agent2@ain.gouv.fr")
    with pytest.raises(AccountExists):
        make(store, ADMIN_01, Role.AGENT, "01", "AGENT01@ain.gouv.fr")
    assert [a.email for a in store.staff_accounts("01")] == ["agent01@ain.gouv.fr", "admin01@ain.gouv.fr"]


def test_account_fields_are_checked(store):
    with pytest.raises(ValidationFailed) as failure:
        accounts.create_account(
            store, NATIONAL, email="nope", name="", role=Role.AGENT, prefecture=None, password="short", now=NOW
        )
    assert set(failure.value.errors) == {"email", "name", "password", "prefecture"}


def test_passwords_are_stored_as_argon2_hashes(store):
    account = make(store, None, Role.NATIONAL_ADMIN, None)
    stored = store.staff_account(account.id)
    assert stored.password_hash.startswith("$argon2id$") and PASSWORD not in stored.password_hash


def test_sign_in_and_throttling(store):
    make(store, None, Role.NATIONAL_ADMIN, None)
    here, elsewhere = "203.0.113.9", "198.51.100.4"
    assert accounts.sign_in(store, "X@prefecture.gouv.fr", PASSWORD, here, NOW).role is Role.NATIONAL_ADMIN
    for _ in range(accounts.FREE_LOGIN_FAILURES + 1):
        with pytest.raises(LoginFailed):
            accounts.sign_in(store, "x@prefecture.gouv.fr", "wrong password", here, NOW)
    with pytest.raises(LoginThrottled) as throttled:  # even with the right password
        accounts.sign_in(store, "x@prefecture.gouv.fr", PASSWORD, here, NOW)
    assert throttled.value.retry_after == 1
    # Refused attempts add nothing: the wait is over one second after the last failure.
    later = NOW + datetime.timedelta(seconds=1)
    assert accounts.sign_in(store, "x@prefecture.gouv.fr", PASSWORD, here, later).role is Role.NATIONAL_ADMIN
    # Another client was never slowed; unknown emails fail the same way.
    assert accounts.sign_in(store, "x@prefecture.gouv.fr", PASSWORD, elsewhere, NOW).role is Role.NATIONAL_ADMIN
    with pytest.raises(LoginFailed):
        accounts.sign_in(store, "nobody@prefecture.gouv.fr", PASSWORD, here, NOW)


def test_the_wait_doubles_after_each_failure_up_to_the_cap(store):
    make(store, None, Role.NATIONAL_ADMIN, None)
    moment, waits = NOW, []
    for failures in range(1, 20):
        with pytest.raises(LoginFailed):
            accounts.sign_in(store, "x@prefecture.gouv.fr", "wrong password", "203.0.113.9", moment)
        if failures > accounts.FREE_LOGIN_FAILURES:
            with pytest.raises(LoginThrottled) as throttled:
                accounts.sign_in(store, "x@prefecture.gouv.fr", PASSWORD, "203.0.113.9", moment)
            waits.append(throttled.value.retry_after)
            moment += datetime.timedelta(seconds=throttled.value.retry_after)
    assert waits == [2 ** n for n in range(10)] + [15 * 60] * 6
    # The cap holds however long it goes on, and the failures are forgotten an hour after the last.
    assert accounts.login_waits()[-1] == accounts.MAX_LOGIN_WAIT == datetime.timedelta(minutes=15)
    assert accounts.login_wait(1000) == accounts.MAX_LOGIN_WAIT


@pytest.mark.parametrize(
    ("address", "client"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::99", "2001:db8:1:2::/64"),
        (None, "unknown"),
    ],
)
def test_a_client_is_an_address_or_an_ipv6_subscriber_network(address, client):
    assert accounts.login_client(address) == client


def test_sessions_end_on_logout_idle_and_age(store):
    account = make(store, None, Role.NATIONAL_ADMIN, None)
    session_id = accounts.open_session(store, account, NOW)
    assert accounts.session_principal(store, session_id, NOW).account_id == account.id
    assert 0 < store.redis.ttl(next(store.redis.scan_iter(staff_session_key("*")))) <= 30 * 60
    with pytest.raises(NotSignedIn):
        accounts.session_principal(store, session_id, NOW + datetime.timedelta(hours=13))
    other = accounts.open_session(store, account, NOW)
    assert other != session_id
    accounts.close_session(store, other)
    with pytest.raises(NotSignedIn):
        accounts.session_principal(store, other, NOW)
    with pytest.raises(NotSignedIn):
        accounts.session_principal(store, "forged", NOW)


def test_a_deactivated_account_loses_its_session_and_tokens(store):
    account = make(store, NATIONAL, Role.PREFECTURE_ADMIN, "01")
    session_id = accounts.open_session(store, account, NOW)
    text, _ = accounts.new_api_token(store, account, "import script", NOW)
    store.set_staff_account_active(account.id, False)
    with pytest.raises(NotSignedIn):
        accounts.session_principal(store, session_id, NOW)
    with pytest.raises(NotSignedIn):
        accounts.token_principal(store, text)


def test_api_tokens_are_shown_once_stored_hashed_scoped_and_revocable(store):
    admin = make(store, NATIONAL, Role.PREFECTURE_ADMIN, "01")
    text, token = accounts.new_api_token(store, admin, "slots import", NOW)
    assert text.startswith("qst_")
    assert all(text.encode() not in store.redis.dump(key) for key in store.redis.scan_iter(ALL_PATTERN))
    principal = accounts.token_principal(store, text)
    assert (principal.account_id, principal.role, principal.prefecture) == (admin.id, Role.PREFECTURE_ADMIN, "01")
    assert principal.scopes == accounts.role_scopes(Role.PREFECTURE_ADMIN) and principal.token_id == token.id
    assert store.revoke_api_token(admin.id, token.id)
    with pytest.raises(NotSignedIn):
        accounts.token_principal(store, text)
    national = make(store, None, Role.NATIONAL_ADMIN, None, "n@interieur.gouv.fr")
    narrowed, _ = accounts.new_api_token(store, national, "Ain only", NOW, prefecture="01")
    assert not accounts.allowed(accounts.token_principal(store, narrowed), Action.VIEW, "69")
