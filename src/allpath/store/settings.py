"""Service settings, read from the environment (secrets never come from files or defaults in code)."""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass, field

DEFAULT_DATABASE_URL = "sqlite:///./allpath.db"
log = logging.getLogger("allpath.store")


def _bool_env(name: str, default: bool | None) -> bool | None:
    raw = os.environ.get(name)
    if raw is None or raw.strip().lower() in ("", "auto"):
        return default
    return raw.strip().lower() in ("1", "true", "yes", "on")


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    try:
        return int(raw) if raw else default
    except ValueError:
        raise ValueError(f"{name}: must be a whole number, got {raw!r}") from None


@dataclass(frozen=True)
class Settings:
    """What the service needs to run. `Settings.from_env()` reads `ALLPATH_*` variables."""

    database_url: str = DEFAULT_DATABASE_URL
    # Signs CSRF tokens. Unset: a random key per process (sessions live in the database, so
    # only CSRF tokens of open forms are lost on restart).
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    # None = decide per request: Secure cookies whenever the request came over https.
    cookie_secure: bool | None = None
    # Bearer tokens are short-lived (log in again when one expires); browser sessions last a working day.
    token_ttl_seconds: int = 30 * 60
    session_ttl_seconds: int = 8 * 3600
    sqlite_synchronous: str = "FULL"
    migrate_on_start: bool = True
    # Requests: a body over max_body_bytes gets 413, a head (path and headers) over max_header_bytes 431.
    max_body_bytes: int = 1 << 20
    max_header_bytes: int = 32 * 1024
    # Log-in throttling (docs/security.md): after this many failures in a row within the window,
    # an account or a client address is locked, for lock_seconds doubling with each further
    # failure up to lock_max_seconds.
    login_max_failures: int = 5
    login_address_max_failures: int = 20
    login_lock_seconds: int = 30
    login_lock_max_seconds: int = 900
    login_window_seconds: int = 900

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        secret = os.environ.get("ALLPATH_SECRET_KEY")
        values: dict[str, object] = {
            "database_url": os.environ.get("ALLPATH_DATABASE_URL") or DEFAULT_DATABASE_URL,
            "cookie_secure": _bool_env("ALLPATH_COOKIE_SECURE", None),
            "token_ttl_seconds": _int_env("ALLPATH_TOKEN_TTL_SECONDS", 30 * 60),
            "session_ttl_seconds": _int_env("ALLPATH_SESSION_TTL_SECONDS", 8 * 3600),
            "sqlite_synchronous": (os.environ.get("ALLPATH_SQLITE_SYNCHRONOUS") or "FULL").upper(),
            "migrate_on_start": bool(_bool_env("ALLPATH_MIGRATE_ON_START", True)),
            "max_body_bytes": _int_env("ALLPATH_MAX_BODY_BYTES", 1 << 20),
            "max_header_bytes": _int_env("ALLPATH_MAX_HEADER_BYTES", 32 * 1024),
            "login_max_failures": _int_env("ALLPATH_LOGIN_MAX_FAILURES", 5),
            "login_address_max_failures": _int_env("ALLPATH_LOGIN_ADDRESS_MAX_FAILURES", 20),
            "login_lock_seconds": _int_env("ALLPATH_LOGIN_LOCK_SECONDS", 30),
            "login_lock_max_seconds": _int_env("ALLPATH_LOGIN_LOCK_MAX_SECONDS", 900),
            "login_window_seconds": _int_env("ALLPATH_LOGIN_WINDOW_SECONDS", 900),
        }
        if secret:
            values["secret_key"] = secret
        values.update({k: v for k, v in overrides.items() if v is not None})
        for name in ("login_max_failures", "login_address_max_failures", "login_lock_seconds", "login_window_seconds"):
            if int(values[name]) < 1:  # type: ignore[call-overload]
                raise ValueError(f"ALLPATH_{name.upper()}: must be at least 1")
        for name in ("max_body_bytes", "max_header_bytes"):
            if int(values[name]) < 1024:  # type: ignore[call-overload]
                raise ValueError(f"ALLPATH_{name.upper()}: must be at least 1024")
        if values["sqlite_synchronous"] not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError("ALLPATH_SQLITE_SYNCHRONOUS: must be one of OFF, NORMAL, FULL, EXTRA")
        return cls(**values)  # type: ignore[arg-type]
