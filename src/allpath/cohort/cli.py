"""`allpath cohort ...`: evaluate a facts table, report concordance, synthesize a cohort.

Heavy imports (duckdb, pyspark, numpy) happen inside the commands, so `allpath --help` stays fast.
Bad rows never stop a run: they are listed (row, field, problem) and set aside in a rejects file.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from allpath.knowledge import KnowledgeBase, KnowledgeError, load_kb

cohort_app = typer.Typer(
    help="Cohort analytics: the same rules over many patients (DuckDB embedded, or Spark).",
    no_args_is_help=True,
)
err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

EXIT_BAD_INPUT = 2
SHOWN_PROBLEMS = 20


class EngineName(StrEnum):
    duckdb = "duckdb"
    spark = "spark"


class FileFormat(StrEnum):
    parquet = "parquet"
    csv = "csv"


def _kb() -> KnowledgeBase:
    from allpath.settings import KnowledgeSettings, SettingsError

    try:
        parameters = KnowledgeSettings.from_env().parameters()
    except SettingsError as exc:
        _fail([str(exc)])
    try:
        return load_kb(parameters=parameters)
    except KnowledgeError as exc:
        err.print(f"knowledge base: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from None


def _fail(lines: list[str]) -> NoReturn:
    for line in lines:
        err.print(line, markup=False, highlight=False)
    raise typer.Exit(EXIT_BAD_INPUT)


@contextmanager
def _progress(label: str) -> Iterator[object]:
    """A Rich progress bar on stderr while a long query runs (silent when not a terminal)."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as bar:
        task = bar.add_task(label, total=1.0)
        yield lambda fraction: bar.update(task, completed=fraction)


def evaluate_table(
    source: Path,
    out_path: Path,
    engine: EngineName = EngineName.duckdb,
    master: str | None = None,
    rejects: Path | None = None,
) -> None:
    """`allpath cohort evaluate` on a facts table (the command itself is declared in `allpath.cli`,
    which may also import `allpath.fhir` for NDJSON input; this package may not)."""
    from allpath.cohort.evaluate import evaluate_duckdb, evaluate_spark
    from allpath.cohort.staging import TableError

    if not source.exists():
        _fail([f"SOURCE: no such file: {source}"])
    kb = _kb()
    try:
        with _progress(f"Evaluating on {engine.value}") as progress:
            if engine is EngineName.duckdb:
                if master:
                    _fail(["--master: only applies to --engine spark"])
                summary = evaluate_duckdb(source, out_path, kb, rejects=rejects, progress=progress)  # type: ignore[arg-type]
            else:
                summary = evaluate_spark(source, out_path, kb, master=master, rejects=rejects, progress=progress)  # type: ignore[arg-type]
    except TableError as exc:
        _fail([str(p) for p in exc.problems])
    show_problems([str(p) for p in summary.problems[:SHOWN_PROBLEMS]], len(summary.problems))
    line = f"{summary.rows} rows: {summary.evaluated} evaluated, {summary.rejected} rejected -> {summary.out}"
    if summary.rejects:
        line += f"; rejects in {summary.rejects}"
    out.print(f"{line} ({summary.seconds:.1f} s)", markup=False, highlight=False)


def show_problems(shown: list[str], total: int) -> None:
    """The first problems on stderr, one a line, then how many more there are."""
    for problem in shown:
        err.print(problem, markup=False, highlight=False)
    if total > len(shown):
        err.print(f"... and {total - len(shown)} more problems", markup=False)


@cohort_app.command("report")
def report_command(
    facts: Annotated[Path, typer.Argument(help="Facts table (.csv or .parquet).")],
    treatments: Annotated[Path, typer.Argument(help="Treatments table: patient_id, kind, code, date.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for report.html, measures.csv, measure_patients.csv.")],
    results: Annotated[
        Path | None, typer.Option(help="Results of `cohort evaluate` (default: evaluate the facts now, on DuckDB).")
    ] = None,
) -> None:
    """Concordance with the guideline: an HTML report (self-contained) and CSV files."""
    from allpath.cohort import concordance, report
    from allpath.cohort.evaluate import evaluate_duckdb
    from allpath.cohort.staging import TableError

    for path in (facts, treatments, *([results] if results else [])):
        if not path.exists():
            _fail([f"{path}: no such file"])
    kb = _kb()
    out_dir.mkdir(parents=True, exist_ok=True)
    if results is None:
        results = out_dir / "results.parquet"
        try:
            with _progress("Evaluating on duckdb") as progress:
                summary = evaluate_duckdb(facts, results, kb, progress=progress)  # type: ignore[arg-type]
        except TableError as exc:
            _fail([str(p) for p in exc.problems])
        if summary.rejected:
            err.print(f"{summary.rejected} rows rejected; see {summary.rejects}", markup=False)
    try:
        measures = concordance.compute(results, treatments, kb, patients_csv=out_dir / "measure_patients.csv")
    except TableError as exc:
        _fail([str(p) for p in exc.problems])
    concordance.write_csv(measures, out_dir / "measures.csv")
    patients = max((m.denominator for m in measures if m.measure.denominator == "TRUE"), default=0)
    html = report.write(measures, out_dir / "report.html", patients=patients, kb_version=kb.version)
    for m in measures:
        rate = "n/a" if m.rate is None else f"{100 * m.rate:.1f}%"
        out.print(f"{m.measure.id}: {m.numerator}/{m.denominator} ({rate})", markup=False, highlight=False)
    out.print(f"report: {html}", markup=False, highlight=False)


@cohort_app.command("synth")
def synth_command(
    n: Annotated[int, typer.Argument(min=1, help="Number of patients.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the facts and treatments tables.")],
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same cohort).")] = 0,
    deviation: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of relevant patients treated against the guideline.")
    ] = 0.05,
    file_format: Annotated[FileFormat, typer.Option("--format", help="parquet or csv.")] = FileFormat.parquet,
) -> None:
    """Write a synthetic cohort: facts.<format> and treatments.<format> (see docs/cohort.md)."""
    from allpath.cohort.synth import synthesize

    try:
        result = synthesize(n, seed, out_dir, _kb(), deviation=deviation, fmt=file_format.value)
    except OSError as exc:
        _fail([f"--out: cannot write to {out_dir}: {exc.strerror or exc}"])
    out.print(
        f"{result.patients} patients -> {result.facts}; {result.treatment_rows} treatments -> {result.treatments}",
        markup=False,
        highlight=False,
    )
