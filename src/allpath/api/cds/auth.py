"""Authentication of CDS Clients (EHRs) by the signed JWT that CDS Hooks 2.0 puts on every call.

The checks, in order (each failure is a 401 naming what was wrong, never the token itself):

1. `Authorization: Bearer <JWT>` is present, at most `MAX_TOKEN_BYTES` long, and the JWT is well formed;
2. header: `typ` is `JWT`, `alg` is an asymmetric signature algorithm (never `none`, never HMAC),
   `kid` names a key in the configured JWK Set, and `alg` suits that key;
3. the signature verifies with that key;
4. claims: `iss`, `aud`, `exp`, `iat`, `jti` present; `iss` on the allow-list; `aud` exactly the URL of
   the endpoint called; `exp` not passed (at most 60 s leeway); `exp - iat` at most
   `MAX_LIFETIME_SECONDS` (so no `jti` sits in the replay cache for longer than that);
5. the `jti` has not been seen before from that issuer (replay cache, kept until the token expires;
   in memory, or in an SQLite file shared by workers and kept over restarts).

The `jku` header is deliberately not fetched: keys are agreed out of band and configured, so a
caller cannot make the service download keys (or anything else) from a URL of its choosing.
"""

from __future__ import annotations

import base64
import binascii
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey, EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PrivateKey, Ed448PublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from allpath.api.cds.settings import CdsConfigError
from allpath.errors import Problem, UnauthenticatedError
from allpath.http import jsonio

# Signature algorithms by JWK key type; EC algorithms are tied to their curve.
_RSA_ALGS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC_ALGS = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
_OKP_ALGS = frozenset({"EdDSA"})
REQUIRED_CLAIMS = ("iss", "aud", "exp", "iat", "jti")
# A CDS client JWT is a few hundred bytes; anything far larger is refused before it is decoded.
MAX_TOKEN_BYTES = 8 * 1024
# CDS Hooks recommends a lifetime of 5 minutes at most; a longer-lived token is refused.
MAX_LIFETIME_SECONDS = 300


class AuthError(UnauthenticatedError):
    """The request is not authenticated; `problem` says why, in words safe to return."""

    def __init__(self, problem: str):
        super().__init__("unauthorized", [Problem("Authorization", problem)])
        self.problem = problem

    def __str__(self) -> str:
        return self.problem


@dataclass(frozen=True)
class VerifiedToken:
    issuer: str
    jti: str
    kid: str
    tenant: str | None


class ReplayCache:
    """Remembers (iss, jti) pairs until their token expires; a second use is a replay.

    In memory and per process: a replay sent to another worker, or after a restart, would not be
    seen. `SqliteReplayCache` (`ALLPATH_CDS_REPLAY_DB`) closes both gaps.
    """

    def __init__(self, max_entries: int = 1_000_000):
        self._seen: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self._max = max_entries
        self._next_purge = 0.0

    def check_and_add(self, issuer: str, jti: str, forget_after: float, now: float) -> bool:
        """True if this is the first use; False if the pair was already seen and has not expired."""
        key = (issuer, jti)
        with self._lock:
            if now >= self._next_purge or len(self._seen) >= self._max:
                self._purge(now)
            expiry = self._seen.get(key)
            if expiry is not None and expiry > now:
                return False
            if len(self._seen) >= self._max:
                # Fail closed: forgetting live entries would let their tokens be replayed.
                raise AuthError("too many live tokens to track; try again shortly")
            self._seen[key] = forget_after
            return True

    def _purge(self, now: float) -> None:
        self._seen = {k: v for k, v in self._seen.items() if v > now}
        self._next_purge = now + 30.0

    def __len__(self) -> int:
        return len(self._seen)


class ReplayStore(Protocol):
    def check_and_add(self, issuer: str, jti: str, forget_after: float, now: float) -> bool: ...


class SqliteReplayCache:
    """The replay cache in an SQLite file: shared by every worker process and kept over restarts.

    One atomic upsert per call: a new (iss, jti) is inserted, an expired one is taken over, a live
    one is left alone, and the affected-row count tells which. WAL journal and `synchronous=NORMAL`:
    a committed `jti` survives a crash of the process (not a power cut).
    """

    def __init__(self, path: str, *, purge_every_seconds: float = 30.0):
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=5.0)
        self._lock = threading.Lock()
        self._purge_every = purge_every_seconds
        self._next_purge = 0.0
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS cds_jti (issuer TEXT NOT NULL, jti TEXT NOT NULL, "
                "forget_after REAL NOT NULL, PRIMARY KEY (issuer, jti)) WITHOUT ROWID"
            )

    def check_and_add(self, issuer: str, jti: str, forget_after: float, now: float) -> bool:
        """True if this is the first use; False if the pair was already seen and has not expired."""
        with self._lock:
            if now >= self._next_purge:
                self._conn.execute("DELETE FROM cds_jti WHERE forget_after <= ?", (now,))
                self._next_purge = now + self._purge_every
            cursor = self._conn.execute(
                "INSERT INTO cds_jti (issuer, jti, forget_after) VALUES (?, ?, ?) "
                "ON CONFLICT (issuer, jti) DO UPDATE SET forget_after = excluded.forget_after "
                "WHERE cds_jti.forget_after <= ?",
                (issuer, jti, forget_after, now),
            )
            return cursor.rowcount == 1

    def close(self) -> None:
        self._conn.close()


PublicKey = RSAPublicKey | EllipticCurvePublicKey | Ed25519PublicKey | Ed448PublicKey
_PrivateKey = RSAPrivateKey | EllipticCurvePrivateKey | Ed25519PrivateKey | Ed448PrivateKey
_PRIVATE_KEY_TYPES = (RSAPrivateKey, EllipticCurvePrivateKey, Ed25519PrivateKey, Ed448PrivateKey)


def _public_key_for(jwk: Mapping[str, Any]) -> tuple[PublicKey, frozenset[str]]:
    """The verification key of one JWK and the algorithms it may be used with."""
    kty = jwk.get("kty")
    # One variable for the three key families: `from_jwk` gives a private key when the JWK holds one.
    key: PublicKey | _PrivateKey
    try:
        if kty == "RSA":
            key = RSAAlgorithm.from_jwk(dict(jwk))
            algs = _RSA_ALGS
        elif kty == "EC":
            key = ECAlgorithm.from_jwk(dict(jwk))
            algs = frozenset(a for a, crv in _EC_ALGS.items() if crv == jwk.get("crv"))
        elif kty == "OKP":
            from jwt.algorithms import OKPAlgorithm

            key = OKPAlgorithm.from_jwk(dict(jwk))
            algs = _OKP_ALGS
        else:
            raise CdsConfigError(
                f"JWK kid={jwk.get('kid')!r}: key type {kty!r} is not allowed (CDS Hooks forbids shared-secret keys)"
            )
    except (jwt.InvalidKeyError, ValueError, KeyError, TypeError) as exc:
        if isinstance(exc, CdsConfigError):
            raise
        raise CdsConfigError(f"JWK kid={jwk.get('kid')!r}: not a valid {kty} key ({exc})") from None
    if isinstance(key, _PRIVATE_KEY_TYPES):  # a private JWK was configured; verify with its public half only
        key = key.public_key()
    if "alg" in jwk:
        if jwk["alg"] not in algs:
            raise CdsConfigError(f"JWK kid={jwk.get('kid')!r}: alg {jwk['alg']!r} does not suit a {kty} key")
        algs = frozenset({jwk["alg"]})
    return key, algs


class JwtVerifier:
    """Verifies CDS Hooks client JWTs against a fixed JWK Set and issuer allow-list."""

    def __init__(
        self,
        jwks: Mapping[str, Any],
        allowed_issuers: Iterable[str],
        *,
        leeway_seconds: int = 60,
        replay_cache: ReplayStore | None = None,
        clock: Any = time.time,
    ):
        self._keys: dict[str, tuple[PublicKey, frozenset[str]]] = {}
        for index, jwk in enumerate(jwks.get("keys", [])):
            if not isinstance(jwk, Mapping):
                raise CdsConfigError(f"JWK Set keys[{index}]: must be an object")
            kid = jwk.get("kid")
            if not isinstance(kid, str) or not kid:
                raise CdsConfigError(f"JWK Set keys[{index}]: has no 'kid' (CDS Hooks tokens name their key)")
            if kid in self._keys:
                raise CdsConfigError(f"JWK Set: kid {kid!r} appears twice")
            if jwk.get("use", "sig") != "sig":
                continue
            self._keys[kid] = _public_key_for(jwk)
        if not self._keys:
            raise CdsConfigError("JWK Set: no signature keys")
        self._issuers = frozenset(allowed_issuers)
        if not self._issuers:
            raise CdsConfigError("no allowed issuers configured")
        self._leeway = leeway_seconds
        self._replays = replay_cache or ReplayCache()
        self._clock = clock

    def verify(self, authorization: str | None, audiences: Iterable[str]) -> VerifiedToken:
        """Check an `Authorization` header value for a call to an endpoint known by `audiences`."""
        token = _bearer_token(authorization)
        header = _unverified_header(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg.lower() == "none":
            raise AuthError("unsigned tokens (alg none) are not accepted")
        if alg.upper().startswith("HS"):
            raise AuthError(f"symmetric algorithm {alg} is not accepted; sign with a private key")
        if header.get("typ") != "JWT":
            raise AuthError("token header typ must be JWT")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthError("token header has no kid")
        if kid not in self._keys:
            raise AuthError("token kid is not in the configured JWK Set")
        key, allowed_algs = self._keys[kid]
        if alg not in allowed_algs:
            raise AuthError(f"algorithm {alg} does not match the key named by kid")
        now = self._clock()
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                options={"require": list(REQUIRED_CLAIMS), "verify_aud": False, "verify_iss": False},
                leeway=self._leeway,
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token has expired") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"token has no {exc.claim} claim") from None
        except jwt.InvalidSignatureError:
            raise AuthError("token signature is not valid for the key named by kid") from None
        except jwt.ImmatureSignatureError:
            raise AuthError("token is not valid yet (iat or nbf in the future)") from None
        except jwt.DecodeError:
            raise AuthError("the bearer token is not a well-formed JWT") from None
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"token is not valid: {exc}") from None
        # PyJWT's own checks on these claims use the wall clock; the injected clock keeps tests exact.
        if not isinstance(claims["exp"], int | float) or claims["exp"] + self._leeway < now:
            raise AuthError("token has expired")
        if not isinstance(claims["iat"], int | float) or claims["exp"] - claims["iat"] > MAX_LIFETIME_SECONDS:
            raise AuthError(f"token lifetime (exp - iat) must be at most {MAX_LIFETIME_SECONDS} seconds")
        issuer = claims["iss"]
        if not isinstance(issuer, str) or issuer not in self._issuers:
            raise AuthError("token issuer is not on the allow-list")
        _check_audience(claims["aud"], frozenset(audiences))
        jti = claims["jti"]
        if not isinstance(jti, str) or not jti.strip():
            raise AuthError("token jti must be a non-empty string")
        if not self._replays.check_and_add(issuer, jti, claims["exp"] + self._leeway, now):
            raise AuthError("token jti has been used before (replay)")
        tenant = claims.get("tenant")
        return VerifiedToken(issuer=issuer, jti=jti, kid=kid, tenant=tenant if isinstance(tenant, str) else None)


def _unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header, read only to choose the key and algorithm: `jwt.decode` then reads the whole
    token again, strictly, and verifies it with them. (`jwt.get_unverified_header` would decode every
    segment, the signature too, a second time: about 3% of a CDS call's CPU.)"""
    segment = token.split(".", 1)[0]
    try:
        header = jsonio.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error):  # binascii.Error and JSONDecodeError are ValueErrors
        raise AuthError("the bearer token is not a well-formed JWT") from None
    if not isinstance(header, dict) or token.count(".") != 2:
        raise AuthError("the bearer token is not a well-formed JWT")
    if "crit" in header:
        # RFC 7515 4.1.11: extensions the recipient must understand; CDS Hooks defines none.
        raise AuthError("the bearer token is not a well-formed JWT: critical header extensions are not supported")
    return header


def _bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise AuthError("missing Authorization header (Bearer JWT)")
    if len(authorization) > MAX_TOKEN_BYTES + 64:  # checked before the value is even split
        raise AuthError(f"the bearer token is longer than {MAX_TOKEN_BYTES} bytes")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("Authorization header must be 'Bearer <JWT>'")
    if len(token) > MAX_TOKEN_BYTES:
        raise AuthError(f"the bearer token is longer than {MAX_TOKEN_BYTES} bytes")
    return token.strip()


def _check_audience(aud: Any, expected: frozenset[str]) -> None:
    # The spec allows a string or an array; it must name exactly the endpoint being called.
    values = [aud] if isinstance(aud, str) else aud
    if not isinstance(values, list) or len(values) != 1 or values[0] not in expected:
        raise AuthError("token aud is not the URL of this endpoint")
