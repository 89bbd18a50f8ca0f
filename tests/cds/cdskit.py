"""Test kit for the CDS Hooks service: client keys, signed tokens, hook requests and small FHIR records."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

SERVICE_URL = "https://cds.allpath.test"
ISSUER = "https://ehr.example.org"
FHIR_SERVER = "https://ehr.example.org/fhir"


@dataclass
class ClientKey:
    kid: str
    alg: str
    private: Any

    def public_jwk(self) -> dict[str, Any]:
        algorithm = RSAAlgorithm if self.alg.startswith(("RS", "PS")) else ECAlgorithm
        jwk = json.loads(algorithm.to_jwk(self.private.public_key()))
        jwk.update({"kid": self.kid, "alg": self.alg, "use": "sig"})
        return jwk


def rsa_key(kid: str = "ehr-rsa-1", alg: str = "RS384") -> ClientKey:
    return ClientKey(kid, alg, rsa.generate_private_key(public_exponent=65537, key_size=2048))


def ec_key(kid: str = "ehr-ec-1", alg: str = "ES384") -> ClientKey:
    return ClientKey(kid, alg, ec.generate_private_key(ec.SECP384R1()))


def jwks(*keys: ClientKey) -> dict[str, Any]:
    return {"keys": [k.public_jwk() for k in keys]}


def token(
    key: ClientKey,
    endpoint: str = "/cds-services",
    *,
    claims: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
    headers: dict[str, Any] | None = None,
) -> str:
    """A client JWT for a call to `endpoint`, signed like an EHR would sign it."""
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": ISSUER,
        "aud": SERVICE_URL + endpoint,
        "exp": now + 300,
        "iat": now,
        "jti": str(uuid.uuid4()),
    }
    payload.update(claims or {})
    for name in drop:
        payload.pop(name, None)
    head = {"kid": key.kid, "typ": "JWT"}
    head.update(headers or {})
    return jwt.encode(payload, key.private, algorithm=key.alg, headers=head)


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


# --- FHIR records (kept tiny; the importer's own tests cover the mapping) -------------------


def patient(pid: str = "p1", birth_date: str = "1980-05-01") -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "birthDate": birth_date, "gender": "female"}


def searchset(*resources: dict[str, Any], next_url: str | None = None) -> dict[str, Any]:
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"resource": r} for r in resources],
    }
    if next_url:
        bundle["link"] = [{"relation": "next", "url": next_url}]
    return bundle


def full_prefetch(pid: str = "p1", *, conditions: tuple[dict[str, Any], ...] = (), **more: Any) -> dict[str, Any]:
    prefetch: dict[str, Any] = {
        "patient": patient(pid),
        "conditions": searchset(*conditions),
        "observations": searchset(*more.get("observations", ())),
        "medications": searchset(*more.get("medications", ())),
        "administrations": searchset(*more.get("administrations", ())),
        "statements": searchset(*more.get("statements", ())),
        "procedures": searchset(*more.get("procedures", ())),
    }
    return prefetch


def hook_request(
    hook: str = "patient-view",
    *,
    pid: str = "p1",
    prefetch: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hook": hook,
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/dr-1", "patientId": pid, **(context or {})},
    }
    if prefetch is not None:
        body["prefetch"] = prefetch
    body.update(extra)
    return body


def medication_order(
    rid: str, *, name: str | None = None, rxnorm: str | None = None, status: str = "draft", pid: str = "p1"
) -> dict[str, Any]:
    concept: dict[str, Any] = {}
    if name:
        concept["text"] = name
    if rxnorm:
        concept["coding"] = [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": rxnorm}]
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": status,
        "intent": "order",
        "subject": {"reference": f"Patient/{pid}"},
        "medicationCodeableConcept": concept,
    }


def service_order(rid: str, text: str, pid: str = "p1") -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "id": rid,
        "status": "draft",
        "intent": "order",
        "subject": {"reference": f"Patient/{pid}"},
        "code": {"text": text},
    }


def draft_orders(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
