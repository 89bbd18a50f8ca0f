"""Accounts, passwords (argon2) and opaque tokens (bearer tokens and browser sessions).

A token is a random secret handed to the client once; the database keeps only its SHA-256,
so a copy of the database cannot be replayed as a login.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
import re
import secrets
import string
import unicodedata
from dataclasses import dataclass
from typing import Literal, cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from allpath.facts import Problem
from allpath.settings import AuthSettings
from allpath.store.db import durable_session, read_only_session
from allpath.store.models import PatientRow, TokenRow, UserRow
from allpath.store.service import (
    PATIENT_ID_RE,
    ROLES,
    Actor,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    Role,
    audit,
    audit_now,
    utcnow,
)

log = logging.getLogger("allpath.store")
TokenKind = Literal["bearer", "session"]
USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{1,63}$"
_USERNAME = re.compile(USERNAME_PATTERN)
MIN_PASSWORD_LENGTH = 10

# argon2-cffi's defaults (RFC 9106's second recommended option: argon2id, t=3, 64 MiB, p=4),
# about 0.2 s of CPU per hash: what every deployment uses, unless a test suite says otherwise below.
_hasher = PasswordHasher()
# Verifying against this when the user does not exist keeps the timing of a failed login
# the same whether or not the name is known.
_DUMMY_HASH = _hasher.hash("not-a-real-password-" + secrets.token_hex(8))


def use_insecure_test_password_hash() -> None:
    """argon2 at its lowest cost (t=1, 8 KiB, p=1) for the rest of this process: tests only.

    A test suite logs in thousands of times, and at the production cost the hashing was a large
    part of the time of its service tests (most of the log-in throttling tests'). Hashes already
    stored keep their own parameters (argon2 verifies each with those), and a production server
    re-hashes a cheap one at its next log-in. Reached through `ALLPATH_INSECURE_TEST_PASSWORD_HASH`
    (read at the edge, like every setting) or called by the tests themselves.
    """
    global _hasher, _DUMMY_HASH
    _hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    _DUMMY_HASH = _hasher.hash("not-a-real-password-" + secrets.token_hex(8))


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    username: str
    role: Role
    patient_id: str | None
    active: bool

    @classmethod
    def of(cls, row: UserRow) -> UserRecord:
        return cls(row.id, row.username, row.role, row.patient_id, row.active)  # type: ignore[arg-type]

    def actor(self) -> Actor:
        return Actor(username=self.username, role=self.role, user_id=self.id, patient_id=self.patient_id)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_user(
    session: Session,
    username: str,
    password: str,
    role: Role,
    patient_id: str | None = None,
    *,
    created_by: str = "system",
) -> UserRecord:
    """Create an account. A patient account is linked to exactly one patient record; others to none."""
    problems: list[Problem] = []
    if not re.match(USERNAME_PATTERN, username):
        problems.append(Problem("username", "must be 2-64 characters: lower-case letters, digits, '.', '_' or '-'"))
    problems += password_problems(password, username)
    if role not in ROLES:
        problems.append(Problem("role", f"must be one of {list(ROLES)}"))
    if role == "patient" and not patient_id:
        problems.append(Problem("patient_id", "is required for a patient account"))
    if role != "patient" and patient_id:
        problems.append(Problem("patient_id", "is only for patient accounts"))
    if patient_id and (not PATIENT_ID_RE.match(patient_id) or session.get(PatientRow, patient_id) is None):
        problems.append(Problem("patient_id", "no such patient"))
    if problems:
        raise InvalidInputError("invalid user", problems)
    durable_session(session)
    row = UserRow(
        username=username,
        password_hash=hash_password(password),
        role=role,
        patient_id=patient_id,
        active=True,
        created_at=utcnow(),
    )
    session.add(row)
    audit(session, created_by, "user.create", patient_id, detail=f"{username} ({role})")
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise InvalidInputError("invalid user", [Problem("username", "is already taken")]) from None
    return UserRecord.of(row)


MIN_DISTINCT_CHARACTERS = 5
_EDGE_JUNK = string.digits + string.punctuation + " "


@functools.cache
def common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords of zxcvbn's list (leaked-password corpora), lower-cased."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(p.lower() for p in FREQUENCY_LISTS["passwords"])


def password_problems(password: str, username: str, field: str = "password") -> list[Problem]:
    """What makes `password` unfit for `username`: the policy applied on account creation and change.

    At least `MIN_PASSWORD_LENGTH` characters, at most 200, no control characters, at least
    `MIN_DISTINCT_CHARACTERS` different characters ("aaaaaaaaaa" is refused), not the user name
    (in any case, or reversed), and not a common password, nor one with only digits or punctuation
    added around it ("password123!", "Qwertyuiop").
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        return [Problem(field, f"must be at least {MIN_PASSWORD_LENGTH} characters")]
    if len(password) > 200 or any(unicodedata.category(c) == "Cc" for c in password):
        return [Problem(field, "must be at most 200 characters, none of them control characters")]
    if len(set(password)) < MIN_DISTINCT_CHARACTERS:
        return [Problem(field, f"must use at least {MIN_DISTINCT_CHARACTERS} different characters")]
    folded = password.casefold()
    if folded in (username.casefold(), username.casefold()[::-1]):
        return [Problem(field, "must not be the user name")]
    common = common_passwords()
    core = folded.strip(_EDGE_JUNK)
    if folded in common or (len(core) >= 4 and core in common):
        return [Problem(field, "is too common: it appears in lists of leaked passwords")]
    return []


def list_users(session: Session) -> list[UserRecord]:
    return [UserRecord.of(r) for r in session.scalars(select(UserRow).order_by(UserRow.id))]


def authenticate(session: Session, username: str, password: str) -> UserRecord | None:
    """The user if the password is right and the account active; every attempt is audited."""
    # A name that cannot exist is not looked up (and a NUL would be refused by PostgreSQL).
    row = session.scalar(select(UserRow).where(UserRow.username == username)) if _USERNAME.match(username) else None
    ok = False
    try:
        ok = _hasher.verify(row.password_hash if row else _DUMMY_HASH, password) and row is not None and row.active
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or row is None:
        audit(session, username if row else "unknown-user", "auth.login", None, "denied", "bad credentials")
        session.commit()
        log.info("failed login")
        return None
    if _hasher.check_needs_rehash(row.password_hash):
        row.password_hash = hash_password(password)
    audit(session, row.username, "auth.login", row.patient_id)
    session.commit()
    return UserRecord.of(row)


def authenticate_throttled(
    session: Session, settings: AuthSettings, username: str, password: str, address: str | None
) -> UserRecord | None:
    """`authenticate`, behind the log-in throttle (`allpath.store.throttle`).

    Raises `ThrottledError` (429, `Retry-After`) while the account name or the client address is
    locked, without checking the password; counts a failure against both; clears the account's
    count on success.
    """
    from allpath.store import throttle

    keys = throttle.keys_for(settings, username, address)
    actor = username if _USERNAME.match(username) else "unknown-user"
    wait = throttle.locked_for(session, keys)
    if wait is not None:
        log.info("log-in refused: locked for %s s", wait)
        raise throttle.refuse(session, actor, keys, wait)
    user = authenticate(session, username, password)
    if user is None:
        throttle.record_failure(session, settings, actor, keys)
    else:
        throttle.clear(session, keys[0])
    return user


def issue_token(session: Session, user: UserRecord, kind: TokenKind, ttl_seconds: int) -> tuple[str, dt.datetime]:
    """A new random token for `user`; returns the secret (shown once) and its expiry.

    The user's expired and revoked tokens are deleted in the same transaction: they can never
    authenticate again, and without this the table would grow with every log-in forever.
    """
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    session.execute(
        delete(TokenRow).where(TokenRow.user_id == user.id, or_(TokenRow.expires_at <= now, TokenRow.revoked))
    )
    expires = now + dt.timedelta(seconds=ttl_seconds)
    session.add(TokenRow(token_hash=token_hash(secret), kind=kind, user_id=user.id, created_at=now, expires_at=expires))
    session.commit()
    return secret, expires


def resolve_token(session: Session, secret: str, kind: TokenKind) -> UserRecord | None:
    """The active user a live token belongs to, or None (unknown, expired, revoked, wrong kind)."""
    if not secret or len(secret) > 200:
        return None
    read_only_session(session)
    found = session.connection().execute(_TOKEN_LOOKUP, {"token_hash": token_hash(secret)}).first()
    user = None
    if found is not None:
        token_kind, revoked, expires_at, user_id, username, role, patient_id, active = found
        if token_kind == kind and not revoked and expires_at > utcnow() and active:
            user = UserRecord(user_id, username, cast(Role, role), patient_id, active)
    session.commit()  # end the read, so the caller's next unit of work opens its own transaction
    return user


# Columns, not the UserRow entity: on every authenticated request, ORM object loading was the
# larger part of the look-up's cost.
_tokens = TokenRow.__table__.c
_users = UserRow.__table__.c
_TOKEN_LOOKUP = (
    select(
        _tokens.kind,
        _tokens.revoked,
        _tokens.expires_at,
        _users.id,
        _users.username,
        _users.role,
        _users.patient_id,
        _users.active,
    )
    .join(UserRow.__table__, _users.id == _tokens.user_id)
    .where(_tokens.token_hash == bindparam("token_hash"))
)


def revoke_token(session: Session, secret: str) -> None:
    session.execute(update(TokenRow).where(TokenRow.token_hash == token_hash(secret)).values(revoked=True))
    session.commit()


def revoke_user_tokens(session: Session, user_id: int, *, keep: str | None = None) -> int:
    """Revoke every live token and browser session of a user (but `keep`, a secret); returns how many."""
    query = update(TokenRow).where(TokenRow.user_id == user_id, TokenRow.revoked.is_(False))
    if keep is not None:
        query = query.where(TokenRow.token_hash != token_hash(keep))
    result = session.execute(query.values(revoked=True))
    return int(result.rowcount)  # type: ignore[attr-defined]


def change_password(session: Session, actor: Actor, current: str, new: str, *, keep_token: str | None) -> None:
    """Change the actor's own password: the current one must be right and the new one pass the policy.

    Every other token and browser session of the account is revoked in the same transaction.
    """
    durable_session(session)
    row = session.get(UserRow, actor.user_id) if actor.user_id is not None else None
    ok = False
    try:
        ok = row is not None and _hasher.verify(row.password_hash, current)
    except (VerificationError, InvalidHashError):
        ok = False
    if row is None or not ok:
        session.rollback()
        audit_now(session, actor.username, "auth.password_change", None, "denied", "wrong current password")
        raise InvalidInputError("password not changed", [Problem("current_password", "is not right")])
    problems = password_problems(new, row.username, "new_password")
    if new == current:
        problems.append(Problem("new_password", "must differ from the current password"))
    if problems:
        session.rollback()
        raise InvalidInputError("password not changed", problems)
    row.password_hash = hash_password(new)
    revoked = revoke_user_tokens(session, row.id, keep=keep_token)
    audit(session, actor.username, "auth.password_change", row.patient_id, detail=f"{revoked} other tokens revoked")
    session.commit()


def set_user_active(session: Session, admin: Actor, user_id: int, active: bool) -> UserRecord:
    """Activate or deactivate an account (admin only). Deactivating revokes every token of the account."""
    if admin.role != "admin":
        audit_now(session, admin.username, "user.update", None, "denied", "role")
        raise ForbiddenError("only an admin may manage accounts")
    durable_session(session)
    row = session.get(UserRow, user_id)
    if row is None:
        session.rollback()
        raise NotFoundError(f"no user {user_id}")
    if row.id == admin.user_id and not active:
        session.rollback()
        raise InvalidInputError("invalid change", [Problem("active", "an admin cannot deactivate their own account")])
    row.active = active
    revoked = 0 if active else revoke_user_tokens(session, row.id)
    detail = f"{row.username} {'activated' if active else f'deactivated, {revoked} tokens revoked'}"
    audit(session, admin.username, "user.update", row.patient_id, detail=detail)
    session.commit()
    log.info("account %s %s by %s", row.username, "activated" if active else "deactivated", admin.username)
    return UserRecord.of(row)


def update_user(
    session: Session,
    admin: Actor,
    user_id: int,
    *,
    role: Role | None = None,
    patient_id: str | None = None,
    new_password: str | None = None,
) -> UserRecord:
    """Change an account's role, its linked patient (patient accounts) or reset its password (admin only).

    A role change, a new link or a reset revokes every token and session the account holds, so
    the change takes effect at once. The admin cannot change their own role.
    """
    if admin.role != "admin":
        audit_now(session, admin.username, "user.update", None, "denied", "role")
        raise ForbiddenError("only an admin may manage accounts")
    durable_session(session)
    row = session.get(UserRow, user_id)
    if row is None:
        session.rollback()
        raise NotFoundError(f"no user {user_id}")
    new_role = role or cast(Role, row.role)
    link = patient_id if new_role == "patient" else None
    if new_role == "patient" and link is None:
        link = row.patient_id
    problems: list[Problem] = []
    if new_role not in ROLES:
        problems.append(Problem("role", f"must be one of {list(ROLES)}"))
    if row.id == admin.user_id and new_role != row.role:
        problems.append(Problem("role", "an admin cannot change their own role"))
    if new_role == "patient" and not link:
        problems.append(Problem("patient_id", "is required for a patient account"))
    if link and (not PATIENT_ID_RE.match(link) or session.get(PatientRow, link) is None):
        problems.append(Problem("patient_id", "no such patient"))
    if new_password is not None:
        problems += password_problems(new_password, row.username, "new_password")
    if problems:
        session.rollback()
        raise InvalidInputError("invalid change", problems)
    changes = []
    if new_role != row.role:
        changes.append(f"role {row.role} -> {new_role}")
    if link != row.patient_id:
        changes.append("patient link changed")
    if new_password is not None:
        row.password_hash = hash_password(new_password)
        changes.append("password reset")
    row.role, row.patient_id = new_role, link
    revoked = revoke_user_tokens(session, row.id) if changes else 0
    audit(
        session,
        admin.username,
        "user.update",
        link,
        detail=f"{row.username}: {', '.join(changes) or 'no change'}; {revoked} tokens revoked",
    )
    session.commit()
    log.info("account %s changed by %s (%s)", row.username, admin.username, ", ".join(changes) or "no change")
    return UserRecord.of(row)
