"""The CDS Hooks 2.0 endpoints, as a FastAPI router: discovery, three services, feedback.

    GET  /cds-services                          discovery
    POST /cds-services/allpath-patient-view     hook patient-view: the plan in at most five cards
    POST /cds-services/allpath-order-select     hook order-select: the order checks on the selected orders
    POST /cds-services/allpath-order-sign       hook order-sign: safety checks on draft orders
    POST /cds-services/{id}/feedback            accepted / overridden outcomes

Every call, discovery included, must carry a valid client JWT (see `auth.py`) unless the service
was started in insecure development mode. Errors are JSON `{"error": ..., "details": [{"field",
"problem"}]}`: 400 for a bad request, 401 unauthenticated, 404 unknown service, 412 when the FHIR
data cannot be obtained. Logs carry service ids, status codes, card counts and timings, never
patient data.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, cast

from fastapi import APIRouter, Request
from fastapi.responses import Response

from allpath.api.cds.auth import AuthError, JwtVerifier, SqliteReplayCache
from allpath.api.cds.cards import CardFactory
from allpath.api.cds.feedback import (
    FeedbackError,
    FeedbackStore,
    InMemoryFeedbackStore,
    SqliteFeedbackStore,
    parse_feedback,
)
from allpath.api.cds.hookrequest import (
    ORDER_SELECT_CONTEXT,
    ORDER_SIGN_CONTEXT,
    PATIENT_VIEW_CONTEXT,
    ContextField,
    HookRequest,
    HookRequestError,
    parse_hook_request,
    parse_json_body,
)
from allpath.api.cds.ordersign import ORDER_TYPES, OrderChecks
from allpath.api.cds.prefetch import (
    MEDICATION,
    PREFETCH,
    Gathered,
    InvalidPrefetchError,
    PrefetchUnavailableError,
    check_subject,
    draft_entries,
    gather,
    unreadable,
)
from allpath.api.cds.records import MEDICATION_KINDS, MedicationIndex, ValidResources, refuse_invalid
from allpath.api.cds.settings import ENV_FEEDBACK_DB, ENV_REPLAY_DB, CdsConfigError, CdsSettings
from allpath.engine import Engine
from allpath.errors import BadInputError, NotAnAllPatientError
from allpath.facts import PatientFacts, Problem
from allpath.http import jsonio
from allpath.httperrors import http_status
from allpath.plan import Alert

log = logging.getLogger("allpath.cds")
T = TypeVar("T")

PATIENT_VIEW_ID = "allpath-patient-view"
ORDER_SELECT_ID = "allpath-order-select"
ORDER_SIGN_ID = "allpath-order-sign"
ORDER_SERVICES = frozenset({ORDER_SELECT_ID, ORDER_SIGN_ID})
# The SMART app launch path (allpath's EHR launch opens the clinician plan); the summary card links to it.
SMART_LAUNCH_PATH = "/smart/launch"
INSECURE_WARNING = (
    "!!! CDS Hooks authentication is OFF (ALLPATH_CDS_INSECURE_DEV=1). Any caller can read advice about "
    "any patient. Use this for local development only, never with real patient data. !!!"
)


class ImportResultLike(Protocol):
    # Read-only members: an importer's result may hold lists (covariant only when not settable).
    @property
    def facts(self) -> PatientFacts: ...
    @property
    def alerts(self) -> Sequence[Alert]: ...
    @property
    def notes(self) -> Sequence[str]: ...


class ImporterLike(Protocol):
    """What the service needs of `allpath.fhir.Importer` (tests stand in for it)."""

    @property
    def drugs(self) -> Mapping[tuple[str, str], str]: ...

    def wants(self, resource: dict[str, Any]) -> bool: ...

    def from_resources(self, resources: list[dict[str, Any]], *, validated: bool = False) -> ImportResultLike: ...


def _importer_for(engine: Engine) -> ImporterLike:
    # Imported here: fhir.resources is heavy, and a test app may never read FHIR.
    from allpath.fhir import Importer

    return Importer(engine.kb)


_IMPORT_INDEX = re.compile(r"\bresources\[(\d+)\]")


def _in_request(text: str, paths: Sequence[str]) -> str:
    """The importer names a resource by its place in the list it was given (`resources[3]`); the
    EHR knows it by its place in the request (`prefetch.conditions.entry[0].resource`)."""

    def place(match: re.Match[str]) -> str:
        index = int(match.group(1))
        return paths[index] if index < len(paths) else match.group(0)

    return _IMPORT_INDEX.sub(place, text)


def _alert_in_request(alert: Alert, paths: Sequence[str]) -> Alert:
    if "resources[" not in alert.message:
        return alert  # the engine's prebuilt alerts stay the same objects (their cards are cached)
    return alert.model_copy(update={"message": _in_request(alert.message, paths)})


def _with_medication(
    medications: MedicationIndex, resource: Mapping[str, Any], to_validate: dict[str, Mapping[str, Any]]
) -> None:
    # The Medication an order references carries the order's drug code: it is validated with the order.
    path = medications.path_of(resource)
    medication = medications.find(resource)
    if path is not None and medication is not None:
        to_validate[path] = medication


def _agent_lookup(reader: ImporterLike) -> Callable[[str, str], str | None]:
    """The importer's drug lookup for the order checks: its `agent_for` where it has one (it also
    rolls RxNorm product codes up to their ingredient), else its plain code -> agent table."""
    lookup = getattr(reader, "agent_for", None)
    if callable(lookup):
        return cast(Callable[[str, str], str | None], lookup)
    drugs = reader.drugs
    return lambda system, code: drugs.get((system, code))


def _open(variable: str, store: Callable[[str], T], path: str) -> T:
    """An SQLite-backed store, or a `CdsConfigError` naming the variable whose file cannot be opened."""
    try:
        return store(path)
    except sqlite3.Error as exc:
        raise CdsConfigError(f"{variable}: cannot open {path}: {exc}") from None


def json_response(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    # Cards are plain JSON already; FastAPI's generic encoder would walk them again at several
    # times the cost of serialising them, on every call.
    return Response(content=jsonio.dumps(content), status_code=status, headers=headers, media_type="application/json")


def error_response(
    status: int, error: str, problems: Iterable[Problem], headers: dict[str, str] | None = None
) -> Response:
    return json_response({"error": error, "details": [p.as_dict() for p in problems]}, status, headers)


HOOKS: dict[str, tuple[str, tuple[ContextField, ...]]] = {
    PATIENT_VIEW_ID: ("patient-view", PATIENT_VIEW_CONTEXT),
    ORDER_SELECT_ID: ("order-select", ORDER_SELECT_CONTEXT),
    ORDER_SIGN_ID: ("order-sign", ORDER_SIGN_CONTEXT),
}


@dataclass
class CallRecord:
    """What one call's data comes to: the resources to import (validated, references resolved), the
    medication records the order checks read, and the draft orders with the selected ones."""

    imported: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)  # where each imported resource was in the request
    medications: list[dict[str, Any]] = field(default_factory=list)
    drafts: list[dict[str, Any]] = field(default_factory=list)
    selected: set[int] = field(default_factory=set)


class CardIndex:
    """Card uuid -> rule id for recently issued cards, so feedback can name the rule (bounded, in memory)."""

    def __init__(self, size: int = 50_000):
        self._map: OrderedDict[str, str] = OrderedDict()
        self._size = size

    def remember(self, cards: Iterable[dict[str, Any]], rule_ids: Iterable[str]) -> None:
        for card, rule_id in zip(cards, rule_ids, strict=True):
            self._map[card["uuid"]] = rule_id
        while len(self._map) > self._size:
            self._map.popitem(last=False)

    def get(self, card_uuid: str) -> str | None:
        return self._map.get(card_uuid)

    def as_mapping(self) -> OrderedDict[str, str]:
        return self._map


def discovery_document() -> dict[str, Any]:
    return {
        "services": [
            {
                "hook": "patient-view",
                "id": PATIENT_VIEW_ID,
                "title": "allpath: ALL treatment options",
                "description": "Cited treatment options and alerts for a person with acute lymphoblastic leukemia "
                "(ALL), from the allpath knowledge base, shown when the chart is opened.",
                "prefetch": dict(PREFETCH),
            },
            {
                "hook": "order-select",
                "id": ORDER_SELECT_ID,
                "title": "allpath: ALL order checks while ordering",
                "description": "The order-sign checks, run as orders are selected: a missing tyrosine kinase "
                "inhibitor in Ph-positive ALL, an autologous transplant, clofarabine outside its use.",
                "prefetch": dict(PREFETCH),
            },
            {
                "hook": "order-sign",
                "id": ORDER_SIGN_ID,
                "title": "allpath: ALL order safety checks",
                "description": "Checks orders for a person with ALL before signing: a missing tyrosine kinase "
                "inhibitor in Ph-positive ALL, an autologous transplant, clofarabine outside its use.",
                "prefetch": dict(PREFETCH),
            },
        ]
    }


def create_cds_router(
    engine: Engine,
    settings: CdsSettings,
    *,
    importer: ImporterLike | None = None,
    feedback_store: FeedbackStore | None = None,
    http_transport: Any = None,
    verifier: JwtVerifier | None = None,
) -> APIRouter:
    """The CDS Hooks endpoints for one engine; mount it at the root of an app (paths start /cds-services).

    `importer` turns FHIR resources into facts (default: an `allpath.fhir.Importer` over the engine's
    knowledge base, so the prefetch filter, the mapping and the plan use one knowledge base);
    `http_transport` lets tests stand in for the EHR's FHIR server.
    """
    if settings.insecure_dev:
        log.warning(INSECURE_WARNING)
        verifier = None
    elif verifier is None:
        assert settings.jwks is not None  # CdsSettings refuses to exist otherwise
        replays = _open(ENV_REPLAY_DB, SqliteReplayCache, settings.replay_db) if settings.replay_db else None
        verifier = JwtVerifier(
            settings.jwks, settings.allowed_issuers, leeway_seconds=settings.leeway_seconds, replay_cache=replays
        )
    base_url = settings.service_url or ""
    reader = importer or _importer_for(engine)
    if feedback_store is None:
        feedback_store = (
            _open(ENV_FEEDBACK_DB, SqliteFeedbackStore, settings.feedback_db)
            if settings.feedback_db
            else InMemoryFeedbackStore()
        )
    store: FeedbackStore = feedback_store
    cards = CardFactory(engine.kb, engine.kb.disclaimer)
    checks = OrderChecks(engine.kb, cards, _agent_lookup(reader))
    plan_link = f"{base_url}{SMART_LAUNCH_PATH}" if base_url else None
    index = CardIndex()
    valid_resources = ValidResources()
    discovery = discovery_document()
    services = {s["id"]: s for s in discovery["services"]}
    router = APIRouter(tags=["cds-hooks"])

    def authenticate(request: Request, *paths: str) -> Response | None:
        if verifier is None:
            return None
        try:
            verifier.verify(request.headers.get("authorization"), [f"{base_url}{p}" for p in paths])
        except AuthError as exc:
            log.info("cds auth rejected: %s", exc.problem)
            return error_response(
                http_status(exc),
                exc.message,
                exc.problems,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return None

    @router.get("/cds-services", summary="CDS Hooks discovery")
    async def discover(request: Request) -> Any:
        denied = authenticate(request, "/cds-services")
        return denied or json_response(discovery)

    @router.post("/cds-services/{service_id}", summary="Call a CDS service")
    async def call_service(service_id: str, request: Request) -> Any:
        started = time.perf_counter()
        denied = authenticate(request, f"/cds-services/{service_id}")
        if denied is not None:
            return denied
        if service_id not in services:
            return error_response(404, "unknown CDS service", [Problem("service_id", f"no service {service_id!r}")])
        try:
            body = parse_json_body(await request.body())
            hook_name, context_fields = HOOKS[service_id]
            hook = parse_hook_request(body, hook=hook_name, context_fields=context_fields)
            gathered = await gather(
                hook,
                transport=http_transport,
                timeout_seconds=settings.fhir_timeout_seconds,
                allow_http=settings.insecure_dev,
            )
            record = prepare(service_id, hook, gathered)
        except (HookRequestError, InvalidPrefetchError, PrefetchUnavailableError) as exc:
            status = http_status(exc)
            log.info("cds %s: %d %s (%d problems)", service_id, status, exc.message, len(exc.problems))
            return error_response(status, exc.message, exc.problems)
        result_cards, rule_ids = answer(service_id, hook, record)
        index.remember(result_cards, rule_ids)
        log.info(
            "cds %s: 200, %d cards in %.1f ms", service_id, len(result_cards), (time.perf_counter() - started) * 1000
        )
        return json_response({"cards": result_cards})

    def prepare(service_id: str, hook: HookRequest, gathered: Gathered) -> CallRecord:
        """Resolve medication references, validate everything that could matter (400 naming it),
        then keep what the importer reads. Nothing is filtered away before it is validated."""
        drafts_in = draft_entries(hook) if service_id in ORDER_SERVICES else []
        medications = MedicationIndex(
            [(m.resource, None, m.path) for m in gathered.medications]
            + [(r, url, path) for path, r, url in drafts_in if r.get("resourceType") == MEDICATION]
            + [(r, url, None) for url, r in gathered.full_urls.items() if r.get("resourceType") == MEDICATION]
        )
        to_validate: dict[str, Mapping[str, Any]] = {}  # path -> resource: a Medication shared by orders once
        record = CallRecord()
        for item in gathered.resources:
            resolved = medications.resolve(item.resource)
            malformed = unreadable(resolved)
            # The importer's filter reads codings as given: only well-formed ones go to it.
            read = not malformed and item.template.wants(resolved) and reader.wants(resolved)
            if read or malformed or unreadable(item.resource):
                to_validate[item.path] = item.resource
                _with_medication(medications, item.resource, to_validate)
            if read:
                record.imported.append(resolved)
                record.paths.append(item.path)
            if resolved["resourceType"] in MEDICATION_KINDS:
                record.medications.append(resolved)
        if service_id in ORDER_SERVICES:
            _prepare_drafts(hook, gathered, drafts_in, medications, record, to_validate)
        refuse_invalid(to_validate.items(), valid_resources)
        return record

    def _prepare_drafts(
        hook: HookRequest,
        gathered: Gathered,
        drafts_in: list[tuple[str, Mapping[str, Any], str | None]],
        medications: MedicationIndex,
        record: CallRecord,
        to_validate: dict[str, Mapping[str, Any]],
    ) -> None:
        # A draft order for someone else is refused whatever it orders: the EHR sent the wrong Bundle.
        selections = hook.context.get("selections")
        wanted = set(selections) if isinstance(selections, list) else None
        found: set[str] = set()
        for path, resource, _ in drafts_in:
            reference = f"{resource.get('resourceType')}/{resource.get('id')}"
            if reference in (wanted or ()):
                found.add(reference)
            if resource.get("resourceType") == MEDICATION:
                continue
            checked = check_subject(resource, path, hook.patient_id, gathered.full_urls)
            if resource.get("resourceType") not in ORDER_TYPES:
                continue
            resolved = medications.resolve(checked)
            order = checks.reader.read(resolved)
            if order.agents or order.autologous_transplant or unreadable(resource) or "medicationReference" in resource:
                to_validate[path] = resource
                _with_medication(medications, resource, to_validate)
            if wanted is not None and reference in wanted:
                record.selected.add(len(record.drafts))
            record.drafts.append(resolved)
        if wanted is not None:
            unknown = [
                Problem(f"context.selections[{i}]", "is not an order in context.draftOrders")
                for i, ref in enumerate(selections or [])
                if ref not in found
            ]
            if unknown:
                raise HookRequestError(unknown)

    def answer(service_id: str, hook: HookRequest, record: CallRecord) -> tuple[list[Any], list[str]]:
        try:
            imported = reader.from_resources(record.imported, validated=True)
        except BadInputError as exc:
            if isinstance(exc, NotAnAllPatientError):
                return [], []  # no ALL on record: nothing to advise, nothing to check
            # An ALL record that cannot be read is said so, in every service: silence would read
            # as "nothing to worry about".
            problems = [Problem(_in_request(p.field, record.paths), p.problem) for p in exc.problems]
            card = cards.problem_card(hook.hook_instance, problems)
            return [card], ["record-not-usable"]
        if service_id == PATIENT_VIEW_ID:
            alerts = [_alert_in_request(a, record.paths) for a in imported.alerts]
            plan = engine.recommend(imported.facts, extra_alerts=alerts)
            return cards.plan_cards(plan, hook.hook_instance, plan_link=plan_link)
        checked = checks.cards_for(
            imported.facts,
            record.drafts,
            record.medications,
            patient_id=hook.patient_id,
            hook_instance=hook.hook_instance,
            selected=record.selected if service_id == ORDER_SELECT_ID else None,
        )
        return [card for card, _ in checked], [rule_id for _, rule_id in checked]

    @router.post("/cds-services/{service_id}/feedback", summary="Feedback on cards")
    async def feedback(service_id: str, request: Request) -> Any:
        denied = authenticate(request, f"/cds-services/{service_id}/feedback", f"/cds-services/{service_id}")
        if denied is not None:
            return denied
        if service_id not in services:
            return error_response(404, "unknown CDS service", [Problem("service_id", f"no service {service_id!r}")])
        try:
            records = parse_feedback(parse_json_body(await request.body()), service_id, index.as_mapping())
        except (HookRequestError, FeedbackError) as exc:
            return error_response(http_status(exc), "invalid feedback", exc.problems)
        store.add(records)
        log.info("cds %s feedback: %d outcomes stored", service_id, len(records))
        return json_response({"stored": len(records)})

    return router
