"""Staff accounts, roles, sessions and API tokens.

Three roles: the national admin (creates prefecture admins), the prefecture
admin (sites, slots, schedules, policy and agents of one prefecture) and the
agent (assisted registration, counter work, dashboard of one prefecture).
What each may do is one table, `PERMISSIONS`, and one function, `allowed`.

Passwords are hashed with argon2; API tokens and session ids are random and
stored only as SHA-256 digests. Time is passed in.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import math
import secrets
from dataclasses import dataclass
from enum import Enum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from queue_service.errors import (  # noqa: F401 - NotSignedIn is part of this module's interface
    N_,
    AccountExists,
    LoginFailed,
    LoginThrottled,
    MissingScope,
    NotAllowed,
    NotSignedIn,
    ValidationFailed,
)


class Role(str, Enum):
    NATIONAL_ADMIN = "national_admin"
    PREFECTURE_ADMIN = "prefecture_admin"
    AGENT = "agent"


class Action(str, Enum):
    VIEW = "view"  # dashboard, lists of sites, slots, schedules, registrations
    REGISTER = "register"  # assisted registration
    CHECK_IN = "check_in"  # check booking codes at the counter, mark attended
    MANAGE = "manage"  # sites, slots, schedules, policy, draws now
    MANAGE_AGENTS = "manage_agents"
    MANAGE_ADMINS = "manage_admins"


class Scope(str, Enum):
    """What an API token may do: each scope opens the routes that state it in the OpenAPI
    document, and only where the token's account may do the scope's action (SCOPE_ACTIONS)."""

    READ = "read"  # sites, slots, schedules, draws, counts, undelivered messages
    SITES_WRITE = "sites:write"
    SLOTS_WRITE = "slots:write"  # publish, import, cancel
    SCHEDULES_WRITE = "schedules:write"  # schedule and policy, one explicit draw
    DRAWS_RUN = "draws:run"  # run a draw now, release a held draw
    COUNTER_CHECK_IN = "counter:check-in"  # look up a booking code, check in, mark a no-show
    MESSAGES_RETRY = "messages:retry"
    REGISTRATIONS_WRITE = "registrations:write"  # assisted registration at the counter
    TOKENS_WRITE = "tokens:write"  # create and revoke tokens, never wider than one's own


PERMISSIONS: dict[Role, frozenset[Action]] = {
    Role.NATIONAL_ADMIN: frozenset(Action),
    Role.PREFECTURE_ADMIN: frozenset(
        {Action.VIEW, Action.REGISTER, Action.CHECK_IN, Action.MANAGE, Action.MANAGE_AGENTS}
    ),
    Role.AGENT: frozenset({Action.VIEW, Action.REGISTER, Action.CHECK_IN}),
}

# The action of the account's role a scope needs: a token never does more than its account.
SCOPE_ACTIONS: dict[Scope, Action] = {
    Scope.READ: Action.VIEW,
    Scope.SITES_WRITE: Action.MANAGE,
    Scope.SLOTS_WRITE: Action.MANAGE,
    Scope.SCHEDULES_WRITE: Action.MANAGE,
    Scope.DRAWS_RUN: Action.MANAGE,
    Scope.COUNTER_CHECK_IN: Action.CHECK_IN,
    Scope.MESSAGES_RETRY: Action.MANAGE,
    Scope.REGISTRATIONS_WRITE: Action.REGISTER,
    Scope.TOKENS_WRITE: Action.MANAGE,
}


def role_scopes(role: Role) -> frozenset[Scope]:
    """The scopes an account of `role` may give its tokens."""
    return frozenset(scope for scope, action in SCOPE_ACTIONS.items() if action in PERMISSIONS[role])


# Sign-in throttling. Failures are counted per account *and* client (an address,
# or an IPv6 /64 network: one subscriber's), so wrong passwords slow only the
# client that types them: nobody can lock staff out by failing in their name.
# The first FREE_LOGIN_FAILURES cost nothing; after each further one that client
# waits before its next try, FIRST_LOGIN_WAIT doubling up to MAX_LOGIN_WAIT.
# Its failures are forgotten LOGIN_FAILURE_MEMORY after the last one, or at its
# next sign-in.
FREE_LOGIN_FAILURES = 3
FIRST_LOGIN_WAIT = datetime.timedelta(seconds=1)
MAX_LOGIN_WAIT = datetime.timedelta(minutes=15)
LOGIN_FAILURE_MEMORY = datetime.timedelta(hours=1)
# Sessions end after this long without a request, and in any case after the
# absolute limit.
SESSION_IDLE_TIMEOUT = datetime.timedelta(minutes=30)
SESSION_ABSOLUTE_TIMEOUT = datetime.timedelta(hours=12)
TOKEN_PREFIX = "qst_"
MIN_PASSWORD_LENGTH = 12

_hasher = PasswordHasher()


@dataclass(frozen=True)
class StaffAccount:
    id: str
    email: str
    name: str
    role: Role
    prefecture: str | None  # None for the national admin
    password_hash: str
    active: bool
    created_at: datetime.datetime


@dataclass(frozen=True)
class ApiToken:
    id: str
    account_id: str
    role: Role
    prefecture: str | None
    label: str
    created_at: datetime.datetime
    # What the token may do; a token stored before scopes existed has all its role's.
    scopes: frozenset[Scope] = frozenset()


@dataclass(frozen=True)
class Principal:
    """Who acts: an account signed in, or an API token (scoped like its account or narrower)."""

    account_id: str
    role: Role
    prefecture: str | None
    scopes: frozenset[Scope] | None = None  # a token's; None for a signed-in person (every scope of the role)
    token_id: str | None = None


def allowed(principal: Principal, action: Action, prefecture: str | None) -> bool:
    """May `principal` do `action` on `prefecture` (None: not tied to one)?"""
    if action not in PERMISSIONS[principal.role]:
        return False
    if principal.prefecture is None:  # the national admin, not narrowed to one prefecture
        return principal.role is Role.NATIONAL_ADMIN
    return prefecture == principal.prefecture


def require(principal: Principal, action: Action, prefecture: str | None) -> None:
    if not allowed(principal, action, prefecture):
        raise NotAllowed()


def allowed_scope(principal: Principal, scope: Scope, prefecture: str | None) -> bool:
    """May `principal` use the routes of `scope` for `prefecture`: the token has the scope, and
    its account's role may do the scope's action there."""
    if principal.scopes is not None and scope not in principal.scopes:
        return False
    return allowed(principal, SCOPE_ACTIONS[scope], prefecture)


def require_scope(principal: Principal, scope: Scope, prefecture: str | None) -> None:
    if principal.scopes is not None and scope not in principal.scopes:
        raise MissingScope(scope.value)
    require(principal, SCOPE_ACTIONS[scope], prefecture)


def principal_of(account: StaffAccount) -> Principal:
    return Principal(account.id, account.role, account.prefecture)


# Accounts ---------------------------------------------------------------------


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_account(
    creator: Principal | None,
    *,
    email: str,
    name: str,
    role: Role,
    prefecture: str | None,
    password: str,
    now: datetime.datetime,
) -> StaffAccount:
    """Check what the creator may create and the fields; `creator` None is the first national admin (CLI)."""
    if creator is not None:
        needed = Action.MANAGE_ADMINS if role is not Role.AGENT else Action.MANAGE_AGENTS
        require(creator, needed, prefecture)
        if role is Role.NATIONAL_ADMIN and creator.role is not Role.NATIONAL_ADMIN:
            raise NotAllowed()
    errors = {}
    email = email.strip().lower()
    if "@" not in email or len(email) > 254 or any(char.isspace() for char in email):
        errors["email"] = N_("Enter an email address.")
    if not name.strip() or len(name) > 100:
        errors["name"] = N_("Enter a name of at most 100 characters.")
    if len(password) < MIN_PASSWORD_LENGTH:
        errors["password"] = N_("Choose a password of at least 12 characters.")
    if (role is Role.NATIONAL_ADMIN) != (prefecture is None):
        errors["prefecture"] = N_("A prefecture admin or an agent belongs to one prefecture; a national admin to none.")
    if errors:
        raise ValidationFailed(errors)
    return StaffAccount(
        id=secrets.token_hex(12),
        email=email,
        name=name.strip(),
        role=role,
        prefecture=prefecture,
        password_hash=hash_password(password),
        active=True,
        created_at=now,
    )


def create_account(store, creator: Principal | None, **fields) -> StaffAccount:
    """Create and store an account (see new_account); AccountExists if the email is taken."""
    account = new_account(creator, **fields)
    if not store.create_staff_account(account):
        raise AccountExists()
    return account


def login_wait(failures: int) -> datetime.timedelta:
    """How long a client waits before its next sign-in attempt after `failures` failures."""
    if failures <= FREE_LOGIN_FAILURES:
        return datetime.timedelta(0)
    # Enough doublings to pass the cap, and no more (2 ** 1000 seconds overflow a timedelta).
    doublings = min(failures - FREE_LOGIN_FAILURES - 1, (MAX_LOGIN_WAIT // FIRST_LOGIN_WAIT).bit_length())
    return min(FIRST_LOGIN_WAIT * 2**doublings, MAX_LOGIN_WAIT)


def login_waits() -> list[datetime.timedelta]:
    """`login_wait(n)` for n = 1, 2, ... up to the first that reaches the cap (which holds beyond)."""
    waits = [login_wait(1)]
    while waits[-1] < MAX_LOGIN_WAIT:
        waits.append(login_wait(len(waits) + 1))
    return waits


def login_client(address: str | None) -> str:
    """Whose failures an attempt from `address` counts towards: the IPv4 address, or
    the /64 network of an IPv6 one (a subscriber gets a whole /64 and picks in it)."""
    try:
        parsed = ipaddress.ip_address(address or "")
    except ValueError:
        return address or "unknown"
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


def sign_in(store, email: str, password: str, address: str | None, now: datetime.datetime) -> StaffAccount:
    """The account, if the password matches; LoginThrottled while the client at
    `address` must wait after its failures for this account, LoginFailed otherwise."""
    email = email.strip().lower()
    client = login_client(address)
    retry_at = store.take_login_attempt(email, client, now, login_waits(), LOGIN_FAILURE_MEMORY)
    if retry_at is not None:
        raise LoginThrottled(retry_after=max(1, math.ceil((retry_at - now).total_seconds())))
    account = store.staff_account_by_email(email)
    if account is None or not account.active or not password_matches(account.password_hash, password):
        if account is None:
            password_matches(_DUMMY_HASH, password)  # same time whether the account exists or not
        raise LoginFailed()  # the attempt stays counted as a failure
    store.clear_login_failures(email, client)
    return account


_DUMMY_HASH = _hasher.hash("not a real password, only for equal timing")


# Sessions and tokens -----------------------------------------------------------


def digest(secret_text: str) -> str:
    return hashlib.sha256(secret_text.encode()).hexdigest()


def open_session(store, account: StaffAccount, now: datetime.datetime) -> str:
    """A new session id (a new one at every sign-in, so a planted id is useless)."""
    session_id = secrets.token_urlsafe(32)
    store.save_staff_session(digest(session_id), account.id, now, SESSION_IDLE_TIMEOUT)
    return session_id


def session_principal(store, session_id: str | None, now: datetime.datetime) -> Principal:
    """Who the session belongs to; raises NotSignedIn when absent, ended, idle or too old."""
    if not session_id:
        raise NotSignedIn()
    record = store.staff_session(digest(session_id))
    if record is None:
        raise NotSignedIn()
    account_id, started_at = record
    if now - started_at > SESSION_ABSOLUTE_TIMEOUT:
        store.end_staff_session(digest(session_id))
        raise NotSignedIn()
    account = store.staff_account(account_id)
    if account is None or not account.active:
        raise NotSignedIn()
    store.touch_staff_session(digest(session_id), SESSION_IDLE_TIMEOUT)
    return principal_of(account)


def close_session(store, session_id: str | None) -> None:
    if session_id:
        store.end_staff_session(digest(session_id))


def token_scopes(names: object, creator: Principal) -> frozenset[Scope]:
    """The scopes asked for a new token (None: every scope the creator has), each one the
    creator has itself; ValidationFailed names what cannot be given."""
    available = role_scopes(creator.role) if creator.scopes is None else creator.scopes & role_scopes(creator.role)
    if names is None:
        return frozenset(available)
    if not isinstance(names, (list, tuple, set, frozenset)) or not names \
            or not all(isinstance(name, str) for name in names):
        raise ValidationFailed({"scopes": N_("Choose at least one scope.")})
    known = {scope.value: scope for scope in Scope}
    if any(name not in known for name in names):
        raise ValidationFailed({"scopes": N_("Choose scopes from the list of the API's scopes.")})
    wanted = frozenset(known[name] for name in names)
    if not wanted <= available:
        raise ValidationFailed({"scopes": N_("A token cannot have a scope that your account (or the token "
                                             "creating it) does not have.")})
    return wanted


def token_prefecture(creator: Principal, prefecture: str | None) -> str | None:
    """The prefecture a new token acts for: the creator's own, or any (or none, national) for a
    national admin not narrowed to one."""
    if creator.role is Role.NATIONAL_ADMIN and creator.prefecture is None:
        return prefecture or None
    if prefecture not in (None, "", creator.prefecture):
        raise NotAllowed()
    return creator.prefecture


def new_api_token(
    store, owner: StaffAccount, label: str, now: datetime.datetime, *, prefecture: str | None = None,
    scopes: object = None, creator: Principal | None = None,
) -> tuple[str, ApiToken]:
    """Create a token of `owner`'s for `prefecture` and `scopes`, never more than `creator`
    (the owner signed in, or one of the owner's tokens) may do: the text is shown once,
    stored hashed. `scopes` None gives every scope the creator has."""
    creator = creator or principal_of(owner)
    if creator.account_id != owner.id:
        raise NotAllowed()
    errors, chosen = {}, frozenset()
    if not isinstance(label, str) or not label.strip() or len(label) > 100:
        errors["label"] = N_("Give the token a name of at most 100 characters.")
    try:
        chosen = token_scopes(scopes, creator)
    except ValidationFailed as failure:
        errors.update(failure.errors)
    if errors:
        raise ValidationFailed(errors)
    text = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        id=secrets.token_hex(8),
        account_id=owner.id,
        role=owner.role,
        prefecture=token_prefecture(creator, prefecture),
        label=label.strip(),
        created_at=now,
        scopes=chosen,
    )
    store.save_api_token(digest(text), token)
    return text, token


def token_principal(store, text: str) -> Principal:
    """Who acts with this token: its account as it is now (a token of an account deactivated,
    or moved to a narrower role, loses what the account lost), narrowed to the token's scopes
    and prefecture."""
    if not text.startswith(TOKEN_PREFIX):
        raise NotSignedIn()
    token = store.api_token(digest(text))
    if token is None:
        raise NotSignedIn()
    account = store.staff_account(token.account_id)
    if account is None or not account.active:
        raise NotSignedIn()
    prefecture = token.prefecture if account.prefecture is None else account.prefecture
    scopes = (token.scopes or role_scopes(token.role)) & role_scopes(account.role)
    return Principal(account.id, account.role, prefecture, scopes=scopes, token_id=token.id)
