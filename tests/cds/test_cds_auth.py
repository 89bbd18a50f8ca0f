"""Client authentication, modelled on the token checks of the Inferno CDS Hooks / Da Vinci CRD test kits.

Each bad token gets 401 with a JSON reason, on discovery and on a service endpoint alike.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import jwt
import pytest
from cdskit import ISSUER, SERVICE_URL, bearer, full_prefetch, hook_request, rsa_key, token
from cryptography.hazmat.primitives import serialization

from allpath.api.cds.auth import AuthError, JwtVerifier, ReplayCache
from allpath.api.cds.settings import CdsConfigError

DISCOVERY = "/cds-services"
PATIENT_VIEW = "/cds-services/allpath-patient-view"
ENDPOINTS = [DISCOVERY, PATIENT_VIEW]


def _send(client: Any, endpoint: str, value: str | None) -> Any:
    headers = bearer(value) if value is not None else {}
    if endpoint == DISCOVERY:
        return client.get(endpoint, headers=headers)
    return client.post(endpoint, json=hook_request(prefetch=full_prefetch()), headers=headers)


def _b64(data: dict[str, Any]) -> str:
    return _b64str(json.dumps(data))


def _b64str(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def _claims(endpoint: str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": SERVICE_URL + endpoint, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4())}
    claims.update(changes)
    return claims


def assert_unauthorized(response: Any, words: str) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["error"] == "unauthorized"
    assert body["details"][0]["field"] == "Authorization"
    assert words in body["details"][0]["problem"]
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_well_formed_rs384_token_is_accepted(client, rsa, endpoint):
    assert _send(client, endpoint, token(rsa, endpoint)).status_code == 200


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_well_formed_es384_token_is_accepted(client, ec, endpoint):
    assert _send(client, endpoint, token(ec, endpoint)).status_code == 200


def test_audience_may_be_a_one_element_array(client, rsa):
    assert _send(client, DISCOVERY, token(rsa, claims={"aud": [SERVICE_URL + DISCOVERY]})).status_code == 200


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_alg_none_is_rejected(client, rsa, endpoint):
    unsigned = _b64({"alg": "none", "typ": "JWT", "kid": rsa.kid}) + "." + _b64(_claims(endpoint)) + "."
    assert_unauthorized(_send(client, endpoint, unsigned), "alg none")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_hs256_token_is_rejected(client, rsa, endpoint):
    signed = jwt.encode(
        _claims(endpoint), "a-shared-secret-of-32-bytes-long!", algorithm="HS256", headers={"kid": rsa.kid}
    )
    assert_unauthorized(_send(client, endpoint, signed), "symmetric")


def test_hs256_signed_with_the_public_key_is_rejected(client, rsa):
    # The classic algorithm-confusion attack: HMAC keyed with the (public) RSA key.
    pem = rsa.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64({"alg": "HS256", "typ": "JWT", "kid": rsa.kid})
    body = _b64(_claims(DISCOVERY))
    import hashlib
    import hmac

    signature = base64.urlsafe_b64encode(hmac.new(pem, f"{header}.{body}".encode(), hashlib.sha256).digest())
    forged = f"{header}.{body}.{signature.rstrip(b'=').decode()}"
    assert_unauthorized(_send(client, DISCOVERY, forged), "symmetric")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_unknown_kid_is_rejected(client, rsa, endpoint):
    assert_unauthorized(_send(client, endpoint, token(rsa, endpoint, headers={"kid": "someone-else"})), "kid")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_bad_signature_is_rejected(client, rsa, endpoint):
    impostor = rsa_key(kid=rsa.kid)  # a different key claiming the trusted key's kid
    assert_unauthorized(_send(client, endpoint, token(impostor, endpoint)), "signature")


def test_tampered_payload_is_rejected(client, rsa):
    header, _, signature = token(rsa, DISCOVERY).split(".")
    tampered = f"{header}.{_b64(_claims(DISCOVERY, iss=ISSUER))}.{signature}"
    assert_unauthorized(_send(client, DISCOVERY, tampered), "signature")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_wrong_audience_is_rejected(client, rsa, endpoint):
    wrong = token(rsa, endpoint, claims={"aud": "https://other.example.org" + endpoint})
    assert_unauthorized(_send(client, endpoint, wrong), "aud")


def test_token_for_discovery_is_not_accepted_by_a_service(client, rsa):
    assert_unauthorized(_send(client, PATIENT_VIEW, token(rsa, DISCOVERY)), "aud")


def test_audience_prefix_is_not_enough(client, rsa):
    assert_unauthorized(_send(client, DISCOVERY, token(rsa, claims={"aud": SERVICE_URL})), "aud")


def test_audience_array_with_extra_entries_is_rejected(client, rsa):
    auds = [SERVICE_URL + DISCOVERY, "https://other.example.org/cds-services"]
    assert_unauthorized(_send(client, DISCOVERY, token(rsa, claims={"aud": auds})), "aud")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_issuer_not_on_allow_list_is_rejected(client, rsa, endpoint):
    other = token(rsa, endpoint, claims={"iss": "https://rogue.example.net"})
    assert_unauthorized(_send(client, endpoint, other), "issuer")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_expired_token_is_rejected(client, rsa, endpoint):
    now = int(time.time())
    expired = token(rsa, endpoint, claims={"exp": now - 61 - 5, "iat": now - 400})
    assert_unauthorized(_send(client, endpoint, expired), "expired")


def test_token_expired_within_the_60_second_leeway_is_accepted(client, rsa):
    now = int(time.time())
    recent = token(rsa, claims={"exp": now - 30, "iat": now - 300})
    assert _send(client, DISCOVERY, recent).status_code == 200


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_missing_jti_is_rejected(client, rsa, endpoint):
    assert_unauthorized(_send(client, endpoint, token(rsa, endpoint, drop=("jti",))), "jti")


@pytest.mark.parametrize("claim", ["iss", "aud", "exp", "iat"])
def test_missing_required_claim_is_rejected(client, rsa, claim):
    assert_unauthorized(_send(client, DISCOVERY, token(rsa, drop=(claim,))), claim)


def test_empty_jti_is_rejected(client, rsa):
    assert_unauthorized(_send(client, DISCOVERY, token(rsa, claims={"jti": " "})), "jti")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_replayed_jti_is_rejected(client, rsa, endpoint):
    once = token(rsa, endpoint)
    assert _send(client, endpoint, once).status_code == 200
    assert_unauthorized(_send(client, endpoint, once), "replay")


def test_same_jti_in_a_new_token_is_a_replay(client, rsa):
    jti = str(uuid.uuid4())
    assert _send(client, DISCOVERY, token(rsa, claims={"jti": jti})).status_code == 200
    assert_unauthorized(_send(client, DISCOVERY, token(rsa, claims={"jti": jti})), "replay")


def test_rejected_token_does_not_burn_its_jti(client, rsa):
    jti = str(uuid.uuid4())
    assert_unauthorized(_send(client, DISCOVERY, token(rsa, claims={"jti": jti, "iss": "https://rogue"})), "issuer")
    assert _send(client, DISCOVERY, token(rsa, claims={"jti": jti})).status_code == 200


def test_missing_authorization_header_is_rejected(client):
    assert_unauthorized(_send(client, DISCOVERY, None), "missing Authorization")


def test_non_bearer_scheme_is_rejected(client, rsa):
    response = client.get(DISCOVERY, headers={"Authorization": f"Basic {token(rsa)}"})
    assert_unauthorized(response, "Bearer")


def test_garbage_token_is_rejected(client):
    assert_unauthorized(_send(client, DISCOVERY, "not.a.jwt"), "well-formed")


@pytest.mark.parametrize(
    "part",
    ["header-not-json", "header-an-array", "header-not-base64url", "payload-not-base64url", "four-segments"],
)
def test_a_token_malformed_in_any_segment_is_refused_as_not_well_formed(client, rsa, part):
    good = token(rsa, DISCOVERY)
    header, payload, signature = good.split(".")
    crafted = {
        "header-not-json": f"{_b64str('not json')}.{payload}.{signature}",
        "header-an-array": f"{_b64str('[1, 2]')}.{payload}.{signature}",
        "header-not-base64url": f"!!{header}.{payload}.{signature}",
        "payload-not-base64url": f"{header}.!!{payload}.{signature}",
        "four-segments": f"{good}.{signature}",
    }[part]
    assert_unauthorized(_send(client, DISCOVERY, crafted), "well-formed")


def test_typ_other_than_jwt_is_rejected(client, rsa):
    assert_unauthorized(_send(client, DISCOVERY, token(rsa, headers={"typ": "at+jwt"})), "typ")


def test_algorithm_that_does_not_suit_the_key_is_rejected(client, rsa, ec):
    # An EC-signed token that names the RSA key's kid.
    mixed = jwt.encode(_claims(DISCOVERY), ec.private, algorithm="ES384", headers={"kid": rsa.kid, "typ": "JWT"})
    assert_unauthorized(_send(client, DISCOVERY, mixed), "does not match")


def test_unknown_service_still_requires_authentication(client):
    assert client.post("/cds-services/nope", json={}).status_code == 401


def test_feedback_requires_authentication(client):
    assert client.post("/cds-services/allpath-patient-view/feedback", json={"feedback": []}).status_code == 401


# --- the verifier and its configuration, without HTTP ------------------------------------


def test_replay_cache_forgets_a_jti_once_its_token_has_expired():
    cache = ReplayCache()
    assert cache.check_and_add("iss", "j1", forget_after=100.0, now=50.0)
    assert not cache.check_and_add("iss", "j1", forget_after=100.0, now=99.0)
    assert cache.check_and_add("iss", "j1", forget_after=300.0, now=101.0)


def test_replay_cache_keys_on_issuer_and_jti():
    cache = ReplayCache()
    assert cache.check_and_add("a", "same", 100.0, 0.0)
    assert cache.check_and_add("b", "same", 100.0, 0.0)


def test_full_replay_cache_fails_closed():
    cache = ReplayCache(max_entries=2)
    cache.check_and_add("i", "1", 100.0, 0.0)
    cache.check_and_add("i", "2", 100.0, 0.0)
    with pytest.raises(AuthError, match="too many"):
        cache.check_and_add("i", "3", 100.0, 0.0)


def test_shared_secret_keys_are_refused_in_the_jwk_set():
    with pytest.raises(CdsConfigError, match="not allowed"):
        JwtVerifier({"keys": [{"kty": "oct", "kid": "k", "k": "c2VjcmV0"}]}, [ISSUER])


def test_jwk_without_kid_is_refused(rsa):
    jwk = rsa.public_jwk()
    del jwk["kid"]
    with pytest.raises(CdsConfigError, match="kid"):
        JwtVerifier({"keys": [jwk]}, [ISSUER])


def test_verifier_uses_only_the_public_half_of_a_private_jwk(rsa):
    from jwt.algorithms import RSAAlgorithm

    private_jwk = json.loads(RSAAlgorithm.to_jwk(rsa.private))
    private_jwk.update({"kid": rsa.kid, "alg": rsa.alg})
    verifier = JwtVerifier({"keys": [private_jwk]}, [ISSUER])
    verified = verifier.verify(f"Bearer {token(rsa)}", [SERVICE_URL + DISCOVERY])
    assert verified.issuer == ISSUER and verified.kid == rsa.kid


def test_sqlite_replay_cache_is_shared_by_workers_and_kept_over_a_restart(tmp_path):
    from allpath.api.cds.auth import SqliteReplayCache

    path = str(tmp_path / "replay.sqlite")
    worker_one, worker_two = SqliteReplayCache(path), SqliteReplayCache(path)
    assert worker_one.check_and_add("iss", "j1", forget_after=100.0, now=50.0)
    assert not worker_two.check_and_add("iss", "j1", forget_after=100.0, now=60.0)  # the other worker saw it
    worker_one.close()
    worker_two.close()
    restarted = SqliteReplayCache(path)
    assert not restarted.check_and_add("iss", "j1", forget_after=100.0, now=70.0)
    assert restarted.check_and_add("other-iss", "j1", forget_after=100.0, now=70.0)


def test_sqlite_replay_cache_forgets_a_jti_once_its_token_has_expired(tmp_path):
    from allpath.api.cds.auth import SqliteReplayCache

    cache = SqliteReplayCache(str(tmp_path / "replay.sqlite"), purge_every_seconds=1e9)
    assert cache.check_and_add("iss", "j1", forget_after=100.0, now=50.0)
    assert not cache.check_and_add("iss", "j1", forget_after=100.0, now=99.0)
    assert cache.check_and_add("iss", "j1", forget_after=300.0, now=101.0)  # expired: taken over, not purged
    assert not cache.check_and_add("iss", "j1", forget_after=300.0, now=102.0)


def test_a_token_replayed_to_a_restarted_service_is_refused_when_the_replay_db_is_set(
    make_client, settings, rsa, tmp_path
):
    from dataclasses import replace

    with_replay_db = replace(settings, replay_db=str(tmp_path / "replay.sqlite"))
    once = token(rsa, DISCOVERY)
    first = make_client(settings=with_replay_db)
    assert _send(first, DISCOVERY, once).status_code == 200
    restarted = make_client(settings=with_replay_db)  # a new app: its in-memory state is gone
    assert_unauthorized(_send(restarted, DISCOVERY, once), "replay")
    without = make_client()  # the in-memory default cannot know: this is the gap the file closes
    assert _send(without, DISCOVERY, once).status_code == 200


# --- issue #15: malformed, oversized and long-lived tokens ----------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_unknown_crit_header_is_a_401_not_a_500(client, rsa, endpoint, caplog):
    # PyJWT raises InvalidTokenError (not DecodeError) for an unsupported critical extension.
    header = _b64({"alg": "RS384", "typ": "JWT", "kid": rsa.kid, "crit": ["urn:x-unknown"], "urn:x-unknown": 1})
    crafted = f"{header}.{_b64(_claims(endpoint))}.c2lnbmF0dXJl"
    response = _send(client, endpoint, crafted)
    assert_unauthorized(response, "well-formed")
    assert "Traceback" not in caplog.text


def test_token_longer_than_8_kb_is_refused_before_it_is_decoded(client, rsa):
    padded = token(rsa, DISCOVERY, claims={"padding": "x" * 9000})
    assert_unauthorized(_send(client, DISCOVERY, padded), "longer than 8192 bytes")


def test_a_10_mb_authorization_header_is_refused_at_the_edge_with_431(client):
    response = _send(client, DISCOVERY, "x" * (10 * 1024 * 1024))
    assert response.status_code == 431
    assert response.json()["details"][0]["field"] == "headers"


def test_verifier_refuses_a_huge_authorization_value_before_splitting_it(rsa):
    verifier = JwtVerifier({"keys": [rsa.public_jwk()]}, [ISSUER])
    with pytest.raises(AuthError, match="longer than 8192 bytes"):
        verifier.verify("Bearer " + "x" * (10 * 1024 * 1024), [SERVICE_URL + DISCOVERY])


def test_token_valid_for_ten_years_is_refused(client, rsa):
    now = int(time.time())
    long_lived = token(rsa, DISCOVERY, claims={"iat": now, "exp": now + 10 * 365 * 24 * 3600})
    assert_unauthorized(_send(client, DISCOVERY, long_lived), "lifetime")


def test_token_valid_for_exactly_five_minutes_is_accepted(client, rsa):
    now = int(time.time())
    assert _send(client, DISCOVERY, token(rsa, DISCOVERY, claims={"iat": now, "exp": now + 300})).status_code == 200


def test_long_lived_token_does_not_enter_the_replay_cache():
    cache = ReplayCache()
    signer = rsa_key()
    verifier = JwtVerifier(
        {"keys": [signer.public_jwk()]}, [ISSUER], replay_cache=cache, clock=lambda: float(int(time.time()))
    )
    now = int(time.time())
    with pytest.raises(AuthError):
        verifier.verify(f"Bearer {token(signer, claims={'iat': now, 'exp': now + 3600})}", [SERVICE_URL + DISCOVERY])
    assert len(cache) == 0


def test_cds_answers_carry_the_security_headers(client, rsa):
    response = _send(client, DISCOVERY, token(rsa, DISCOVERY))
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_cds_request_body_over_the_limit_gets_413(client, rsa):
    endpoint = PATIENT_VIEW
    body = b'{"hook": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    response = client.post(
        endpoint, content=body, headers={**bearer(token(rsa, endpoint)), "content-type": "application/json"}
    )
    assert response.status_code == 413
