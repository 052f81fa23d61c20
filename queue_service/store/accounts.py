"""Staff in Redis: accounts, failed sign-ins, sessions and API tokens.

Global keys under qs:staff (no pool): emails, client addresses, sessions and
tokens appear in key names only as SHA-256 digests. The field codec of
StaffAccount lives here.
"""

from __future__ import annotations

import datetime

import redis

from queue_service.staff.accounts import ApiToken, Role, Scope, StaffAccount, digest
from queue_service.store.keys import (
    STAFF_ACCOUNTS_KEY,
    STAFF_EMAILS_KEY,
    account_tokens_key,
    api_token_key,
    login_failures_key,
    staff_account_key,
    staff_session_key,
)
from queue_service.store.times import utc_from, utc_text


class AccountStore:
    """Staff accounts, sessions and API tokens (one part of Store)."""

    redis: redis.Redis  # set by Store.__init__ (store/__init__.py)
    cluster: bool  # likewise: on a cluster, the account (or token) and its list are two slots

    # Accounts -----------------------------------------------------------------

    def create_staff_account(self, account: StaffAccount) -> bool:
        """Store a new account; False if its email is taken."""
        if not self.redis.hsetnx(STAFF_EMAILS_KEY, digest(account.email), account.id):
            return False
        with self.redis.pipeline(transaction=not self.cluster) as pipe:  # the account, then the list
            pipe.hset(staff_account_key(account.id), mapping=_account_fields(account))
            pipe.sadd(STAFF_ACCOUNTS_KEY, account.id)
            pipe.execute()
        return True

    def staff_account(self, account_id: str) -> StaffAccount | None:
        fields = self.redis.hgetall(staff_account_key(account_id))
        return _account_from(fields) if fields else None

    def staff_account_by_email(self, email: str) -> StaffAccount | None:
        account_id = self.redis.hget(STAFF_EMAILS_KEY, digest(email))
        return self.staff_account(account_id.decode()) if account_id else None

    def staff_accounts(self, prefecture: str | None = None) -> list[StaffAccount]:
        """Every account, or those of one prefecture; by role, then name."""
        ids = sorted(member.decode() for member in self.redis.smembers(STAFF_ACCOUNTS_KEY))
        accounts = [account for account in map(self.staff_account, ids) if account is not None]
        if prefecture is not None:
            accounts = [account for account in accounts if account.prefecture == prefecture]
        return sorted(accounts, key=lambda account: (account.role.value, account.name))

    def set_staff_account_active(self, account_id: str, active: bool) -> None:
        self.redis.hset(staff_account_key(account_id), "active", "1" if active else "0")

    # Sign-in failures and sessions --------------------------------------------

    def take_login_attempt(
        self, email: str, client: str, now: datetime.datetime, waits: list[datetime.timedelta],
        memory: datetime.timedelta,
    ) -> datetime.datetime | None:
        """Count a sign-in attempt of `email` from `client`, unless that client must still
        wait: then nothing is counted and the time it may try again is returned.

        `waits[n - 1]` is the wait after n failures (the last one for any more);
        the failures are forgotten `memory` after the last one. Atomic, so
        concurrent attempts cannot slip past the count (take_login_attempt.lua).
        """
        key = login_failures_key(digest(email), digest(client))
        milliseconds = [int(wait.total_seconds() * 1000) for wait in waits]
        allowed, value = self.scripts.take_login_attempt(
            keys=[key], args=[_epoch_ms(now), int(memory.total_seconds()), *milliseconds]
        )
        if allowed:
            return None
        return datetime.datetime.fromtimestamp(value / 1000, datetime.timezone.utc)

    def clear_login_failures(self, email: str, client: str) -> None:
        """Forget the failures of `email` from `client` (after it signed in)."""
        self.redis.delete(login_failures_key(digest(email), digest(client)))

    def save_staff_session(self, session_digest, account_id, now, idle: datetime.timedelta) -> None:
        key = staff_session_key(session_digest)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"account_id": account_id, "started_at": utc_text(now)})
            pipe.expire(key, int(idle.total_seconds()))
            pipe.execute()

    def staff_session(self, session_digest: str) -> tuple[str, datetime.datetime] | None:
        values = self.redis.hmget(staff_session_key(session_digest), "account_id", "started_at")
        if values[0] is None:
            return None
        return values[0].decode(), utc_from(values[1])

    def touch_staff_session(self, session_digest: str, idle: datetime.timedelta) -> None:
        self.redis.expire(staff_session_key(session_digest), int(idle.total_seconds()))

    def end_staff_session(self, session_digest: str) -> None:
        self.redis.delete(staff_session_key(session_digest))

    # API tokens ---------------------------------------------------------------

    def save_api_token(self, token_digest: str, token: ApiToken) -> None:
        fields = {
            "id": token.id,
            "account_id": token.account_id,
            "role": token.role.value,
            "prefecture": token.prefecture or "",
            "label": token.label,
            "created_at": utc_text(token.created_at),
            "scopes": " ".join(sorted(scope.value for scope in token.scopes)),
        }
        with self.redis.pipeline(transaction=not self.cluster) as pipe:  # the token, then the list
            pipe.hset(api_token_key(token_digest), mapping=fields)
            pipe.sadd(account_tokens_key(token.account_id), token_digest)
            pipe.execute()

    def api_token(self, token_digest: str) -> ApiToken | None:
        fields = {k.decode(): v.decode() for k, v in self.redis.hgetall(api_token_key(token_digest)).items()}
        if not fields:
            return None
        return ApiToken(
            id=fields["id"],
            account_id=fields["account_id"],
            role=Role(fields["role"]),
            prefecture=fields["prefecture"] or None,
            label=fields["label"],
            created_at=datetime.datetime.fromisoformat(fields["created_at"]),
            scopes=frozenset(Scope(name) for name in fields.get("scopes", "").split()),
        )

    def api_tokens(self, account_id: str) -> list[tuple[str, ApiToken]]:
        digests = sorted(member.decode() for member in self.redis.smembers(account_tokens_key(account_id)))
        found = [(token_digest, self.api_token(token_digest)) for token_digest in digests]
        return [(token_digest, token) for token_digest, token in found if token is not None]

    def revoke_api_token(self, account_id: str, token_id: str) -> bool:
        for token_digest, token in self.api_tokens(account_id):
            if token.id == token_id:
                # The token, then the list (a digest left listed is skipped: api_tokens).
                with self.redis.pipeline(transaction=not self.cluster) as pipe:
                    pipe.delete(api_token_key(token_digest))
                    pipe.srem(account_tokens_key(account_id), token_digest)
                    pipe.execute()
                return True
        return False


def _epoch_ms(moment: datetime.datetime) -> int:
    return int(moment.timestamp() * 1000)


# Serialisation: StaffAccount <-> hash fields ----------------------------------


def _account_fields(account: StaffAccount) -> dict[str, str]:
    return {
        "id": account.id,
        "email": account.email,
        "name": account.name,
        "role": account.role.value,
        "prefecture": account.prefecture or "",
        "password_hash": account.password_hash,
        "active": "1" if account.active else "0",
        "created_at": utc_text(account.created_at),
    }


def _account_from(raw: dict[bytes, bytes]) -> StaffAccount:
    fields = {name.decode(): value.decode() for name, value in raw.items()}
    return StaffAccount(
        id=fields["id"],
        email=fields["email"],
        name=fields["name"],
        role=Role(fields["role"]),
        prefecture=fields["prefecture"] or None,
        password_hash=fields["password_hash"],
        active=fields["active"] == "1",
        created_at=datetime.datetime.fromisoformat(fields["created_at"]),
    )
