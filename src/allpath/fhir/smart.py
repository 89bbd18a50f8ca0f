"""SMART on FHIR EHR launch, the client side: discovery, authorization code with PKCE, reading the record.

The OAuth 2.0 work (the S256 code challenge, the authorization URL, the token request) is
Authlib's (`authlib.integrations.httpx_client.OAuth2Client`); this module adds what the SMART App
Launch guide (HL7, STU 2.2) asks on top: the `iss` must be one the deployment trusts, the
endpoints come from `{iss}/.well-known/smart-configuration`, the authorization request carries
`aud` (the FHIR server) and `launch` (the EHR's launch context), and the token response names
the `patient` whose resources are then read.

Tokens and codes are never logged and never returned to the browser; errors name the request
field (`iss`, `state`, `code`, `error`) and say what was wrong, never echoing a token. Settings
come in (`SmartSettings`), never from the environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from allpath.errors import BadRequestError, NotAllowedError, Problem, UnavailableError
from allpath.settings import SmartSettings

# What the launch reads (the importer's types); one search per type, paged.
RECORD_TYPES = ("Condition", "Observation", "MedicationRequest", "MedicationAdministration", "Procedure")
_MAX_PAGES = 20


class SmartLaunchError(BadRequestError):
    """A launch or callback request that cannot be honoured (400); `.problems` name the field."""

    title = "SMART launch refused"

    def __init__(self, problems: list[Problem]):
        super().__init__(None, problems)


class SmartDeniedError(NotAllowedError):
    """The authorization server (or the user) refused the authorization (403)."""

    title = "authorization denied"


class SmartUpstreamError(UnavailableError):
    """The FHIR or authorization server did not answer as SMART says it should (the launch cannot go on)."""

    title = "the EHR's servers did not answer as expected"


@dataclass(frozen=True)
class Endpoints:
    authorization: str
    token: str


def normalise_iss(iss: str) -> str:
    return iss.strip().rstrip("/")


def check_iss(settings: SmartSettings, iss: str | None) -> str:
    """The FHIR base URL, if the deployment trusts it; anything else is refused before it is contacted."""
    if not iss or not iss.strip():
        raise SmartLaunchError([Problem("iss", "is required: the FHIR server that launched allpath")])
    wanted = normalise_iss(iss)
    if wanted not in {normalise_iss(i) for i in settings.issuers}:
        raise SmartLaunchError([Problem("iss", "is not a FHIR server this deployment trusts (ALLPATH_SMART_ISSUERS)")])
    return wanted


def _client(settings: SmartSettings) -> Any:
    from authlib.integrations.httpx_client import OAuth2Client

    return OAuth2Client(
        client_id=settings.client_id,
        redirect_uri=settings.redirect_uri,
        scope=settings.scope,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
        timeout=settings.timeout_seconds,
    )


def _get_json(http: Any, url: str, what: str, **kwargs: Any) -> Any:
    import httpx

    try:
        response = http.get(url, headers={"Accept": "application/fhir+json, application/json"}, **kwargs)
    except httpx.HTTPError as exc:
        raise SmartUpstreamError(f"{what}: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise SmartUpstreamError(f"{what}: HTTP {response.status_code}")
    try:
        return response.json()
    except ValueError:
        raise SmartUpstreamError(f"{what}: not JSON") from None


def _same_origin_or_https(url: Any, iss: str) -> bool:
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and parts.netloc == urlsplit(iss).netloc)


def discover(settings: SmartSettings, iss: str) -> Endpoints:
    """`{iss}/.well-known/smart-configuration`: the authorization and token endpoints (PKCE S256 required)."""
    import httpx

    with httpx.Client(timeout=settings.timeout_seconds) as http:
        config = _get_json(http, f"{iss}/.well-known/smart-configuration", "smart-configuration")
    if not isinstance(config, Mapping):
        raise SmartUpstreamError("smart-configuration: not a JSON object")
    endpoints = config.get("authorization_endpoint"), config.get("token_endpoint")
    # Plain http only on the FHIR server's own host (a local test server); anything else must be https.
    if not all(_same_origin_or_https(url, iss) for url in endpoints):
        raise SmartUpstreamError("smart-configuration: the endpoints must be https URLs")
    methods = config.get("code_challenge_methods_supported")
    if isinstance(methods, list) and "S256" not in methods:
        raise SmartUpstreamError("smart-configuration: the server does not support PKCE S256")
    return Endpoints(authorization=str(endpoints[0]), token=str(endpoints[1]))


def authorization_url(
    settings: SmartSettings, endpoints: Endpoints, iss: str, launch: str, state: str, verifier: str
) -> str:
    """Where to send the browser: the authorization endpoint with the PKCE challenge, `aud` and `launch`."""
    with _client(settings) as client:
        url, _ = client.create_authorization_url(
            endpoints.authorization, state=state, code_verifier=verifier, aud=iss, launch=launch
        )
    return str(url)


def exchange_code(settings: SmartSettings, endpoints: Endpoints, code: str, verifier: str) -> dict[str, Any]:
    """The token response for this code and verifier; it must name the patient in context."""
    import httpx
    from authlib.integrations.base_client import OAuthError
    from authlib.oauth2.rfc6749.errors import OAuth2Error

    with _client(settings) as client:
        try:
            token = client.fetch_token(endpoints.token, code=code, code_verifier=verifier)
        except (OAuthError, OAuth2Error) as exc:
            # The error code only (`invalid_grant`), never the description an upstream might fill with a token.
            raise SmartDeniedError(
                "the authorization server refused the code", [Problem("code", str(getattr(exc, "error", "refused")))]
            ) from None
        except httpx.HTTPError as exc:
            raise SmartUpstreamError(f"token endpoint: {type(exc).__name__}") from None
    if not isinstance(token.get("access_token"), str) or not isinstance(token.get("patient"), str):
        raise SmartUpstreamError("token endpoint: no access token or no patient in context")
    return dict(token)


def read_record(settings: SmartSettings, iss: str, access_token: str, patient_id: str) -> dict[str, Any]:
    """The patient and their record from the FHIR server, as one collection Bundle for the importer."""
    import httpx

    headers = {"Authorization": f"Bearer {access_token}"}
    entries: list[dict[str, Any]] = []
    with httpx.Client(timeout=settings.timeout_seconds, headers=headers) as http:
        patient = _get_json(http, f"{iss}/Patient/{patient_id}", "Patient read")
        if not isinstance(patient, Mapping) or patient.get("resourceType") != "Patient":
            raise SmartUpstreamError("Patient read: not a Patient resource")
        entries.append({"fullUrl": f"{iss}/Patient/{patient_id}", "resource": dict(patient)})
        for kind in RECORD_TYPES:
            url: str | None = f"{iss}/{kind}"
            params: dict[str, str] | None = {"patient": patient_id, "_count": "200"}
            for _ in range(_MAX_PAGES):
                if url is None:
                    break
                page = _get_json(http, url, f"{kind} search", params=params)
                if not isinstance(page, Mapping) or page.get("resourceType") != "Bundle":
                    raise SmartUpstreamError(f"{kind} search: not a Bundle")
                for entry in page.get("entry") or []:
                    resource = entry.get("resource") if isinstance(entry, Mapping) else None
                    # A searchset may include OperationOutcome or other `include`d entries: keep the type asked for.
                    if isinstance(resource, Mapping) and resource.get("resourceType") == kind:
                        entries.append(
                            {
                                "fullUrl": entry.get("fullUrl") or f"{iss}/{kind}/{resource.get('id')}",
                                "resource": dict(resource),
                            }
                        )
                url = next(
                    (
                        link.get("url")
                        for link in page.get("link") or []
                        if isinstance(link, Mapping) and link.get("relation") == "next"
                    ),
                    None,
                )
                if url is not None and not _same_origin_or_https(url, iss):
                    raise SmartUpstreamError(f"{kind} search: a next page off the FHIR server")
                params = None
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}
