"""The `allpath` command line.

Bad input ends with exit status 2 and one line per problem, naming the field
(`age_years: must be >= 0`); never a traceback.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from allpath.cohort.cli import EngineName, cohort_app
from allpath.engine import Engine
from allpath.explain import render_text
from allpath.facts import FactsError, PatientFacts, Problem
from allpath.knowledge import KnowledgeBase, KnowledgeError, available_packs, load_kb
from allpath.plan import Plan
from allpath.settings import KnowledgeSettings, Settings, SettingsError

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


def _print_version(value: bool) -> None:
    if value:
        from allpath import __version__

        out.print(f"allpath {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.", callback=_print_version, is_eager=True),
    ] = False,
) -> None:
    """Cited treatment options for acute lymphoblastic leukemia (ALL)."""


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
    unknown = [p for p in pack_ids or [] if p not in available_packs()]
    if unknown:
        # A pack the user named that does not exist is bad input (exit 2); a shipped pack that
        # fails to load is a broken installation (exit 1, below).
        known = ", ".join(available_packs())
        fail_input([Problem("packs", f"no knowledge pack named {p!r} (packs: {known})") for p in unknown])
    if long_remission_months is None:
        # The option wins; unset, ALLPATH_LONG_REMISSION_MONTHS (load_kb never reads the environment).
        long_remission_months = _knowledge_settings().long_remission_months
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


def print_plan(plan: Plan, output_format: OutputFormat, kb: KnowledgeBase | None = None) -> None:
    if output_format is OutputFormat.json:
        out.print(plan.model_dump_json(indent=2), markup=False, highlight=False)
    else:
        out.print(render_text(plan, kb), markup=False, highlight=False, end="")


FhirOption = Annotated[
    str | None, typer.Option("--fhir", help="Read the patient from a FHIR R4 Bundle (JSON file, or - for stdin).")
]
AsOfOption = Annotated[
    str | None, typer.Option("--as-of", help="Date (YYYY-MM-DD) at which age is worked out from a FHIR Bundle.")
]


@app.command()
def recommend(
    path: Annotated[str | None, typer.Argument(help="PatientFacts JSON file, or - for standard input.")] = None,
    output_format: Annotated[OutputFormat, typer.Option("--format", help="json or text.")] = OutputFormat.json,
    packs: PacksOption = None,
    long_remission_months: ThresholdOption = None,
    fhir: FhirOption = None,
    as_of: AsOfOption = None,
) -> None:
    """Recommend cited treatment options for one patient's facts (or a FHIR Bundle with --fhir)."""
    if fhir is not None:
        if path is not None:
            fail_input([Problem("PATH", "give either a facts file or --fhir BUNDLE, not both")])
        engine = Engine(load_knowledge(packs, long_remission_months))
        imported = read_fhir_bundle(fhir, as_of, engine.kb)
        print_plan(engine.recommend(imported.facts, extra_alerts=imported.alerts), output_format, engine.kb)
        return
    if path is None:
        fail_input([Problem("PATH", "a facts file (or - for stdin) is required, or --fhir BUNDLE")])
    data = read_json_input(path)
    try:
        facts = PatientFacts.parse(data)
    except FactsError as exc:
        fail_input(exc.problems)
    engine = Engine(load_knowledge(packs, long_remission_months))
    print_plan(engine.recommend(facts), output_format, engine.kb)


def _parse_as_of(as_of: str | None) -> Any:
    import datetime as dt

    if as_of is None:
        return None
    try:
        return dt.date.fromisoformat(as_of)
    except ValueError:
        fail_input([Problem("--as-of", f"must be a date YYYY-MM-DD, got {as_of!r}")])


def read_fhir_bundle(path: str, as_of: str | None, kb: KnowledgeBase) -> Any:
    """Import a FHIR Bundle file; invalid FHIR is a bad-input exit naming the resource and element."""
    return read_fhir_bundle_data(read_json_input(path), as_of, kb)


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


class DiffFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


@kb_app.command("diff")
def kb_diff(
    old: Annotated[str, typer.Argument(help="The pack(s) before, comma-separated.")] = "base",
    new: Annotated[str, typer.Argument(help="The pack(s) loaded on top of them, comma-separated.")] = "updates-2026",
    output_format: Annotated[DiffFormat, typer.Option("--format", help="table, json or markdown.")] = DiffFormat.table,
) -> None:
    """What the later pack(s) add, change and flag, compared with the earlier ones."""
    from allpath.knowledge.diff import diff_kbs, rows, to_json, to_markdown
    from allpath.rules.tree import describe

    old_ids = [p.strip() for p in old.split(",") if p.strip()]
    new_ids = old_ids + [p.strip() for p in new.split(",") if p.strip() and p.strip() not in old_ids]
    diff = diff_kbs(load_knowledge(",".join(old_ids)), load_knowledge(",".join(new_ids)))
    if output_format is DiffFormat.json:
        typer.echo(json.dumps(to_json(diff, describe), indent=2))
    elif output_format is DiffFormat.markdown:
        typer.echo(to_markdown(diff, describe, f"allpath kb diff {old} {new} --format markdown"), nl=False)
    else:
        for title, (columns, body) in rows(diff, describe).items():
            table = Table(title=title, show_lines=True)
            for i, column in enumerate(columns):
                table.add_column(column, overflow="fold", no_wrap=i == 0)
            for row in body:
                table.add_row(*row)
            if not body:
                table.add_row(*(["none"] + [""] * (len(columns) - 1)))
            out.print(table)


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
    print_plan(engine.recommend(facts), OutputFormat.text, engine.kb)
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


fhir_app = typer.Typer(help="FHIR R4: export the knowledge base as a PlanDefinition, $apply it.", no_args_is_help=True)
app.add_typer(fhir_app, name="fhir")


def _write_json(data: Any, out_path: Path | None) -> None:
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if out_path is None:
        out.print(text, markup=False, highlight=False)
    else:
        try:
            out_path.write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            fail_input([Problem("--out", f"cannot write {out_path}: {exc.strerror or exc}")])


OutOption = Annotated[Path | None, typer.Option("--out", help="Write to this file instead of standard output.")]


@fhir_app.command("plandefinition")
def fhir_plandefinition(
    packs: PacksOption = None, long_remission_months: ThresholdOption = None, out_path: OutOption = None
) -> None:
    """The knowledge base as a FHIR PlanDefinition (FHIRPath conditions over a facts Parameters resource)."""
    from allpath.fhir.export import plan_definition

    _write_json(plan_definition(load_knowledge(packs, long_remission_months)), out_path)


@fhir_app.command("apply")
def fhir_apply(
    path: Annotated[str | None, typer.Argument(help="PatientFacts JSON file, or - for standard input.")] = None,
    fhir: FhirOption = None,
    as_of: AsOfOption = None,
    packs: PacksOption = None,
    long_remission_months: ThresholdOption = None,
    out_path: OutOption = None,
) -> None:
    """$apply: facts (or a FHIR Bundle with --fhir) -> a CarePlan holding a RequestGroup of cited options."""
    from allpath.fhir.export import care_plan, patient_reference

    engine = Engine(load_knowledge(packs, long_remission_months))
    if fhir is not None:
        if path is not None:
            fail_input([Problem("PATH", "give either a facts file or --fhir BUNDLE, not both")])
        bundle = read_json_input(fhir)
        imported = read_fhir_bundle_data(bundle, as_of, engine.kb)
        _write_json(care_plan(engine, imported.facts, imported=imported, subject=patient_reference(bundle)), out_path)
        return
    if path is None:
        fail_input([Problem("PATH", "a facts file (or - for stdin) is required, or --fhir BUNDLE")])
    try:
        facts = PatientFacts.parse(read_json_input(path))
    except FactsError as exc:
        fail_input(exc.problems)
    _write_json(care_plan(engine, facts), out_path)


def read_fhir_bundle_data(data: Any, as_of: str | None, kb: KnowledgeBase) -> Any:
    """Read the Bundle with the knowledge base the plan will come from (its drug codes, its sources)."""
    from allpath.fhir import FhirInputError, Importer

    try:
        return Importer(kb).from_bundle(data, as_of=_parse_as_of(as_of))
    except FhirInputError as exc:
        fail_input(exc.problems)


# --- `allpath cohort evaluate`: declared here because NDJSON input needs allpath.fhir -------------
# allpath.cohort and allpath.fhir are sibling layers that may not import each other (import-linter);
# the command that accepts both a facts table and a FHIR export lives above them.


@cohort_app.command("evaluate")
def cohort_evaluate(
    source: Annotated[
        Path,
        typer.Argument(
            help="Facts table (.csv or .parquet: patient_id + PatientFacts fields), or a FHIR Bulk Data export "
            "(a folder of .ndjson / .ndjson.gz files, or one such file)."
        ),
    ],
    out_path: Annotated[Path, typer.Option("--out", help="Results file (.parquet; a directory on Spark).")],
    engine: Annotated[EngineName, typer.Option(help="duckdb (embedded) or spark.")] = EngineName.duckdb,
    master: Annotated[
        str | None, typer.Option(help="Spark master URL (default: local[2]); only with --engine spark.")
    ] = None,
    rejects: Annotated[
        Path | None, typer.Option(help="Where to set aside bad facts-table rows (default: next to --out).")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="FHIR export only: date (YYYY-MM-DD) at which ages are worked out (default: today)."
        ),
    ] = None,
) -> None:
    """Per patient: the fired recommendation ids, not-recommended ids and alerts."""
    import datetime as dt

    from allpath import bulk
    from allpath.cohort.cli import SHOWN_PROBLEMS, evaluate_table, show_problems
    from allpath.fhir import Importer

    if not source.exists():
        fail_input([Problem("SOURCE", f"no such file or folder: {source}")])
    if not bulk.is_export(source):
        if source.is_dir() and not any(source.rglob("*.parquet")):
            fail_input([Problem("SOURCE", f"no .ndjson, .ndjson.gz or .parquet files in {source}")])
        if as_of is not None:
            fail_input([Problem("--as-of", "only applies to a FHIR NDJSON export (ages in a facts table are given)")])
        evaluate_table(source, out_path, engine, master, rejects)
        return
    day = _parse_as_of(as_of) or dt.date.today()
    try:
        # The lines wait beside the results rather than in /tmp, often a small RAM disk.
        staged = bulk.stage_export(
            source, out_path, as_of=day, importer=Importer(load_knowledge()), work_dir=out_path.parent
        )
    except bulk.ExportError as exc:
        fail_input(exc.problems)
    problems = [str(p) for p in [*staged.line_problems, *staged.patient_problems][:SHOWN_PROBLEMS]]
    show_problems(problems, staged.problem_count)
    not_read = ", ".join(f"{kind} x{n}" for kind, n in sorted(staged.not_read.items()))
    lines = [
        f"FHIR export: {staged.files} files, {staged.lines} lines, {staged.patients} patients"
        f" (ages at {day.isoformat()})",
        f"  {staged.mapped} patients mapped -> {staged.facts} (import alerts: {staged.alerts})",
        f"  {staged.patients_rejected} patients set aside -> {staged.patient_rejects}",
        f"  {staged.lines_rejected} lines set aside -> {staged.line_rejects}",
    ]
    if not_read:
        lines.append(f"  not read (no fact comes from them): {not_read}")
    out.print("\n".join(lines), markup=False, highlight=False)
    evaluate_table(staged.facts, out_path, engine, master, rejects)


# --- service: `allpath serve`, `allpath db ...` ------------------------------------------------

db_app = typer.Typer(help="The service database: migrate it, seed the demo.", no_args_is_help=True)
app.add_typer(db_app, name="db")
DatabaseOption = Annotated[
    str | None,
    typer.Option("--database-url", help="SQLAlchemy URL (default: $ALLPATH_DATABASE_URL or sqlite:///./allpath.db)."),
]


def _service_settings(database_url: str | None) -> Settings:
    """Every `ALLPATH_*` variable, read once here; a bad value is exit 2 naming the variable."""
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        fail_input([Problem("environment", str(exc))])
    return settings.with_database_url(database_url) if database_url else settings


def _knowledge_settings() -> KnowledgeSettings:
    """That section alone, so that `allpath recommend` does not fail on a bad service variable."""
    try:
        section: KnowledgeSettings = KnowledgeSettings.from_env()
    except SettingsError as exc:
        fail_input([Problem("environment", str(exc))])
    return section


@db_app.command("upgrade")
def db_upgrade(database_url: DatabaseOption = None) -> None:
    """Migrate the database to the latest schema."""
    from allpath.store import make_engine, upgrade
    from allpath.store.migrate import current_revision

    settings = _service_settings(database_url)
    engine = make_engine(settings.database.url, sqlite_synchronous=settings.database.sqlite_synchronous)
    try:
        with _database_reachable():
            upgrade(engine)
            out.print(f"database at revision {current_revision(engine)}", markup=False, highlight=False)
    finally:
        engine.dispose()


@contextmanager
def _database_reachable() -> Iterator[None]:
    """A database that cannot be opened is a configuration problem: one line and exit 2, no traceback."""
    from sqlalchemy.exc import OperationalError

    try:
        yield
    except OperationalError as exc:
        # The driver's message, not SQLAlchemy's statement dump (the URL may carry a password).
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else "cannot connect"
        fail_input([Problem("database_url", f"cannot open the database: {reason}")])


@db_app.command("seed-demo")
def db_seed_demo(database_url: DatabaseOption = None) -> None:
    """Create FAKE demo accounts and patients (once), and print the demo log-ins."""
    from allpath.store import make_engine, make_sessionmaker, upgrade
    from allpath.store.demo import seed_demo

    settings = _service_settings(database_url)
    engine = make_engine(settings.database.url, sqlite_synchronous=settings.database.sqlite_synchronous)
    try:
        with _database_reachable():
            upgrade(engine)
            with make_sessionmaker(engine)() as session:
                result = seed_demo(session)
    finally:
        engine.dispose()
    if result.created:
        out.print(f"demo data created: {len(result.patients)} fictional patients", markup=False)
    else:
        out.print("demo data already present (nothing changed)", markup=False)
    out.print("Demo log-ins (FAKE accounts, for this local demo only):", markup=False)
    for username, (role, password, patient_id) in result.logins.items():
        linked = f"  (sees patient {patient_id} only)" if patient_id else ""
        out.print(f"  {role:<9}  user {username:<15}  password {password}{linked}", markup=False, highlight=False)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free port).")] = 8000,
    database_url: DatabaseOption = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    cds_only: Annotated[
        bool, typer.Option("--cds-only", help="Serve only the CDS Hooks endpoints (/cds-services).")
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="Worker processes (default: the machine's cores; 1 for --cds-only without ALLPATH_CDS_REPLAY_DB, "
            "and 1 while the SMART launch is configured).",
        ),
    ] = None,
    pin_workers: Annotated[
        bool,
        typer.Option(
            help="With more than one worker, keep each on a CPU of its own (Linux; docs/service.md).",
        ),
    ] = True,
) -> None:
    """Run the web service (REST API, web pages, CDS Hooks) with uvicorn; --cds-only for CDS Hooks alone.

    With more than one worker process, every piece of state two requests may share lives in the
    database (tokens and their revocation, log-in throttling, the CDS replay cache) or is derived
    from it by version (the course and plan caches); the CSRF key is made once here and given to
    every worker (docs/service.md, "Worker processes").
    """
    import uvicorn

    settings = _service_settings(database_url)
    count = workers if workers is not None else _default_workers(settings, cds_only)
    if count > 1 and not cds_only and settings.smart.enabled():
        # A SMART launch's state and PKCE verifier live in the memory of the process that began it
        # (docs/smart.md): its callback may reach another worker, which would refuse it.
        fail_input(
            [
                Problem(
                    "--workers",
                    "must be 1 while the SMART launch is configured (ALLPATH_SMART_*): "
                    "pending launches are kept in one process's memory",
                )
            ]
        )
    if count > 1:
        _serve_workers(
            settings, count, host=host, port=port, log_level=log_level, cds_only=cds_only, pin_workers=pin_workers
        )
        return
    if cds_only:
        application = _cds_app(settings)
        _freeze_startup_objects()
        uvicorn.run(application, host=host, port=port, log_level=log_level, **_head_limit(settings))
        return

    from allpath.api import create_app

    with _database_reachable():
        application = create_app(settings=settings)
    _freeze_startup_objects()
    uvicorn.run(application, host=host, port=port, log_level=log_level, **_head_limit(settings))


def _default_workers(settings: Settings, cds_only: bool) -> int:
    """The machine's cores; but one for `--cds-only` without `ALLPATH_CDS_REPLAY_DB`, where workers
    would have nowhere to share the tokens already used."""
    if cds_only and not settings.cds.replay_db:
        return 1
    if not cds_only and settings.smart.enabled():
        return 1  # pending SMART launches live in one process's memory (docs/smart.md)
    return os.cpu_count() or 1


def _cds_app(settings: Settings) -> Any:
    from allpath.api import cds_importer
    from allpath.api.cds import CdsConfigError, CdsSettings, create_cds_app

    try:
        cds_settings = CdsSettings.from_section(settings.cds)
        kb = load_knowledge(long_remission_months=settings.knowledge.long_remission_months)
        engine = Engine(kb)
        application = create_cds_app(engine, cds_settings, http=settings.http, importer=cds_importer(engine))
    except CdsConfigError as exc:
        err.print(f"CDS Hooks configuration: {exc}", markup=False, highlight=False)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    if cds_settings.insecure_dev:
        err.print("WARNING: CDS Hooks authentication is OFF (ALLPATH_CDS_INSECURE_DEV=1): local development only.")
    return application


# What the supervisor hands its worker processes (they are started afresh, and read it back in
# `worker_app`): the settings the command line changed, and which app to build.
_WORKER_CDS_ONLY = "ALLPATH_SERVE_CDS_ONLY"


def _serve_workers(
    settings: Settings, count: int, *, host: str, port: int, log_level: str, cds_only: bool, pin_workers: bool = True
) -> None:
    """uvicorn's supervisor with `count` worker processes, one listening socket each (`allpath.serving`)."""
    import uvicorn

    from allpath.store import make_engine, upgrade

    env = {"ALLPATH_DATABASE_URL": settings.database.url, _WORKER_CDS_ONLY: "1" if cds_only else "0"}
    if not os.environ.get("ALLPATH_SECRET_KEY", "").strip():
        # One CSRF key for all workers: a form served by one is posted to another.
        env["ALLPATH_SECRET_KEY"] = settings.auth.secret_key
    if cds_only:
        _cds_app(settings)  # a bad CDS configuration stops here, once, with exit 2
        cds = settings.cds
        if not cds.insecure_dev and not cds.replay_db:
            fail_input(
                [
                    Problem(
                        "ALLPATH_CDS_REPLAY_DB",
                        "is needed with --cds-only and more than one worker: the workers share used tokens through it",
                    )
                ]
            )
    else:
        # Migrate once, here, rather than in every worker at the same moment.
        engine = make_engine(settings.database.url, sqlite_synchronous=settings.database.sqlite_synchronous)
        try:
            with _database_reachable():
                upgrade(engine)
        finally:
            engine.dispose()
        env["ALLPATH_MIGRATE_ON_START"] = "0"
    os.environ.update(env)
    from allpath.api.limits import bounded_http_protocol
    from allpath.serving import run_workers

    config = uvicorn.Config(
        "allpath.cli:worker_app",
        factory=True,
        workers=count,
        host=host,
        port=port,
        log_level=log_level,
        **bounded_http_protocol(settings.http.max_header_bytes, by_name=True),
    )
    # One listening socket per worker (SO_REUSEPORT), so kept connections spread over the workers.
    with contextlib.suppress(KeyboardInterrupt):
        run_workers(config, pin_workers=pin_workers)


def worker_app() -> Any:
    """The app of one worker process of `allpath serve --workers N` (uvicorn calls it in each).

    The worker reads the settings from its environment, which the supervisor set up; this is
    the edge of that process, as `serve` is of the supervisor's.
    """
    from allpath.api.limits import set_head_limit

    settings = Settings.from_env()
    set_head_limit(settings.http.max_header_bytes)
    if os.environ.get(_WORKER_CDS_ONLY) == "1":
        application = _cds_app(settings)
    else:
        from allpath.api import create_app

        application = create_app(settings=settings)
    _freeze_startup_objects()
    return application


def _head_limit(settings: Settings) -> dict[str, Any]:
    """uvicorn options that make its HTTP parser refuse (431) a request head over the configured size."""
    from allpath.api.limits import bounded_http_protocol

    return bounded_http_protocol(settings.http.max_header_bytes)


def _freeze_startup_objects() -> None:
    import gc

    # The knowledge base, compiled engine and FHIR models live for the whole process; moving them
    # out of the collector's generations keeps full collections (and latency spikes) short.
    gc.collect()
    gc.freeze()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
