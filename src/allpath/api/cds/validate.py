"""The CDS Hooks 2.0 rules for discovery and service responses, as a checker.

Used by the tests on every response the service gives, and available to anyone who wants to check
cards before an EHR sees them. Each fault is a `Problem` whose field is a JSON path
(`cards[2].source.label: is required`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from allpath.facts import Problem

INDICATORS = frozenset({"info", "warning", "critical"})
SELECTION_BEHAVIORS = frozenset({"at-most-one", "any"})
ACTION_TYPES = frozenset({"create", "update", "delete"})
LINK_TYPES = frozenset({"absolute", "smart"})
SUMMARY_LIMIT = 140  # the summary must be shorter than this


def _is_absolute_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlparse(value)
    return parts.scheme in {"http", "https"} and bool(parts.netloc)


def is_uuid(value: Any) -> bool:
    """A string in UUID form (CDS Hooks card and suggestion ids)."""
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _no_null_or_empty(value: Any, path: str, out: list[Problem]) -> None:
    # The spec: JSON elements SHALL NOT be null or empty ("", [], {}); omit them instead.
    if value is None:
        out.append(Problem(path, "must not be null (omit it instead)"))
    elif isinstance(value, str | list | dict) and len(value) == 0:
        out.append(Problem(path, "must not be empty (omit it instead)"))
    elif isinstance(value, dict):
        for key, item in value.items():
            _no_null_or_empty(item, f"{path}.{key}", out)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _no_null_or_empty(item, f"{path}[{index}]", out)


def _non_empty_string(obj: Mapping[str, Any], key: str, path: str, out: list[Problem], *, required: bool) -> None:
    if key not in obj:
        if required:
            out.append(Problem(f"{path}.{key}", "is required"))
        return
    if not isinstance(obj[key], str) or not obj[key].strip():
        out.append(Problem(f"{path}.{key}", "must be a non-empty string"))


def _check_coding(coding: Any, path: str, out: list[Problem], *, display_required: bool) -> None:
    if not isinstance(coding, Mapping):
        out.append(Problem(path, "must be a Coding object"))
        return
    _non_empty_string(coding, "code", path, out, required=True)
    _non_empty_string(coding, "system", path, out, required=True)
    _non_empty_string(coding, "display", path, out, required=display_required)


def _check_action(action: Any, path: str, out: list[Problem]) -> None:
    if not isinstance(action, Mapping):
        out.append(Problem(path, "must be an object"))
        return
    kind = action.get("type")
    if kind not in ACTION_TYPES:
        out.append(Problem(f"{path}.type", f"must be one of {sorted(ACTION_TYPES)}"))
    _non_empty_string(action, "description", path, out, required=True)
    resource = action.get("resource")
    if kind in {"create", "update"}:
        if not isinstance(resource, Mapping) or not isinstance(resource.get("resourceType"), str):
            out.append(Problem(f"{path}.resource", f"a {kind} action needs a FHIR resource with a resourceType"))
    elif kind == "delete" and not isinstance(action.get("resourceId"), str):
        out.append(Problem(f"{path}.resourceId", "a delete action should name the resource (Type/id)"))


def validate_card(card: Any, path: str = "card") -> list[Problem]:
    out: list[Problem] = []
    if not isinstance(card, Mapping):
        return [Problem(path, "must be an object")]
    _no_null_or_empty(dict(card), path, out)
    if "uuid" in card and not is_uuid(card["uuid"]):
        out.append(Problem(f"{path}.uuid", "must be a UUID"))
    summary = card.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        out.append(Problem(f"{path}.summary", "is required (a non-empty string)"))
    elif len(summary) >= SUMMARY_LIMIT:
        out.append(Problem(f"{path}.summary", f"must be under {SUMMARY_LIMIT} characters (has {len(summary)})"))
    if card.get("indicator") not in INDICATORS:
        out.append(Problem(f"{path}.indicator", f"must be one of {sorted(INDICATORS)}"))
    if "detail" in card and not isinstance(card["detail"], str):
        out.append(Problem(f"{path}.detail", "must be a (markdown) string"))
    source = card.get("source")
    if not isinstance(source, Mapping):
        out.append(Problem(f"{path}.source", "is required (an object)"))
    else:
        _non_empty_string(source, "label", f"{path}.source", out, required=True)
        for key in ("url", "icon"):
            if key in source and not _is_absolute_url(source[key]):
                out.append(Problem(f"{path}.source.{key}", "must be an absolute URL"))
        if "topic" in source:
            _check_coding(source["topic"], f"{path}.source.topic", out, display_required=False)
    suggestions = card.get("suggestions")
    behaviour = card.get("selectionBehavior")
    if suggestions is not None:
        if not isinstance(suggestions, list):
            out.append(Problem(f"{path}.suggestions", "must be an array"))
            suggestions = []
        if behaviour not in SELECTION_BEHAVIORS:
            out.append(
                Problem(
                    f"{path}.selectionBehavior", f"is required with suggestions: one of {sorted(SELECTION_BEHAVIORS)}"
                )
            )
        recommended = 0
        for index, suggestion in enumerate(suggestions):
            spath = f"{path}.suggestions[{index}]"
            if not isinstance(suggestion, Mapping):
                out.append(Problem(spath, "must be an object"))
                continue
            _non_empty_string(suggestion, "label", spath, out, required=True)
            if "uuid" in suggestion and not is_uuid(suggestion["uuid"]):
                out.append(Problem(f"{spath}.uuid", "must be a UUID"))
            if "isRecommended" in suggestion:
                if not isinstance(suggestion["isRecommended"], bool):
                    out.append(Problem(f"{spath}.isRecommended", "must be true or false"))
                elif suggestion["isRecommended"]:
                    recommended += 1
            for aindex, action in enumerate(suggestion.get("actions") or []):
                _check_action(action, f"{spath}.actions[{aindex}]", out)
        if behaviour == "at-most-one" and recommended > 1:
            out.append(Problem(f"{path}.suggestions", "at most one suggestion may be recommended with at-most-one"))
    elif behaviour is not None:
        out.append(Problem(f"{path}.selectionBehavior", "is only meaningful with suggestions"))
    for index, reason in enumerate(card.get("overrideReasons") or []):
        _check_coding(reason, f"{path}.overrideReasons[{index}]", out, display_required=True)
    for index, link in enumerate(card.get("links") or []):
        lpath = f"{path}.links[{index}]"
        if not isinstance(link, Mapping):
            out.append(Problem(lpath, "must be an object"))
            continue
        _non_empty_string(link, "label", lpath, out, required=True)
        if not _is_absolute_url(link.get("url")):
            out.append(Problem(f"{lpath}.url", "must be an absolute URL"))
        if link.get("type") not in LINK_TYPES:
            out.append(Problem(f"{lpath}.type", f"must be one of {sorted(LINK_TYPES)}"))
        if "appContext" in link and link.get("type") != "smart":
            out.append(Problem(f"{lpath}.appContext", "is only allowed on smart links"))
    return out


def validate_cds_response(body: Any) -> list[Problem]:
    """Problems with a CDS Service response (`{"cards": [...], "systemActions": [...]}`)."""
    if not isinstance(body, Mapping):
        return [Problem("$", "must be a JSON object")]
    out: list[Problem] = []
    cards = body.get("cards")
    if not isinstance(cards, list):
        return [Problem("cards", "is required (an array, empty when there is no advice)")]
    seen_card: set[str] = set()
    seen_suggestion: set[str] = set()
    for index, card in enumerate(cards):
        out.extend(validate_card(card, f"cards[{index}]"))
        if isinstance(card, Mapping):
            if isinstance(card.get("uuid"), str):
                if card["uuid"] in seen_card:
                    out.append(Problem(f"cards[{index}].uuid", "is not unique in the response"))
                seen_card.add(card["uuid"])
            for sindex, suggestion in enumerate(card.get("suggestions") or []):
                if isinstance(suggestion, Mapping) and isinstance(suggestion.get("uuid"), str):
                    if suggestion["uuid"] in seen_suggestion:
                        out.append(Problem(f"cards[{index}].suggestions[{sindex}].uuid", "is not unique"))
                    seen_suggestion.add(suggestion["uuid"])
    if "systemActions" in body:
        actions = body["systemActions"]
        if not isinstance(actions, list) or not actions:
            out.append(Problem("systemActions", "must be a non-empty array when present"))
        else:
            for index, action in enumerate(actions):
                _check_action(action, f"systemActions[{index}]", out)
    return out


def validate_discovery(body: Any) -> list[Problem]:
    """Problems with a discovery response (`{"services": [...]}`)."""
    if not isinstance(body, Mapping) or not isinstance(body.get("services"), list):
        return [Problem("services", "is required (an array)")]
    out: list[Problem] = []
    ids: set[str] = set()
    for index, service in enumerate(body["services"]):
        path = f"services[{index}]"
        if not isinstance(service, Mapping):
            out.append(Problem(path, "must be an object"))
            continue
        _no_null_or_empty(dict(service), path, out)
        for key in ("hook", "description", "id"):
            _non_empty_string(service, key, path, out, required=True)
        _non_empty_string(service, "title", path, out, required=False)
        if service.get("id") in ids:
            out.append(Problem(f"{path}.id", "is not unique"))
        ids.add(service.get("id"))  # type: ignore[arg-type]
        prefetch = service.get("prefetch")
        if prefetch is not None:
            if not isinstance(prefetch, Mapping):
                out.append(Problem(f"{path}.prefetch", "must be an object of key -> FHIR query"))
            else:
                for key, query in prefetch.items():
                    if not isinstance(query, str) or not query:
                        out.append(Problem(f"{path}.prefetch.{key}", "must be a FHIR query string"))
    return out
