"""Concordance: did patients receive what the knowledge base recommends (and not what it rules out)?

Each measure is a numerator over a denominator, with the patient ids behind both. Denominators
come from the rules that fired for each patient (the cohort evaluation), so a measure follows
the KB when the KB changes; numerators come from the treatments table (`patient_id`, `kind`
agent|procedure, `code` (a KB agent id, generic or brand name, or a procedure code), `date`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from allpath.cohort.staging import CSV_READ_OPTIONS, TableError, first_line
from allpath.facts import Problem
from allpath.knowledge import KnowledgeBase
from allpath.rules.sql import literal

# Procedure codes in the treatments table (allogeneic-sct, palliative-care, ...) are allpath's own
# vocabulary. No external code system is claimed: SNOMED CT or CPT codes for these were not
# confirmed, so none are used.


@dataclass(frozen=True, slots=True)
class Measure:
    """A named quality measure, written as SQL predicates over one row per patient.

    Columns available: `patient_id`, `fired` (rule ids), `agents` (KB agent ids received) and
    `procedures` (procedure codes received).
    """

    id: str
    title: str
    denominator_text: str
    numerator_text: str
    denominator: str
    numerator: str
    better: Literal["higher", "lower"]
    rules: tuple[str, ...] = ()


@dataclass(slots=True)
class MeasureResult:
    measure: Measure
    numerator: int
    denominator: int
    numerator_ids: list[str] = field(default_factory=list)
    denominator_ids: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None


def _fired(rule_id: str) -> str:
    return f"list_contains(fired, {literal(rule_id)})"


def _got(column: str, codes: Sequence[str]) -> str:
    return f"list_has_any({column}, [{', '.join(literal(c) for c in codes)}])"


def default_measures(kb: KnowledgeBase) -> list[Measure]:
    """The five measures of the cohort issue, over this KB's rules and agents."""
    tkis = sorted(a.id for a in kb.agents.values() if "tyrosine kinase inhibitor" in a.drug_class)
    measures = [
        Measure(
            id="ph-positive-tki",
            title="Ph-positive ALL treated with a tyrosine kinase inhibitor",
            denominator_text="patients for whom a TKI is recommended (rule tki-ph-positive)",
            numerator_text=f"of those, patients who received a TKI ({', '.join(tkis)})",
            denominator=_fired("tki-ph-positive"),
            numerator=f"{_fired('tki-ph-positive')} AND {_got('agents', tkis)}",
            better="higher",
            rules=("tki-ph-positive",),
        ),
        Measure(
            id="allo-sct-after-second-remission",
            title="Relapse after a second remission: allogeneic transplant",
            denominator_text="patients for whom a donor transplant is advised "
            "(rule allogeneic-sct-after-second-remission)",
            numerator_text="of those, patients who received an allogeneic transplant (procedure allogeneic-sct)",
            denominator=_fired("allogeneic-sct-after-second-remission"),
            numerator=f"{_fired('allogeneic-sct-after-second-remission')} AND {_got('procedures', ['allogeneic-sct'])}",
            better="higher",
            rules=("allogeneic-sct-after-second-remission",),
        ),
        Measure(
            id="autologous-sct",
            title="Autologous transplants (should be zero)",
            denominator_text="all evaluated patients",
            numerator_text="patients who received an autologous transplant (procedure autologous-sct)",
            denominator="TRUE",
            numerator=_got("procedures", ["autologous-sct"]),
            better="lower",
            rules=("autologous-sct",),
        ),
        Measure(
            id="clofarabine-outside-indication",
            title="Clofarabine outside ages 1 to 21 or before 2 regimens (should be zero)",
            denominator_text="patients who received clofarabine",
            numerator_text="of those, patients for whom the clofarabine rule did not fire "
            "(not relapsed/refractory, outside ages 1 to 21, or fewer than 2 prior regimens)",
            denominator=_got("agents", ["clofarabine"]),
            numerator=f"{_got('agents', ['clofarabine'])} AND NOT {_fired('clofarabine-pediatric-relapse')}",
            better="lower",
            rules=("clofarabine-pediatric-relapse",),
        ),
        Measure(
            id="palliative-care-offered",
            title="Palliative care offered",
            denominator_text="patients for whom palliative care is recommended (rule palliative-care: everyone)",
            numerator_text="of those, patients with palliative care recorded (procedure palliative-care)",
            denominator=_fired("palliative-care"),
            numerator=f"{_fired('palliative-care')} AND {_got('procedures', ['palliative-care'])}",
            better="higher",
            rules=("palliative-care",),
        ),
    ]
    missing = sorted({r for m in measures for r in m.rules} - set(kb.rule_ids))
    if missing:
        raise ValueError(f"the knowledge base lacks rules the measures need: {missing}")
    return measures


def _read(path: str | Path) -> str:
    text = str(path).replace("'", "''")
    if text.lower().endswith((".csv", ".csv.gz")):
        return f"read_csv('{text}', {CSV_READ_OPTIONS})"
    if Path(path).is_dir():
        return f"read_parquet('{text}/*.parquet')"
    return f"read_parquet('{text}')"


def _agent_names(kb: KnowledgeBase) -> list[tuple[str, str]]:
    """(lower-case name as it may appear in a treatments table, KB agent id)."""
    names: dict[str, str] = {}
    for agent in kb.agents.values():
        for name in (agent.id, agent.name, *(agent.brand_names), agent.page_spelling or ""):
            if name:
                names.setdefault(name.lower(), agent.id)
    return sorted(names.items())


def compute(
    results: str | Path,
    treatments: str | Path,
    kb: KnowledgeBase,
    measures: Sequence[Measure] | None = None,
    *,
    patients_csv: str | Path | None = None,
) -> list[MeasureResult]:
    """Every measure over a results table (from `evaluate`) and a treatments table.

    Tables DuckDB cannot read, or that lack a column the measures use, raise `TableError`.
    """
    import duckdb

    try:
        return _compute(results, treatments, kb, measures, patients_csv=patients_csv)
    except duckdb.Error as exc:
        raise TableError([Problem("TABLES", f"results or treatments cannot be used: {first_line(exc)}")]) from None


def _compute(
    results: str | Path,
    treatments: str | Path,
    kb: KnowledgeBase,
    measures: Sequence[Measure] | None,
    *,
    patients_csv: str | Path | None,
) -> list[MeasureResult]:
    import duckdb
    import pyarrow as pa

    measures = list(measures) if measures is not None else default_measures(kb)
    con = duckdb.connect()
    names = _agent_names(kb)
    con.register("agent_names", pa.table({"name": [n for n, _ in names], "agent": [a for _, a in names]}))
    con.execute(f"CREATE TEMP VIEW results AS SELECT * FROM {_read(results)}")
    con.execute(f"CREATE TEMP VIEW treatments_raw AS SELECT * FROM {_read(treatments)}")
    con.execute(
        """
        CREATE TEMP TABLE received AS
        SELECT CAST(t.patient_id AS VARCHAR) AS patient_id,
               list(DISTINCT COALESCE(n.agent, lower(trim(CAST(t.code AS VARCHAR)))))
                 FILTER (WHERE lower(trim(CAST(t.kind AS VARCHAR))) = 'agent') AS agents,
               list(DISTINCT lower(trim(CAST(t.code AS VARCHAR))))
                 FILTER (WHERE lower(trim(CAST(t.kind AS VARCHAR))) = 'procedure') AS procedures
        FROM treatments_raw t
        LEFT JOIN agent_names n ON n.name = lower(trim(CAST(t.code AS VARCHAR)))
        GROUP BY 1
        """
    )
    con.execute(
        """
        CREATE TEMP TABLE patients AS
        SELECT CAST(r.patient_id AS VARCHAR) AS patient_id,
               list_concat(r.recommendations, r.not_recommended, r.alerts) AS fired,
               COALESCE(x.agents, CAST([] AS VARCHAR[])) AS agents,
               COALESCE(x.procedures, CAST([] AS VARCHAR[])) AS procedures
        FROM results r LEFT JOIN received x ON x.patient_id = CAST(r.patient_id AS VARCHAR)
        """
    )
    flags = ", ".join(
        f'({m.denominator}) AS "d{i}", ({m.denominator}) AND ({m.numerator}) AS "n{i}"' for i, m in enumerate(measures)
    )
    con.execute(f"CREATE TEMP TABLE flags AS SELECT patient_id, {flags} FROM patients")
    out: list[MeasureResult] = []
    for i, m in enumerate(measures):
        rows = con.execute(f'SELECT patient_id, "n{i}" FROM flags WHERE "d{i}" ORDER BY patient_id').fetchall()
        out.append(
            MeasureResult(
                measure=m,
                numerator=sum(1 for _, n in rows if n),
                denominator=len(rows),
                numerator_ids=[p for p, n in rows if n],
                denominator_ids=[p for p, _ in rows],
            )
        )
    if patients_csv is not None:
        union = " UNION ALL ".join(
            f'SELECT {literal(m.id)} AS measure_id, patient_id, "n{i}" AS in_numerator FROM flags WHERE "d{i}"'
            for i, m in enumerate(measures)
        )
        target = str(patients_csv).replace("'", "''")
        con.execute(f"COPY ({union} ORDER BY measure_id, patient_id) TO '{target}' (HEADER, DELIMITER ',')")
    con.close()
    return out


def write_csv(results: Sequence[MeasureResult], path: str | Path) -> None:
    """One line per measure: id, title, numerator, denominator, rate, better."""
    import csv

    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["measure_id", "title", "numerator", "denominator", "rate", "better"])
        for r in results:
            rate = "" if r.rate is None else f"{r.rate:.6f}"
            writer.writerow([r.measure.id, r.measure.title, r.numerator, r.denominator, rate, r.measure.better])
