"""A small EHR for the SMART launch tests: a FHIR server and an OAuth 2.0 authorization server in one app.

Written for these tests (not a copy of any server). It does what the SMART App Launch guide asks
of an EHR, strictly enough to catch a client that skips a step: discovery at
`/fhir/.well-known/smart-configuration`; `/auth/authorize` checks the client, the redirect URI,
`aud` (the FHIR base), the `launch` it issued and an S256 code challenge, then "approves" at once
(or denies, for the launch `deny`); `/auth/token` checks the code is fresh, the redirect URI and
the PKCE verifier, and answers with the patient in context; the FHIR reads need that token.
It runs in a thread on a free loopback port (uvicorn), started by the test module.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse

CLIENT_ID = "allpath-test-client"


@dataclass
class Ehr:
    base: str = ""
    redirect_uri: str = ""
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # patient id -> resources
    launches: dict[str, str] = field(default_factory=dict)  # launch id -> patient id
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # access token -> patient id
    seen: list[str] = field(default_factory=list)  # "METHOD path" of every request, for the assertions
    fhir_base: str = ""

    def new_launch(self, patient_id: str) -> str:
        launch = secrets.token_urlsafe(8)
        self.launches[launch] = patient_id
        return launch


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def create_ehr_app(ehr: Ehr) -> FastAPI:
    app = FastAPI()

    @app.middleware("http")
    async def record(request: Request, call_next: Any) -> Any:
        ehr.seen.append(f"{request.method} {request.url.path}")
        return await call_next(request)

    @app.get("/fhir/.well-known/smart-configuration")
    def configuration() -> dict[str, Any]:
        return {
            "authorization_endpoint": f"{ehr.base}/auth/authorize",
            "token_endpoint": f"{ehr.base}/auth/token",
            "capabilities": ["launch-ehr", "client-public", "context-ehr-patient"],
            "code_challenge_methods_supported": ["S256"],
        }

    @app.get("/auth/authorize")
    def authorize(request: Request) -> Any:
        q = request.query_params
        problems = []
        if q.get("response_type") != "code":
            problems.append("response_type")
        if q.get("client_id") != CLIENT_ID:
            problems.append("client_id")
        if q.get("redirect_uri") != ehr.redirect_uri:
            problems.append("redirect_uri")
        if q.get("aud") != ehr.fhir_base:
            problems.append("aud")
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            problems.append("pkce")
        launch = q.get("launch", "")
        if launch != "deny" and launch not in ehr.launches:
            problems.append("launch")
        if problems:
            return JSONResponse({"error": "invalid_request", "fields": problems}, status_code=400)
        state = q.get("state", "")
        if launch == "deny":
            return RedirectResponse(f"{ehr.redirect_uri}?{urlencode({'error': 'access_denied', 'state': state})}", 302)
        code = secrets.token_urlsafe(16)
        ehr.codes[code] = {
            "patient": ehr.launches[launch],
            "challenge": q["code_challenge"],
            "redirect_uri": q["redirect_uri"],
        }
        return RedirectResponse(f"{ehr.redirect_uri}?{urlencode({'code': code, 'state': state})}", 302)

    @app.post("/auth/token")
    def token(
        grant_type: str = Form(...),
        code: str = Form(...),
        redirect_uri: str = Form(...),
        client_id: str = Form(...),
        code_verifier: str = Form(""),
    ) -> Any:
        issued = ehr.codes.pop(code, None)  # a code is good once
        if (
            grant_type != "authorization_code"
            or issued is None
            or client_id != CLIENT_ID
            or redirect_uri != issued["redirect_uri"]
            or _challenge(code_verifier) != issued["challenge"]
        ):
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        access = secrets.token_urlsafe(24)
        ehr.tokens[access] = issued["patient"]
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "launch patient/*.read",
            "patient": issued["patient"],
        }

    def _patient_of(request: Request) -> str | None:
        auth = request.headers.get("authorization", "")
        return ehr.tokens.get(auth.removeprefix("Bearer ")) if auth.startswith("Bearer ") else None

    @app.get("/fhir/Patient/{pid}")
    def read_patient(pid: str, request: Request) -> Any:
        if _patient_of(request) != pid:
            return JSONResponse({"resourceType": "OperationOutcome", "issue": []}, status_code=401)
        patient = next(r for r in ehr.records[pid] if r["resourceType"] == "Patient")
        return JSONResponse(patient, media_type="application/fhir+json")

    @app.get("/fhir/{kind}")
    def search(kind: str, request: Request, patient: str = "") -> Any:
        if _patient_of(request) != patient:
            return JSONResponse({"resourceType": "OperationOutcome", "issue": []}, status_code=401)
        found = [r for r in ehr.records.get(patient, []) if r["resourceType"] == kind]
        return JSONResponse(
            {
                "resourceType": "Bundle",
                "type": "searchset",
                "total": len(found),
                "entry": [{"fullUrl": f"{ehr.fhir_base}/{kind}/{r.get('id')}", "resource": r} for r in found],
            },
            media_type="application/fhir+json",
        )

    return app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_ehr(redirect_uri: str) -> Iterator[Ehr]:
    import uvicorn

    port = _free_port()
    ehr = Ehr(base=f"http://127.0.0.1:{port}", redirect_uri=redirect_uri)
    ehr.fhir_base = f"{ehr.base}/fhir"
    server = uvicorn.Server(uvicorn.Config(create_ehr_app(ehr), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test EHR did not start")
        time.sleep(0.02)
    try:
        yield ehr
    finally:
        server.should_exit = True
        thread.join(timeout=5)
