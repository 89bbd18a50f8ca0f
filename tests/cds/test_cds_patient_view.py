"""Discovery and the patient-view service: cards from the plan, prefetch, fetching, 400 and 412."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from cdskit import FHIR_SERVER, bearer, full_prefetch, hook_request, patient, searchset, token
from tests.factsgen import NOTHING_MISSING

from allpath.api.cds.cards import MISSING_FACTS_KEY, SUMMARY_KEY, card_uuid
from allpath.api.cds.prefetch import PREFETCH
from allpath.api.cds.validate import validate_discovery
from allpath.facts import PatientFacts, Problem
from allpath.fhir import FhirInputError
from allpath.fhir.importer import NotAnAllPatientInputError
from allpath.plan import Alert, Citation

SERVICE = "allpath-patient-view"
AUTH = {
    "access_token": "opaque-fhir-token",
    "token_type": "Bearer",
    "expires_in": 300,
    "scope": "patient/*.read",
    "subject": "allpath",
}


def condition(pid: str = "p1", rid: str = "c1") -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": rid,
        "subject": {"reference": f"Patient/{pid}"},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "91857003"}], "text": "ALL"},
    }


def vital(pid: str = "p1", rid: str = "hr") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "subject": {"reference": f"Patient/{pid}"},
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
    }


def test_discovery_lists_the_three_services_with_their_prefetch_templates(client, rsa):
    response = client.get("/cds-services", headers=bearer(token(rsa)))
    assert response.status_code == 200
    body = response.json()
    assert validate_discovery(body) == []
    services = {s["id"]: s for s in body["services"]}
    assert services["allpath-patient-view"]["hook"] == "patient-view"
    assert services["allpath-order-select"]["hook"] == "order-select"
    assert services["allpath-order-sign"]["hook"] == "order-sign"
    for service in services.values():
        queried = {q.split("/")[0].split("?")[0] for q in service["prefetch"].values()}
        assert queried == {
            "Patient",
            "Condition",
            "Observation",
            "MedicationRequest",
            "MedicationAdministration",
            "MedicationStatement",
            "Procedure",
        }
        assert all("{{context.patientId}}" in q for q in service["prefetch"].values())


def summary_card(cards: list[dict[str, Any]]) -> dict[str, Any]:
    (card,) = [c for c in cards if c["source"]["topic"]["code"] == SUMMARY_KEY]
    return card


def test_patient_view_is_the_warnings_then_one_summary_then_the_missing_facts(call, engine, importer):
    body = hook_request(prefetch=full_prefetch("p1"))
    response = call(SERVICE, body)
    assert response.status_code == 200
    cards = response.json()["cards"]
    plan = engine.recommend(importer.facts["p1"])
    warnings = [a.id for a in plan.alerts if a.severity in ("critical", "warning")]
    assert plan.missing_facts and len(warnings) <= 3
    expected = [*warnings, SUMMARY_KEY, MISSING_FACTS_KEY]
    assert [c["uuid"] for c in cards] == [card_uuid(body["hookInstance"], key) for key in expected]
    # Nothing the plan says is lost: every option, "not advised" item and note is in the summary.
    detail = summary_card(cards)["detail"]
    for item in [*plan.recommendations, *plan.not_recommended]:
        assert f"**{item.title}**" in detail
    for alert in plan.alerts:
        if alert.severity == "info":
            assert " ".join(alert.message.split()) in detail


def test_ph_positive_patient_sees_the_tki_option_with_its_source(call):
    card = summary_card(call(SERVICE, hook_request(prefetch=full_prefetch("p1"))).json()["cards"])
    assert card["indicator"] == "info"
    assert "tyrosine kinase inhibitor" in card["detail"].lower()
    assert "Targeted therapy" in card["detail"]
    assert "Leukemia - Acute Lymphocytic - ALL: Treatment Options" in card["detail"]
    assert card["source"]["url"].startswith("https://")
    assert any(link["url"].startswith("https://www.cancer.net/") for link in card["links"])


def test_a_child_does_not_get_the_tki_option(call):
    cards = call(SERVICE, hook_request(pid="child", prefetch=full_prefetch("child"))).json()["cards"]
    assert "tyrosine kinase inhibitor" not in summary_card(cards)["detail"].lower()


def test_importer_alerts_are_ranked_with_the_plans_alerts_by_severity(call, engine, importer):
    importer.alerts.append(
        Alert(
            id="fhir-ph-status-unknown",
            severity="warning",
            message="Philadelphia chromosome status is not in the record. Targeted options may be missed.",
            citations=[Citation(source_id="cancernet-all-2017", section="Targeted therapy")],
        )
    )
    cards = call(SERVICE, hook_request(prefetch=full_prefetch("p1"))).json()["cards"]
    plan_alerts = engine.recommend(importer.facts["p1"]).alerts
    more_severe = sum(1 for a in plan_alerts if a.severity == "critical")
    shown = cards[more_severe]
    assert shown["indicator"] == "warning"
    assert shown["summary"] == "Philadelphia chromosome status is not in the record."
    assert [c["indicator"] for c in cards[: len(plan_alerts) + 1]] == sorted(
        (c["indicator"] for c in cards[: len(plan_alerts) + 1]), key=["critical", "warning", "info"].index
    )


def test_card_uuids_are_stable_within_a_hook_call_and_differ_between_calls(call):
    body = hook_request(prefetch=full_prefetch("p1"))
    first = [c["uuid"] for c in call(SERVICE, body).json()["cards"]]
    again = [c["uuid"] for c in call(SERVICE, body).json()["cards"]]
    other = [c["uuid"] for c in call(SERVICE, hook_request(prefetch=full_prefetch("p1"))).json()["cards"]]
    assert first == again
    assert not set(first) & set(other)


def test_prefetched_resources_reach_the_importer(call, importer):
    prefetch = full_prefetch("p1", conditions=(condition(),))
    assert call(SERVICE, hook_request(prefetch=prefetch)).status_code == 200
    types = sorted(r["resourceType"] for r in importer.calls[-1])
    assert types == ["Condition", "Patient"]


def test_resources_the_templates_did_not_ask_for_are_not_imported(call, importer):
    prefetch = full_prefetch("p1", conditions=(condition(), {**condition(rid="flu"), "code": {"text": "Influenza"}}))
    prefetch["observations"] = searchset(vital(rid="hr1"), vital(rid="hr2"))
    assert call(SERVICE, hook_request(prefetch=prefetch)).status_code == 200
    assert sorted(r["id"] for r in importer.calls[-1]) == ["c1", "p1"]


def test_only_medication_orders_coded_with_a_kb_drug_are_imported(call, importer):
    from cdskit import medication_order

    prefetch = full_prefetch(
        "p1", medications=(medication_order("plain", name="acetaminophen"), medication_order("tki", rxnorm="282388"))
    )
    assert call(SERVICE, hook_request(prefetch=prefetch)).status_code == 200
    assert sorted(r["id"] for r in importer.calls[-1]) == ["p1", "tki"]


def test_observation_template_asks_only_for_the_codes_the_importer_reads():
    query = PREFETCH["observations"]
    assert "http://loinc.org|69380-4" in query
    assert "8867-4" not in query


def test_null_prefetch_means_nothing_on_record(call, importer):
    prefetch = full_prefetch("p1")
    prefetch["procedures"] = None
    prefetch["medications"] = None
    assert call(SERVICE, hook_request(prefetch=prefetch)).status_code == 200
    assert [r["resourceType"] for r in importer.calls[-1]] == ["Patient"]


def test_unusable_record_gives_one_explaining_card(call):
    response = call(SERVICE, hook_request(pid="p9", prefetch=full_prefetch("p9")))
    assert response.status_code == 200
    (card,) = response.json()["cards"]
    assert card["indicator"] == "info"
    assert "`Patient.birthDate`: is required" in card["detail"]


# --- missing prefetch: fetch from the EHR's FHIR server, or 412 ---------------------------


def test_missing_prefetch_without_fhir_server_is_412(call):
    prefetch = full_prefetch("p1")
    del prefetch["observations"]
    response = call(SERVICE, hook_request(prefetch=prefetch))
    assert response.status_code == 412
    body = response.json()
    assert body["error"].startswith("precondition failed")
    assert [d["field"] for d in body["details"]] == ["prefetch.observations"]


def test_no_prefetch_at_all_without_fhir_server_is_412_naming_every_key(call):
    response = call(SERVICE, hook_request())
    assert response.status_code == 412
    assert {d["field"] for d in response.json()["details"]} == {f"prefetch.{k}" for k in PREFETCH}


class FakeEhr:
    """A FHIR server for `httpx.MockTransport`: answers the templates' queries for one patient."""

    def __init__(self, pid: str = "p1", *, status: int = 200, paged: bool = False):
        self.pid = pid
        self.status = status
        self.paged = paged
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.status != 200:
            return httpx.Response(self.status, json={"resourceType": "OperationOutcome"})
        path = request.url.path.removeprefix("/fhir/")
        if path == f"Patient/{self.pid}":
            return httpx.Response(200, json=patient(self.pid))
        if path == "Condition" and self.paged and request.url.params.get("page") != "2":
            return httpx.Response(
                200,
                json=searchset(
                    condition(self.pid, "c1"), next_url=f"{FHIR_SERVER}/Condition?patient={self.pid}&page=2"
                ),
            )
        if path == "Condition":
            return httpx.Response(200, json=searchset(condition(self.pid, "c2")))
        return httpx.Response(200, json=searchset())


def test_missing_prefetch_is_fetched_from_the_fhir_server_with_the_bearer_token(make_client, rsa, importer):
    ehr = FakeEhr(paged=True)
    client = make_client(http_transport=httpx.MockTransport(ehr))
    endpoint = f"/cds-services/{SERVICE}"
    body = hook_request(fhirServer=FHIR_SERVER, fhirAuthorization=AUTH)
    response = client.post(endpoint, json=body, headers=bearer(token(rsa, endpoint)))
    assert response.status_code == 200, response.text
    assert {r.headers["authorization"] for r in ehr.requests} == {"Bearer opaque-fhir-token"}
    paths = sorted(r.url.path for r in ehr.requests)
    assert paths == sorted(
        [
            "/fhir/Patient/p1",
            "/fhir/Condition",
            "/fhir/Condition",
            "/fhir/Observation",
            "/fhir/MedicationRequest",
            "/fhir/MedicationAdministration",
            "/fhir/MedicationStatement",
            "/fhir/Procedure",
        ]
    )
    assert sorted(r.get("id") for r in importer.calls[-1] if r["resourceType"] == "Condition") == ["c1", "c2"]


def test_only_missing_keys_are_fetched(make_client, rsa):
    ehr = FakeEhr()
    client = make_client(http_transport=httpx.MockTransport(ehr))
    prefetch = full_prefetch("p1")
    del prefetch["procedures"]
    endpoint = f"/cds-services/{SERVICE}"
    body = hook_request(prefetch=prefetch, fhirServer=FHIR_SERVER, fhirAuthorization=AUTH)
    assert client.post(endpoint, json=body, headers=bearer(token(rsa, endpoint))).status_code == 200
    assert [r.url.path for r in ehr.requests] == ["/fhir/Procedure"]


@pytest.mark.parametrize("status", [401, 404, 500])
def test_fhir_server_error_is_412(make_client, rsa, status):
    client = make_client(http_transport=httpx.MockTransport(FakeEhr(status=status)))
    endpoint = f"/cds-services/{SERVICE}"
    body = hook_request(fhirServer=FHIR_SERVER, fhirAuthorization=AUTH)
    response = client.post(endpoint, json=body, headers=bearer(token(rsa, endpoint)))
    assert response.status_code == 412
    assert f"HTTP {status}" in response.json()["details"][0]["problem"]


def test_unreachable_fhir_server_is_412(make_client, rsa):
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client = make_client(http_transport=httpx.MockTransport(refuse))
    endpoint = f"/cds-services/{SERVICE}"
    body = hook_request(fhirServer=FHIR_SERVER, fhirAuthorization=AUTH)
    response = client.post(endpoint, json=body, headers=bearer(token(rsa, endpoint)))
    assert response.status_code == 412
    assert response.json()["details"][0]["field"] == "fhirServer"


def test_plain_http_fhir_server_is_not_sent_the_token(make_client, rsa):
    ehr = FakeEhr()
    client = make_client(http_transport=httpx.MockTransport(ehr))
    endpoint = f"/cds-services/{SERVICE}"
    body = hook_request(fhirServer="http://ehr.example.org/fhir", fhirAuthorization=AUTH)
    assert client.post(endpoint, json=body, headers=bearer(token(rsa, endpoint))).status_code == 412
    assert ehr.requests == []


def test_next_link_to_another_host_is_not_followed(make_client, rsa):
    seen: list[str] = []

    def ehr(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.host)
        return httpx.Response(200, json=searchset(next_url="https://evil.example.net/steal"))

    client = make_client(http_transport=httpx.MockTransport(ehr))
    prefetch = full_prefetch("p1")
    del prefetch["conditions"]
    endpoint = f"/cds-services/{SERVICE}"
    body = hook_request(prefetch=prefetch, fhirServer=FHIR_SERVER, fhirAuthorization=AUTH)
    assert client.post(endpoint, json=body, headers=bearer(token(rsa, endpoint))).status_code == 412
    assert seen == ["ehr.example.org"]


def test_prefetch_with_a_next_page_and_no_server_is_412(call):
    prefetch = full_prefetch("p1")
    prefetch["conditions"] = searchset(condition(), next_url=f"{FHIR_SERVER}/Condition?page=2")
    assert call(SERVICE, hook_request(prefetch=prefetch)).status_code == 412


# --- invalid hook requests: 400 with a JSON reason naming the field -----------------------


def _details(response: Any) -> dict[str, str]:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"]
    return {d["field"]: d["problem"] for d in body["details"]}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda b: b.pop("hook"), "hook"),
        (lambda b: b.update(hook="order-sign"), "hook"),
        (lambda b: b.pop("hookInstance"), "hookInstance"),
        (lambda b: b.update(hookInstance="not-a-uuid"), "hookInstance"),
        (lambda b: b.pop("context"), "context"),
        (lambda b: b["context"].pop("patientId"), "context.patientId"),
        (lambda b: b["context"].update(patientId="../Patient/x"), "context.patientId"),
        (lambda b: b["context"].pop("userId"), "context.userId"),
        (lambda b: b["context"].update(userId="dr-1"), "context.userId"),
        (lambda b: b.update(fhirServer="ftp://x"), "fhirServer"),
        (lambda b: b.update(fhirAuthorization=AUTH), "fhirServer"),
        (
            lambda b: b.update(fhirServer=FHIR_SERVER, fhirAuthorization={**AUTH, "token_type": "MAC"}),
            "fhirAuthorization.token_type",
        ),
        (
            lambda b: b.update(fhirServer=FHIR_SERVER, fhirAuthorization={"access_token": "t"}),
            "fhirAuthorization.scope",
        ),
        (lambda b: b.update(prefetch=[]), "prefetch"),
        (lambda b: b["prefetch"].update(patient=patient("someone-else")), "prefetch.patient.id"),
        (
            lambda b: b["prefetch"].update(patient={"resourceType": "Practitioner", "id": "p1"}),
            "prefetch.patient.resourceType",
        ),
        (lambda b: b["prefetch"].update(conditions=condition()), "prefetch.conditions.resourceType"),
        (
            lambda b: b["prefetch"].update(conditions=searchset(condition(pid="other"))),
            "prefetch.conditions.entry[0].resource.subject.reference",
        ),
        (lambda b: b["prefetch"].update(observations="Observation?patient=p1"), "prefetch.observations"),
    ],
)
def test_invalid_hook_request_is_400_naming_the_field(call, change, field):
    body = hook_request(prefetch=full_prefetch("p1"))
    change(body)
    assert field in _details(call(SERVICE, body))


def test_malformed_json_is_400(client, rsa):
    endpoint = f"/cds-services/{SERVICE}"
    response = client.post(
        endpoint, content=b"{not json", headers={**bearer(token(rsa, endpoint)), "Content-Type": "application/json"}
    )
    assert "malformed JSON" in _details(response)["$"]


@pytest.mark.parametrize(
    "raw",
    [b'{"hook": NaN}', b'{"hook": "patient-view", "x": "\\ud800"}', b"\xff\xfe{}"],
    ids=["nan", "lone-surrogate", "not-utf8"],
)
def test_json_that_only_a_lenient_parser_reads_is_a_400_naming_the_body(client, rsa, raw):
    # NaN is not JSON; a lone surrogate could not be written back out; bytes that are not UTF-8 are not text.
    endpoint = f"/cds-services/{SERVICE}"
    response = client.post(
        endpoint, content=raw, headers={**bearer(token(rsa, endpoint)), "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert "malformed JSON" in _details(response)["$"]


def test_body_that_is_not_an_object_is_400(call):
    assert "$" in _details(call(SERVICE, [1, 2]))


def test_all_problems_are_reported_at_once(call):
    details = _details(call(SERVICE, {"hook": "patient-view"}))
    assert {"hookInstance", "context"} <= set(details)


def test_unknown_service_is_404(call):
    response = call("no-such-service", hook_request())
    assert response.status_code == 404
    assert response.json()["details"][0]["field"] == "service_id"


def test_logs_carry_no_patient_data(call, caplog):
    prefetch = full_prefetch("p1")
    prefetch["patient"] = {**patient("p1"), "name": [{"family": "Quixote-Marsh", "given": ["Dulcinea"]}]}
    with caplog.at_level(logging.DEBUG):
        assert call(SERVICE, hook_request(prefetch=prefetch)).status_code == 200
        call(SERVICE, hook_request(pid="p1", prefetch={"patient": patient("other")}))
    text = caplog.text
    assert "allpath-patient-view: 200" in text
    for secret in ("Quixote", "Dulcinea", "1980-05-01", "p1"):
        assert secret not in text


def sharpen_cards(cards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in cards if c["source"]["topic"]["code"] == "missing-facts"]


def test_patient_view_gives_one_info_card_listing_every_missing_fact(call, engine, importer):
    importer.facts["lineage-unknown"] = PatientFacts.parse(
        {"age_years": 8, "disease_status": "newly_diagnosed", "ph_status": "negative"}
    )
    body = hook_request(pid="lineage-unknown", prefetch=full_prefetch("lineage-unknown"))
    cards = call(SERVICE, body).json()["cards"]  # `call` checks every card against the spec's rules
    [card] = sharpen_cards(cards)
    plan = engine.recommend(importer.facts["lineage-unknown"])
    assert len(plan.missing_facts) > 1  # several facts, still one card
    assert card is cards[-1]
    assert card["indicator"] == "info"
    assert card["uuid"] == card_uuid(body["hookInstance"], "missing-facts")
    assert len(card["summary"]) < 140
    assert card["summary"].startswith(f"{len(plan.missing_facts)} unknown facts could change these options")
    for m in plan.missing_facts:
        assert f"(`{m.field}`) would change:" in card["detail"]
    lineage = next(line for line in card["detail"].splitlines() if "(`lineage`)" in line)
    assert "**Whether the leukemia is B-cell or T-cell**" in lineage
    assert "Nelarabine for T-cell ALL" in lineage
    assert card["source"]["label"].startswith(f"allpath {engine.kb.version}: ")
    assert card["source"]["url"].startswith("https://")


def test_patient_view_gives_no_missing_facts_card_when_no_unknown_fact_matters(call, engine, importer):
    importer.facts["all-known"] = PatientFacts.parse(NOTHING_MISSING)
    assert engine.recommend(importer.facts["all-known"]).missing_facts == []
    cards = call(SERVICE, hook_request(pid="all-known", prefetch=full_prefetch("all-known"))).json()["cards"]
    assert cards and sharpen_cards(cards) == []


NO_ALL = Problem("Condition", "no Condition coded as ALL (ICD-10-CM C91.0x) and no allpath disease_status Observation")


def test_not_an_all_patient_is_decided_by_the_error_type_not_its_wording(call, importer, monkeypatch):
    def raise_(error: Exception) -> Any:
        def from_resources(resources: list[dict[str, Any]], *, validated: bool = False) -> Any:
            raise error

        return from_resources

    # The same words under a plain input error: the record is unusable, and the card says why.
    monkeypatch.setattr(importer, "from_resources", raise_(FhirInputError([NO_ALL])))
    (card,) = call(SERVICE, hook_request(prefetch=full_prefetch("p1"))).json()["cards"]
    assert "no Condition coded as ALL" in card["detail"]

    # The importer's not-an-ALL-patient type: nothing to advise, whatever the wording.
    monkeypatch.setattr(importer, "from_resources", raise_(NotAnAllPatientInputError([Problem("x", "y")])))
    response = call(SERVICE, hook_request(prefetch=full_prefetch("p1")))
    assert response.status_code == 200 and response.json()["cards"] == []
