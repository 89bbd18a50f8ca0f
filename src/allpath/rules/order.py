"""The order a `Plan` lists what fired, defined once for the engine and the SQL back ends.

Both turn "which rules fired" into the Plan's three lists; if each sorted on its own, a cohort
run and `recommend` could list the same alerts differently.
"""

from __future__ import annotations

from collections.abc import Sequence

from allpath.knowledge.schema import AlertRule, NotRecommendedRule, RecommendationRule
from allpath.plan import SEVERITY_ORDER


def plan_order(rules: Sequence[RecommendationRule | NotRecommendedRule | AlertRule]) -> dict[str, list[int]]:
    """Positions in `rules` per Plan list: KB order, except alerts, most severe first (KB order within a severity)."""
    alerts = [i for i, r in enumerate(rules) if isinstance(r, AlertRule)]
    alerts.sort(key=lambda i: SEVERITY_ORDER.index(rules[i].severity))  # type: ignore[union-attr]
    return {
        "recommendations": [i for i, r in enumerate(rules) if isinstance(r, RecommendationRule)],
        "not_recommended": [i for i, r in enumerate(rules) if isinstance(r, NotRecommendedRule)],
        "alerts": alerts,
    }
