"""The CDS Hooks service's configuration, checked: the variables are read by `allpath.settings`
(`CdsSection`, listed in docs/configuration.md); here the section must be complete unless
`ALLPATH_CDS_INSECURE_DEV` is on, and the JWK Set is loaded."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from allpath.settings import CdsSection, SettingsError

ENV_JWKS = "ALLPATH_CDS_JWKS"
ENV_ISSUERS = "ALLPATH_CDS_ALLOWED_ISSUERS"
ENV_SERVICE_URL = "ALLPATH_CDS_SERVICE_URL"
ENV_INSECURE_DEV = "ALLPATH_CDS_INSECURE_DEV"
ENV_FEEDBACK_DB = "ALLPATH_CDS_FEEDBACK_DB"
ENV_REPLAY_DB = "ALLPATH_CDS_REPLAY_DB"
ENV_FHIR_TIMEOUT = "ALLPATH_CDS_FHIR_TIMEOUT"

# The spec allows a little clock skew; the issue caps it at 60 s.
MAX_LEEWAY_SECONDS = 60


class CdsConfigError(SettingsError):
    """The service cannot start safely with this configuration; the message names the variable."""


@dataclass(frozen=True)
class CdsSettings:
    """Everything the CDS router needs to know about its deployment."""

    jwks: Mapping[str, Any] | None = None
    allowed_issuers: tuple[str, ...] = ()
    service_url: str | None = None
    insecure_dev: bool = False
    feedback_db: str | None = None
    replay_db: str | None = None
    fhir_timeout_seconds: float = 5.0
    leeway_seconds: int = MAX_LEEWAY_SECONDS

    def __post_init__(self) -> None:
        if self.service_url is not None:
            object.__setattr__(self, "service_url", normalise_base_url(self.service_url))
        if not 0 <= self.leeway_seconds <= MAX_LEEWAY_SECONDS:
            raise CdsConfigError(f"leeway_seconds must be between 0 and {MAX_LEEWAY_SECONDS}")
        if self.insecure_dev:
            return
        missing = [
            name
            for name, value in (
                (ENV_JWKS, self.jwks),
                (ENV_ISSUERS, self.allowed_issuers),
                (ENV_SERVICE_URL, self.service_url),
            )
            if not value
        ]
        if missing:
            raise CdsConfigError(
                f"authentication is on but not configured; set {', '.join(missing)} "
                f"(or {ENV_INSECURE_DEV}=1, for local development only)"
            )

    @classmethod
    def from_section(cls, section: CdsSection) -> CdsSettings:
        return cls(
            jwks=load_jwks(section.jwks) if section.jwks else None,
            allowed_issuers=section.allowed_issuers,
            service_url=section.service_url,
            insecure_dev=section.insecure_dev,
            feedback_db=section.feedback_db,
            replay_db=section.replay_db,
            fhir_timeout_seconds=section.fhir_timeout_seconds,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> CdsSettings:
        """From a mapping of `ALLPATH_CDS_*` variables (the process environment is read only at the edge)."""
        try:
            section = CdsSection.from_env(environ)
        except SettingsError as exc:
            raise CdsConfigError(str(exc)) from None
        return cls.from_section(section)


def normalise_base_url(url: str) -> str:
    """`https://cds.example.org/` and `https://cds.example.org/cds-services` both mean the same base."""
    base = url.strip().rstrip("/")
    if base.endswith("/cds-services"):
        base = base[: -len("/cds-services")]
    if not base.startswith(("https://", "http://")):
        raise CdsConfigError(f"{ENV_SERVICE_URL}: must be an absolute http(s) URL, got {url!r}")
    return base


def load_jwks(value: str) -> dict[str, Any]:
    """A JWK Set from inline JSON (starts with `{`) or from a file path."""
    text = value
    if not value.lstrip().startswith("{"):
        try:
            text = Path(value).read_text(encoding="utf-8")
        except OSError as exc:
            raise CdsConfigError(f"{ENV_JWKS}: cannot read {value}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CdsConfigError(f"{ENV_JWKS}: malformed JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list) or not data["keys"]:
        raise CdsConfigError(f"{ENV_JWKS}: must be a JWK Set, an object with a non-empty 'keys' array")
    return data
