"""Every `ALLPATH_*` setting, in one object read once at the edge (`allpath` CLI) and passed in.

The pure core never reads the environment (a test and an import-linter contract hold it to that):
`load_kb` takes the long-remission threshold as `parameters=`, `create_app` takes `settings=`.
`docs/configuration.md` lists every variable; a test keeps it and this module in step.

One parsing style for all of them: unset or blank means the default; anything else must parse,
or `SettingsError` names the variable and says what it must be (the CLI turns that into exit 2).
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from allpath.errors import ConfigurationError

DEFAULT_DATABASE_URL = "sqlite:///./allpath.db"
SQLITE_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class SettingsError(ConfigurationError):
    """A variable holds a value that cannot be used; the message starts with its name."""


# --- parsers: raw (stripped, non-empty) text -> value, or ValueError saying what it must be ------


def _text(raw: str) -> str:
    return raw


def _flag(raw: str) -> bool:
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ValueError("must be 1 or 0 (true/false, yes/no, on/off)")


def _flag_or_auto(raw: str) -> bool | None:
    return None if raw.lower() == "auto" else _flag(raw)


def _whole(minimum: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError("must be a whole number") from None
        if value < minimum:
            raise ValueError(f"must be at least {minimum}")
        return value

    return parse


def _number(*, above: float | None = None, at_least: float | None = None) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise ValueError("must be a number") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("must be a finite number")
        if above is not None and not value > above:
            raise ValueError(f"must be more than {above:g}")
        if at_least is not None and value < at_least:
            raise ValueError(f"must be at least {at_least:g}")
        return value

    return parse


def _choice(choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw.upper() not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return raw.upper()

    return parse


def _names(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def var(name: str, parse: Callable[[str], Any], reads: str, **default: Any) -> Any:
    """A dataclass field filled from the variable `name`; `reads` is what uses it (for the docs)."""
    return field(metadata={"env": name, "parse": parse, "reads": reads}, **default)


_S = TypeVar("_S")


def _read_section(cls: type[_S], environ: Mapping[str, str]) -> _S:
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        name = f.metadata["env"]
        raw = environ.get(name, "").strip()
        if not raw:
            continue  # the field's default
        try:
            values[f.name] = f.metadata["parse"](raw)
        except ValueError as exc:
            # The secret key never fails to parse, so no value echoed here is a secret.
            raise SettingsError(f"{name}: {exc}, got {raw!r}") from None
    return cls(**values)


class _Section:
    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Any:
        """This section alone, from `environ` (default: the process environment)."""
        return _read_section(cls, os.environ if environ is None else environ)


# --- the sections -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatabaseSettings(_Section):
    url: str = var("ALLPATH_DATABASE_URL", _text, "store (`AppContext`), `allpath db`", default=DEFAULT_DATABASE_URL)
    # SQLite `synchronous` for commits that change patient data or accounts.
    sqlite_synchronous: str = var(
        "ALLPATH_SQLITE_SYNCHRONOUS", _choice(SQLITE_SYNCHRONOUS), "store (`make_engine`)", default="FULL"
    )
    migrate_on_start: bool = var("ALLPATH_MIGRATE_ON_START", _flag, "api (`create_app`)", default=True)


@dataclass(frozen=True)
class AuthSettings(_Section):
    # Signs CSRF tokens. Unset: a random key per process (sessions live in the database, so
    # only CSRF tokens of open forms are lost on restart).
    secret_key: str = var(
        "ALLPATH_SECRET_KEY",
        _text,
        "http (`csrf`)",
        default_factory=lambda: secrets.token_urlsafe(32),
        repr=False,
    )
    # None = decide per request: Secure cookies whenever the request came over https.
    cookie_secure: bool | None = var("ALLPATH_COOKIE_SECURE", _flag_or_auto, "http (`cookies`)", default=None)
    # Bearer tokens are short-lived (log in again when one expires); browser sessions last a working day.
    token_ttl_seconds: int = var("ALLPATH_TOKEN_TTL_SECONDS", _whole(1), "api (`/auth/token`)", default=30 * 60)
    session_ttl_seconds: int = var("ALLPATH_SESSION_TTL_SECONDS", _whole(1), "http (`sessions`)", default=8 * 3600)
    # Log-in throttling (docs/security.md): after this many failures in a row within the window,
    # an account or a client address is locked, for lock_seconds doubling with each further
    # failure up to lock_max_seconds.
    login_max_failures: int = var("ALLPATH_LOGIN_MAX_FAILURES", _whole(1), "store (`throttle`)", default=5)
    login_address_max_failures: int = var(
        "ALLPATH_LOGIN_ADDRESS_MAX_FAILURES", _whole(1), "store (`throttle`)", default=20
    )
    login_lock_seconds: int = var("ALLPATH_LOGIN_LOCK_SECONDS", _whole(1), "store (`throttle`)", default=30)
    login_lock_max_seconds: int = var("ALLPATH_LOGIN_LOCK_MAX_SECONDS", _whole(1), "store (`throttle`)", default=900)
    login_window_seconds: int = var("ALLPATH_LOGIN_WINDOW_SECONDS", _whole(1), "store (`throttle`)", default=900)
    # Test suites only: argon2 at its lowest cost, so that thousands of test log-ins take
    # microseconds each instead of ~0.2 s of CPU. Never in a deployment (a stolen database's
    # passwords would fall to guessing that much faster).
    insecure_test_password_hash: bool = var(
        "ALLPATH_INSECURE_TEST_PASSWORD_HASH", _flag, "api (`create_app`), store (`auth`)", default=False
    )


@dataclass(frozen=True)
class HttpSettings(_Section):
    # A body over max_body_bytes gets 413, a head (path and headers) over max_header_bytes 431.
    max_body_bytes: int = var(
        "ALLPATH_MAX_BODY_BYTES", _whole(1024), "api (`RequestLimitsMiddleware`), the CDS-only app", default=1 << 20
    )
    max_header_bytes: int = var(
        "ALLPATH_MAX_HEADER_BYTES",
        _whole(1024),
        "api (`RequestLimitsMiddleware`), `allpath serve` (uvicorn's parser)",
        default=32 * 1024,
    )


@dataclass(frozen=True)
class CdsSection(_Section):
    """What the deployment says about CDS Hooks; `api.cds.CdsSettings.from_section` checks it is
    complete and loads the key set (the full service starts without CDS Hooks when it is not)."""

    jwks: str | None = var("ALLPATH_CDS_JWKS", _text, "api/cds (`CdsSettings`)", default=None)
    allowed_issuers: tuple[str, ...] = var("ALLPATH_CDS_ALLOWED_ISSUERS", _names, "api/cds (`auth`)", default=())
    service_url: str | None = var("ALLPATH_CDS_SERVICE_URL", _text, "api/cds (`auth`, card links)", default=None)
    insecure_dev: bool = var("ALLPATH_CDS_INSECURE_DEV", _flag, "api/cds (`router`), `allpath serve`", default=False)
    feedback_db: str | None = var("ALLPATH_CDS_FEEDBACK_DB", _text, "api/cds (`router`)", default=None)
    replay_db: str | None = var("ALLPATH_CDS_REPLAY_DB", _text, "api/cds (`router`)", default=None)
    fhir_timeout_seconds: float = var(
        "ALLPATH_CDS_FHIR_TIMEOUT", _number(above=0), "api/cds (FHIR client)", default=5.0
    )


@dataclass(frozen=True)
class SmartSettings(_Section):
    """The SMART on FHIR EHR launch (docs/smart.md): off until a client id, issuers and the redirect URI are set."""

    client_id: str | None = var("ALLPATH_SMART_CLIENT_ID", _text, "web (`smart`)", default=None)
    # Only these FHIR servers may launch allpath; an `iss` not listed is refused before any request to it.
    issuers: tuple[str, ...] = var("ALLPATH_SMART_ISSUERS", _names, "web (`smart`)", default=())
    redirect_uri: str | None = var("ALLPATH_SMART_REDIRECT_URI", _text, "web (`smart`)", default=None)
    scope: str = var(
        "ALLPATH_SMART_SCOPE",
        _text,
        "web (`smart`)",
        default="launch openid fhirUser patient/Patient.read patient/Condition.read patient/Observation.read "
        "patient/MedicationRequest.read patient/MedicationAdministration.read patient/Procedure.read",
    )
    timeout_seconds: float = var("ALLPATH_SMART_TIMEOUT", _number(above=0), "fhir (`smart`)", default=10.0)
    # How long a launch may wait for the authorization server, and how long its plan stays open.
    launch_ttl_seconds: int = var("ALLPATH_SMART_LAUNCH_TTL_SECONDS", _whole(1), "web (`smart`)", default=600)

    def enabled(self) -> bool:
        return bool(self.client_id and self.issuers and self.redirect_uri)


@dataclass(frozen=True)
class KnowledgeSettings(_Section):
    # Unset: the pack's own `long_remission_months`. The CLI's --long-remission-months wins over it.
    long_remission_months: float | None = var(
        "ALLPATH_LONG_REMISSION_MONTHS",
        _number(at_least=0),
        "`load_kb(parameters=)` via the CLI, `create_app`, the cohort CLI",
        default=None,
    )

    def parameters(self) -> dict[str, float] | None:
        """The `parameters=` for `load_kb`: None when nothing overrides the packs."""
        if self.long_remission_months is None:
            return None
        return {"long_remission_months": self.long_remission_months}


@dataclass(frozen=True)
class SiteSettings(_Section):
    # Printed on every page of the clinician's PDF (how to reach the care team); never a patient's data.
    care_team_contact: str | None = var("ALLPATH_CARE_TEAM_CONTACT", _text, "web (clinician PDF)", default=None)


@dataclass(frozen=True)
class Settings:
    """Every setting, by section. `Settings()` is the embedded defaults; `Settings.from_env()` the environment."""

    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    cds: CdsSection = field(default_factory=CdsSection)
    knowledge: KnowledgeSettings = field(default_factory=KnowledgeSettings)
    smart: SmartSettings = field(default_factory=SmartSettings)
    site: SiteSettings = field(default_factory=SiteSettings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(**{f.name: _read_section(_section_type(f.name), env) for f in dataclasses.fields(cls)})

    def with_database_url(self, url: str) -> Settings:
        return dataclasses.replace(self, database=dataclasses.replace(self.database, url=url))


def _section_type(name: str) -> type[Any]:
    return {f.name: f.default_factory for f in dataclasses.fields(Settings)}[name]  # type: ignore[return-value]


@dataclass(frozen=True)
class Variable:
    name: str
    section: str
    field: str
    reads: str


def variables() -> Iterator[Variable]:
    """Every variable the settings know, in section order (what `docs/configuration.md` must list)."""
    for section in dataclasses.fields(Settings):
        for f in dataclasses.fields(_section_type(section.name)):
            yield Variable(f.metadata["env"], section.name, f.name, f.metadata["reads"])
