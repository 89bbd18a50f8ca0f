"""Replays the ten attacks of issue #15 against a real `allpath serve` on loopback; prints held/BROKEN.

Starts the server on a free 127.0.0.1 port over a fresh SQLite database (FAKE accounts made here),
with CDS Hooks on and a client key generated for the run, then sends each attack once. Bounded:
about 100 requests in all, every one with a timeout; nothing but 127.0.0.1 is contacted.

    python benchmarks/attack_replay.py          # exit 0 when 10/10 held, 1 otherwise

`tests/service/test_attack_replay.py` runs it in CI.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from allpath.testing import free_port, running_server  # noqa: E402

ISSUER = "https://ehr.attack.test"
KID = "attack-rsa-1"
PASSWORD = "attack-replay-password-7"
TIMEOUT = 15.0


@dataclass
class Target:
    base: str
    port: int
    key: Any
    clinician: dict[str, str] = field(default_factory=dict)
    admin: dict[str, str] = field(default_factory=dict)
    spare: dict[str, str] = field(default_factory=dict)
    doomed: dict[str, str] = field(default_factory=dict)
    doomed_id: int = 0
    bearer_lifetime: int = 0
    browser: httpx.Client | None = None
    browser_csrf: str = ""
    patient: str = ""


@dataclass
class Outcome:
    item: int
    attack: str
    held: bool
    evidence: str


def _cds_token(target: Target, *, lifetime: int = 300, headers: dict[str, Any] | None = None, **claims: Any) -> str:
    now = int(time.time())
    payload = {
        "iss": ISSUER,
        "aud": f"{target.base}/cds-services",
        "iat": now,
        "exp": now + lifetime,
        "jti": str(uuid.uuid4()),
        **claims,
    }
    return jwt.encode(payload, target.key, algorithm="RS384", headers={"kid": KID, "typ": "JWT", **(headers or {})})


def _b64(data: dict[str, Any]) -> str:
    import base64

    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _raw_oversized_header(port: int, total: int) -> tuple[bool, str]:
    """Send a request head with a `total`-byte header; held if the server answers 431 or stops reading."""
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(b"GET /cds-services HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Junk: ")
        try:
            while sent < total:
                sock.sendall(b"x" * 65536)
                sent += 65536
            sock.sendall(b"\r\n\r\n")
        except OSError:
            pass
        try:
            reply = sock.recv(200)
        except OSError:
            reply = b""
    if reply.startswith(b"HTTP/1.1 431"):
        return True, f"431 after the client pushed {sent // 1024} KiB into the socket"
    return False, f"reply {reply[:40]!r} after {sent // 1024} KiB"


# --- the ten attacks ------------------------------------------------------------------------------


def guess_passwords(t: Target) -> tuple[bool, str]:
    with httpx.Client(base_url=t.base, timeout=TIMEOUT) as client:
        codes = [
            client.post("/auth/token", data={"username": "attack-victim", "password": f"guess-{i:06d}"}).status_code
            for i in range(30)
        ]
        right = client.post("/auth/token", data={"username": "attack-victim", "password": PASSWORD})
        page = client.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        form = client.post(
            "/login",
            data={"username": "attack-victim", "password": PASSWORD, "csrf_token": csrf.group(1) if csrf else ""},
        )
    held = right.status_code == 429 and "retry-after" in right.headers and form.status_code == 429
    first_429 = codes.index(429) + 1 if 429 in codes else None
    return held, (
        f"first 429 at guess {first_429}; right password then {right.status_code} "
        f"(Retry-After {right.headers.get('retry-after')}); /login {form.status_code}"
    )


def frame_the_forms(t: Target) -> tuple[bool, str]:
    assert t.browser is not None
    response = t.browser.get("/clinic/patients/new")
    csp = response.headers.get("content-security-policy", "")
    held = (
        "frame-ancestors 'none'" in csp
        and response.headers.get("x-frame-options") == "DENY"
        and response.headers.get("x-content-type-options") == "nosniff"
        and "referrer-policy" in response.headers
    )
    return held, f"CSP {csp!r}; X-Frame-Options {response.headers.get('x-frame-options')}"


def crit_header(t: Target) -> tuple[bool, str]:
    header = _b64({"alg": "RS384", "typ": "JWT", "kid": KID, "crit": ["urn:x-attack"], "urn:x-attack": 1})
    crafted = f"{header}.{_b64({'iss': ISSUER})}.c2ln"
    response = httpx.get(f"{t.base}/cds-services", headers={"Authorization": f"Bearer {crafted}"}, timeout=TIMEOUT)
    return response.status_code == 401, f"GET /cds-services with an unknown crit: {response.status_code}"


def year_ten_thousand(t: Target) -> tuple[bool, str]:
    assert t.browser is not None
    api = httpx.get(
        f"{t.base}/patients/{t.patient}/plan", params={"as_of": "9999-12-30"}, headers=t.clinician, timeout=TIMEOUT
    )
    page = t.browser.get(f"/clinic/patients/{t.patient}", params={"as_of": "9999-12-31"})
    return api.status_code == 422 and page.status_code == 422, f"API {api.status_code}, page {page.status_code}"


def weak_passwords(t: Target) -> tuple[bool, str]:
    codes = []
    for username, password in (("attack-weak-1", "aaaaaaaaaa"), ("attack-weak-2", "attack-weak-2")):
        body = {"username": username, "password": password, "role": "clinician"}
        codes.append(httpx.post(f"{t.base}/users", json=body, headers=t.admin, timeout=TIMEOUT).status_code)
    return codes == [422, 422], f"'aaaaaaaaaa': {codes[0]}, password = user name: {codes[1]}"


def immortal_tokens(t: Target) -> tuple[bool, str]:
    with httpx.Client(base_url=t.base, timeout=TIMEOUT) as client:
        logout = client.post("/auth/session/logout", headers=t.spare)
        after_logout = client.get("/auth/me", headers=t.spare).status_code
        deactivate = client.patch(f"/users/{t.doomed_id}", json={"active": False}, headers=t.admin)
        after_deactivate = client.get("/auth/me", headers=t.doomed).status_code
    lifetime = t.bearer_lifetime
    held = logout.status_code == 204 and after_logout == 401 and after_deactivate == 401 and lifetime <= 3600
    return held, (
        f"lifetime {lifetime} s; after logout {after_logout}; deactivate {deactivate.status_code}, "
        f"then {after_deactivate}"
    )


def cds_token_abuse(t: Target) -> tuple[bool, str]:
    ten_years = httpx.get(
        f"{t.base}/cds-services",
        headers={"Authorization": f"Bearer {_cds_token(t, lifetime=10 * 365 * 86400)}"},
        timeout=TIMEOUT,
    ).status_code
    try:
        huge = httpx.get(
            f"{t.base}/cds-services",
            headers={"Authorization": f"Bearer {_cds_token(t, padding='x' * (10 * 1024 * 1024))}"},
            timeout=TIMEOUT,
        ).status_code
    except httpx.HTTPError as exc:
        huge = type(exc).__name__  # the server closed the connection without reading on
    junk_held, junk = _raw_oversized_header(t.port, 8 * 1024 * 1024)
    held = ten_years == 401 and huge in (401, 431, "RemoteProtocolError", "WriteError", "ReadError") and junk_held
    return held, f"10-year token {ten_years}; 10 MB signed token {huge}; 8 MB junk header: {junk}"


def huge_json(t: Target) -> tuple[bool, str]:
    body = b'{"age_years": 10, "padding": "' + b"x" * (20 * 1024 * 1024) + b'"}'
    try:
        response = httpx.post(
            f"{t.base}/recommend", content=body, headers={"content-type": "application/json"}, timeout=TIMEOUT
        )
        code: int | str = response.status_code
    except httpx.HTTPError as exc:
        code = type(exc).__name__
    return code in (413, "WriteError", "RemoteProtocolError"), f"anonymous 20 MB POST /recommend: {code}"


def csrf_bypass(t: Target) -> tuple[bool, str]:
    assert t.browser is not None
    response = t.browser.post(
        "/clinic/patients/new",
        data={"birth_date": "2015-06-01"},
        headers={"Authorization": "Bearer junk"},
        follow_redirects=False,
    )
    return response.status_code == 403, f"form post with the cookie and a junk Bearer header: {response.status_code}"


def spoofed_names(t: Target) -> tuple[bool, str]:
    codes = [
        httpx.post(
            f"{t.base}/patients",
            json={"birth_date": "2015-06-01", "display_name": f"Ann{c}Smith (fake)"},
            headers=t.clinician,
            timeout=TIMEOUT,
        ).status_code
        for c in ("\u202e", "\u200b", "\ufeff", "\u2028")
    ]
    return codes == [422] * 4, f"U+202E, U+200B, U+FEFF, U+2028: {codes}"


# The password guessing runs last: it locks the loopback address out of further log-ins.
ATTACKS: list[tuple[int, str, Callable[[Target], tuple[bool, str]]]] = [
    (2, "clickjacking the clinician forms", frame_the_forms),
    (3, "unknown crit header on /cds-services", crit_header),
    (4, "as_of in year 9999", year_ten_thousand),
    (5, "weak passwords", weak_passwords),
    (6, "tokens that cannot be revoked", immortal_tokens),
    (7, "CDS tokens: 10-year, 10 MB, 8 MB junk header", cds_token_abuse),
    (8, "20 MB JSON body", huge_json),
    (9, "CSRF skipped by a junk Bearer header", csrf_bypass),
    (10, "invisible and direction characters in names", spoofed_names),
    (1, "password guessing", guess_passwords),
]


# --- setting the stage ----------------------------------------------------------------------------


def _prepare_database(url: str) -> None:
    from allpath.store import make_engine, upgrade
    from allpath.store.auth import create_user
    from allpath.store.db import make_sessionmaker

    engine = make_engine(url)
    upgrade(engine)
    with make_sessionmaker(engine)() as session:
        for name, role in (
            ("attack-clinician", "clinician"),
            ("attack-admin", "admin"),
            ("attack-spare", "clinician"),
            ("attack-doomed", "clinician"),
            ("attack-victim", "clinician"),
        ):
            create_user(session, name, PASSWORD, role)  # type: ignore[arg-type]
    engine.dispose()


def _login(base: str, username: str) -> tuple[dict[str, str], int]:
    response = httpx.post(f"{base}/auth/token", data={"username": username, "password": PASSWORD}, timeout=TIMEOUT)
    response.raise_for_status()
    body = response.json()
    expires = dt.datetime.fromisoformat(body["expires_at"])
    lifetime = int((expires - dt.datetime.now(dt.UTC)).total_seconds()) + 1
    return {"Authorization": f"Bearer {body['access_token']}"}, lifetime


def _stage(target: Target) -> None:
    base = target.base
    target.clinician, target.bearer_lifetime = _login(base, "attack-clinician")
    target.admin, _ = _login(base, "attack-admin")
    target.spare, _ = _login(base, "attack-spare")
    target.doomed, _ = _login(base, "attack-doomed")
    target.doomed_id = httpx.get(f"{base}/auth/me", headers=target.doomed, timeout=TIMEOUT).json()["id"]
    clinician = target.clinician
    made = httpx.post(f"{base}/patients", json={"birth_date": "2015-06-01"}, headers=clinician, timeout=TIMEOUT)
    target.patient = made.json()["id"]
    httpx.post(
        f"{base}/patients/{target.patient}/events",
        json={"event": {"type": "diagnosed", "date": "2025-01-10", "lineage": "B"}},
        headers=clinician,
        timeout=TIMEOUT,
    ).raise_for_status()
    browser = httpx.Client(base_url=base, timeout=TIMEOUT)
    csrf = browser.get("/auth/csrf").json()["csrf_token"]
    browser.post(
        "/auth/session", data={"username": "attack-clinician", "password": PASSWORD, "csrf_token": csrf}
    ).raise_for_status()
    target.browser = browser
    target.browser_csrf = browser.get("/auth/csrf").json()["csrf_token"]


def run(log_path: Path | None = None) -> list[Outcome]:
    """Start a server, replay every attack once, stop it; the outcomes in issue order."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": KID, "alg": "RS384", "use": "sig"})
    with tempfile.TemporaryDirectory(prefix="allpath-attack-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'attack.db'}"
        _prepare_database(url)
        port = free_port()
        env = {
            **os.environ,
            "ALLPATH_DATABASE_URL": url,
            "ALLPATH_CDS_JWKS": json.dumps({"keys": [jwk]}),
            "ALLPATH_CDS_ALLOWED_ISSUERS": ISSUER,
            "ALLPATH_CDS_SERVICE_URL": f"http://127.0.0.1:{port}",
        }
        with running_server(env=env, port=port, log_path=log_path) as server:
            target = Target(server.base_url, server.port, key)
            _stage(target)
            outcomes = []
            try:
                for item, name, attack in ATTACKS:
                    try:
                        held, evidence = attack(target)
                    except Exception as exc:  # an attack that crashes the script counts as not held
                        held, evidence = False, f"{type(exc).__name__}: {exc}"[:300]
                    outcomes.append(Outcome(item, name, held, evidence))
            finally:
                if target.browser is not None:
                    target.browser.close()
    return sorted(outcomes, key=lambda o: o.item)


def report(outcomes: list[Outcome]) -> str:
    lines = [f"{o.item:>2}. {'held  ' if o.held else 'BROKEN'} {o.attack}: {o.evidence}" for o in outcomes]
    lines.append(f"{sum(o.held for o in outcomes)}/{len(outcomes)} held")
    return "\n".join(lines)


def main() -> int:
    outcomes = run()
    print(report(outcomes))
    return 0 if all(o.held for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
