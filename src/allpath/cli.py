"""The `allpath` command line.

Bad input ends with exit status 2 and one line per problem, naming the field
(`age_years: must be >= 0`); never a traceback.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from allpath.cohort.cli import cohort_app
from allpath.engine import Engine
from allpath.explain import render_text
from allpath.facts import FactsError, PatientFacts, Problem
from allpath.knowledge import KnowledgeBase, KnowledgeError, load_kb
from allpath.plan import Plan

app = typer.Typer(
    name="allpath",
    help="Cited treatment options for acute lymphoblastic leukemia (ALL). "
    "Decision support and education, not a substitute for the care team's judgement.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
kb_app = typer.Typer(help="Browse the knowledge base.", no_args_is_help=True)
app.add_typer(kb_app, name="kb")
app.add_typer(cohort_app, name="cohort")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

EXIT_BAD_INPUT = 2


class OutputFormat(StrEnum):
    json = "json"
    text = "text"


class TableFormat(StrEnum):
    table = "table"
    json = "json"


PacksOption = Annotated[
    str | None,
    typer.Option("--packs", help="Comma-separated knowledge packs to load (default: all the default packs)."),
]
ThresholdOption = Annotated[
    float | None,
    typer.Option(
        "--long-remission-months",
        min=0,
        help="Remission length (months) from which a relapse counts as after a 'long' remission.",
    ),
]


def fail_input(problems: list[Problem]) -> NoReturn:
    for problem in problems:
        err.print(str(problem), markup=False, highlight=False)
    raise typer.Exit(EXIT_BAD_INPUT)


def load_knowledge(packs: str | None = None, long_remission_months: float | None = None) -> KnowledgeBase:
    pack_ids = [p.strip() for p in packs.split(",") if p.strip()] if packs else None
    params = {"long_remission_months": long_remission_months} if long_remission_months is not None else None
    try:
        return load_kb(pack_ids, parameters=params)
    except KnowledgeError as exc:
        err.print(f"knowledge base: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from None


def read_json_input(path: str) -> Any:
    """Read JSON from a file or '-' (stdin); unreadable or malformed input is a bad-input exit."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        fail_input([Problem("PATH", f"no such file: {path}")])
    except (OSError, UnicodeDecodeError) as exc:
        fail_input([Problem("PATH", f"cannot read {path}: {exc}")])
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        fail_input([Problem("$", f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")])


def print_plan(plan: Plan, output_format: OutputFormat) -> None:
    if output_format is OutputFormat.json:
        out.print(plan.model_dump_json(indent=2), markup=False, highlight=False)
    else:
        out.print(render_text(plan), markup=False, highlight=False, end="")


@app.command()
def recommend(
    path: Annotated[str, typer.Argument(help="PatientFacts JSON file, or - for standard input.")],
    output_format: Annotated[OutputFormat, typer.Option("--format", help="json or text.")] = OutputFormat.json,
    packs: PacksOption = None,
    long_remission_months: ThresholdOption = None,
) -> None:
    """Recommend cited treatment options for one patient's facts."""
    data = read_json_input(path)
    try:
        facts = PatientFacts.parse(data)
    except FactsError as exc:
        fail_input(exc.problems)
    engine = Engine(load_knowledge(packs, long_remission_months))
    print_plan(engine.recommend(facts), output_format)


@app.command()
def schema(
    which: Annotated[str, typer.Argument(help="facts, plan or all.")] = "all",
) -> None:
    """Print the JSON Schema of PatientFacts (input) and Plan (output)."""
    schemas = {
        "facts": PatientFacts.model_json_schema(),
        "plan": Plan.model_json_schema(mode="serialization"),
    }
    if which == "all":
        out.print(json.dumps(schemas, indent=2), markup=False, highlight=False)
    elif which in schemas:
        out.print(json.dumps(schemas[which], indent=2), markup=False, highlight=False)
    else:
        fail_input([Problem("WHICH", "must be one of facts, plan, all")])


def _emit_rows(title: str, columns: list[str], rows: list[list[str]], output_format: TableFormat) -> None:
    if output_format is TableFormat.json:
        out.print(json.dumps([dict(zip(columns, r, strict=True)) for r in rows], indent=2), markup=False)
        return
    table = Table(title=title, show_lines=False)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    out.print(table)


FormatOption = Annotated[TableFormat, typer.Option("--format", help="table or json.")]


@kb_app.command("agents")
def kb_agents(output_format: FormatOption = TableFormat.table, packs: PacksOption = None) -> None:
    """Every drug the knowledge base names, with brands, class and routes."""
    kb = load_knowledge(packs)
    rows = [
        [a.name, ", ".join(a.brand_names) or "-", a.drug_class, ", ".join(a.routes), ", ".join(a.used_in)]
        for a in kb.agents.values()
    ]
    _emit_rows("Agents", ["name", "brand_names", "drug_class", "routes", "used_in"], rows, output_format)


@kb_app.command("phases")
def kb_phases(output_format: FormatOption = TableFormat.table, packs: PacksOption = None) -> None:
    """The phases of chemotherapy: when, why, where."""
    kb = load_knowledge(packs)
    rows = [[p.id, p.name, p.timing, p.goal, p.setting] for p in kb.phases.values()]
    _emit_rows("Phases", ["id", "name", "timing", "goal", "setting"], rows, output_format)


@kb_app.command("sources")
def kb_sources(output_format: FormatOption = TableFormat.table, packs: PacksOption = None) -> None:
    """The sources the knowledge base cites."""
    kb = load_knowledge(packs)
    rows = [[s.id, s.title, s.publisher, s.approved] for s in kb.sources.values()]
    _emit_rows(f"Sources (knowledge {kb.version})", ["id", "title", "publisher", "approved"], rows, output_format)


@kb_app.command("rules")
def kb_rules(output_format: FormatOption = TableFormat.table, packs: PacksOption = None) -> None:
    """Every rule, with the condition under which it fires."""
    from allpath.rules.tree import describe

    kb = load_knowledge(packs)
    rows = [[r.id, r.kind, describe(kb.conditions[r.id])] for r in kb.rules]
    _emit_rows("Rules", ["id", "kind", "fires when"], rows, output_format)


@app.command()
def demo(
    examples_dir: Annotated[Path, typer.Option(help="Folder of example PatientFacts files.")] = Path("examples"),
    example: Annotated[
        str, typer.Option(help="Which example to print as a text plan.")
    ] = "newly-diagnosed-child-b-cell",
) -> None:
    """Print the text plan for a bundled example and list the examples."""
    files = sorted(examples_dir.glob("*.json"))
    if not files:
        fail_input([Problem("--examples-dir", f"no *.json files in {examples_dir}")])
    chosen = examples_dir / f"{example}.json"
    if not chosen.is_file():
        fail_input([Problem("--example", f"no example named {example!r} in {examples_dir}")])
    engine = Engine(load_knowledge())
    try:
        facts = PatientFacts.parse(json.loads(chosen.read_text(encoding="utf-8")))
    except (FactsError, json.JSONDecodeError) as exc:
        fail_input([Problem(str(chosen), str(exc))])
    print_plan(engine.recommend(facts), OutputFormat.text)
    out.print()
    table = Table(title=f"Examples in {examples_dir} (allpath recommend FILE --format text)")
    for column in ("file", "disease_status", "age", "recommendations"):
        table.add_column(column)
    for file in files:
        try:
            facts = PatientFacts.parse(json.loads(file.read_text(encoding="utf-8")))
        except (FactsError, json.JSONDecodeError):
            continue  # examples/ may hold invalid inputs on purpose; they are not listed
        ids = engine.recommend(facts).recommendation_ids()
        table.add_row(file.name, facts.disease_status, f"{facts.age_years:g}", ", ".join(ids))
    out.print(table)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
