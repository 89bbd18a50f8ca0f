"""A FHIR Bulk Data export (NDJSON) becomes a cohort facts table, through the FHIR mapping.

A `$export` output is a folder of `.ndjson` files (one resource per line, usually one file per
resource type: `Patient.ndjson`, `Observation.000.ndjson`, ...; `.ndjson.gz` is read too). Each
patient's resources are gathered and mapped with an `allpath.fhir.Importer`, exactly as
a single Bundle is by `allpath recommend --fhir`; the result is a facts table that
`allpath.cohort` evaluates like any other.

This module sits in its own layer above both `allpath.cohort` and `allpath.fhir` (siblings that
may not import each other: see the import-linter contracts in pyproject.toml).

Nothing stops the run and nothing vanishes:

* a line that is not JSON, not a FHIR R4 resource, or cannot be tied to a patient is set aside in
  the NDJSON rejects (file, line, problem, the original line);
* a resource whose `subject`/`patient` names no Patient of the export is set aside there too;
* a patient whose resources do not map to valid facts, or any of whose lines was set aside, is set
  aside in the patient rejects (patient id, problems, the file:line of each resource): no plan is
  made from part of a record.

Memory stays flat with the size of the export: files are read line by line, and the lines go to
DuckDB (an on-disk database in a temporary folder), which sorts them by patient, spilling to disk
when they do not fit; the sorted lines come back in batches, one patient at a time. DuckDB is
already the cohort's engine; its sort is out-of-core, so no hand-written external merge sort is
needed, and Python keeps the line-level parsing that gives every problem its file and line.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import multiprocessing
import os
import re
import tempfile
from collections import Counter, deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from allpath.facts import FIELD_NAMES, ID_COLUMN, Problem, ProblemsError
from allpath.fhir import FhirInputError, Importer, default_importer, validate_resource
from allpath.fhir.importer import INTERPRETED

NDJSON_SUFFIXES = (".ndjson", ".ndjson.gz")
KEPT_PROBLEMS = 1000
"""Problems kept in memory for the summary; the rejects files hold every one."""
SORT_MEMORY = "256MB"
_BATCH_LINES = 20_000
_CHUNK_LINES = 2_000
_CHUNK_PATIENTS = 500
_CHUNKS_AHEAD = 8
PARALLEL_MIN_BYTES = 4 << 20
"""Below this size (about 10,000 resources) starting worker processes costs more than it saves."""
_BATCH_PATIENTS = 5_000


class ExportError(ProblemsError):
    """The export as a whole cannot be used (no NDJSON files, no Patient at all)."""


@dataclass(frozen=True, slots=True)
class LineProblem:
    file: str
    line: int
    patient_id: str | None
    problem: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.problem}"


@dataclass(frozen=True, slots=True)
class PatientProblem:
    patient_id: str
    field: str
    problem: str

    def __str__(self) -> str:
        return f"patient {self.patient_id}: {self.field}: {self.problem}"


@dataclass(slots=True)
class StagedExport:
    """What `stage_export` read and wrote; the problem lists hold the first `KEPT_PROBLEMS` of each kind."""

    facts: Path
    alerts: Path
    line_rejects: Path
    patient_rejects: Path
    files: int = 0
    lines: int = 0
    patients: int = 0
    mapped: int = 0
    lines_rejected: int = 0
    patients_rejected: int = 0
    problem_count: int = 0
    not_read: Counter[str] = field(default_factory=Counter)
    line_problems: list[LineProblem] = field(default_factory=list)
    patient_problems: list[PatientProblem] = field(default_factory=list)


def export_files(source: Path) -> list[Path]:
    """The NDJSON files of an export: the file itself, or the folder's `*.ndjson[.gz]` files by name."""
    if source.is_file():
        return [source] if source.name.lower().endswith(NDJSON_SUFFIXES) else []
    if source.is_dir():
        return sorted(p for p in source.iterdir() if p.is_file() and p.name.lower().endswith(NDJSON_SUFFIXES))
    return []


def is_export(source: Path) -> bool:
    return bool(export_files(source))


def output_paths(out: Path) -> dict[str, Path]:
    """Where the files derived from an export go: beside the results, named after them."""
    stem = out.name.removesuffix(".parquet")
    return {
        "facts": out.with_name(f"{stem}.facts.parquet"),
        "alerts": out.with_name(f"{stem}.fhir-alerts.parquet"),
        "line_rejects": out.with_name(f"{stem}.ndjson-rejects.parquet"),
        "patient_rejects": out.with_name(f"{stem}.patient-rejects.parquet"),
    }


def stage_export(
    source: Path,
    out: Path,
    *,
    as_of: dt.date,
    importer: Importer | None = None,
    work_dir: Path | None = None,
    workers: int | None = None,
) -> StagedExport:
    """Read the export at `source`, map each patient, and write the facts table and the side files.

    The files are named after `out` (the results file): `<stem>.facts.parquet`,
    `<stem>.fhir-alerts.parquet`, `<stem>.ndjson-rejects.parquet`, `<stem>.patient-rejects.parquet`.
    The lines wait in a temporary folder under `work_dir` (default: the system's temporary folder);
    it needs room for about the size of the export's kept lines.
    Lines are validated, and patients mapped, in `workers` processes (default: one per core) once
    the export is larger than `PARALLEL_MIN_BYTES`; FHIR validation is most of the work.
    `importer` reads each patient (default: the one over the default knowledge base); give the
    one built from the knowledge base the facts will be evaluated with.
    Raises `ExportError` when there is nothing to evaluate (no NDJSON file, no Patient resource).
    """
    import duckdb

    importer = importer or default_importer()

    files = export_files(source)
    if not files:
        raise ExportError([Problem("SOURCE", f"no .ndjson or .ndjson.gz files in {source}")])
    paths = output_paths(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staged = StagedExport(paths["facts"], paths["alerts"], paths["line_rejects"], paths["patient_rejects"])
    staged.files = len(files)
    names = _display_names(files)
    with (
        tempfile.TemporaryDirectory(prefix="allpath-bulk-", dir=work_dir) as tmp,
        _Writers(paths) as writers,
    ):
        con = duckdb.connect(str(Path(tmp) / "lines.duckdb"))
        quoted = tmp.replace("'", "''")
        con.execute(f"SET temp_directory = '{quoted}'")
        # A bounded sort spills to the temporary folder instead of growing with the export.
        con.execute(f"SET memory_limit = '{SORT_MEMORY}'")
        con.execute("SET enable_progress_bar = false")
        con.execute(
            "CREATE TABLE lines (patient VARCHAR, file INTEGER, line BIGINT, is_patient BOOLEAN, "
            "ok BOOLEAN, resource VARCHAR)"
        )
        with _worker_pool(files, workers) as pool:
            for number, path in enumerate(files):
                _read_file(con, path, number, names[number], staged, writers, pool)
            _group_and_map(con, names, staged, writers, _Reading(importer, as_of), pool)
        con.close()
    if staged.patients == 0:
        raise ExportError(
            [Problem("SOURCE", f"no Patient resource in {source}: nothing to evaluate")]
            + [Problem(f"{p.file}:{p.line}", p.problem) for p in staged.line_problems[:20]]
        )
    return staged


# --- reading lines -------------------------------------------------------------------------------


@contextmanager
def _worker_pool(files: list[Path], workers: int | None) -> Iterator[Executor | None]:
    """Worker processes for the line checks and the mapping; None where starting them costs more than it saves."""
    count = workers if workers is not None else (os.cpu_count() or 1)
    size = sum(f.stat().st_size for f in files)
    if count < 2 or size < PARALLEL_MIN_BYTES:
        yield None
        return
    # spawn, not fork: the parent holds a DuckDB connection whose threads a fork would not carry.
    with ProcessPoolExecutor(max_workers=count, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


def _display_names(files: list[Path]) -> list[str]:
    names = [f.name for f in files]
    return names if len(set(names)) == len(names) else [str(f) for f in files]


def _open(path: Path) -> IO[bytes] | gzip.GzipFile:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def _lines(path: Path) -> Iterator[tuple[int, bytes | None, str | None]]:
    """(line number, bytes, None) per line; (n, None, problem) if the file cannot be read on from line n."""
    number = 0
    try:
        with _open(path) as handle:
            for number, raw in enumerate(handle, start=1):
                yield number, raw, None
    except (OSError, EOFError) as exc:
        yield number + 1, None, f"cannot read the file from here on: {exc}"


def _patient_reference(resource: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(patient id, None) from `subject` or `patient`; (None, why not) when there is no Patient reference.

    Why not starts with the element when there is one (`.subject: ...`), else with `: `.
    """
    for key in ("subject", "patient"):
        target = resource.get(key)
        if target is None:
            continue
        reference = target.get("reference") if isinstance(target, Mapping) else None
        if not isinstance(reference, str) or not reference:
            return None, f".{key}: has no reference to a Patient, so whose record this is cannot be told"
        # `Patient/1`, `https://ehr/fhir/Patient/1` and `Patient/1/_history/2` all name patient 1.
        parts = reference.split("/_history/")[0].rstrip("/").split("/")
        if len(parts) >= 2 and parts[-2] == "Patient" and parts[-1]:
            return parts[-1], None
        return None, f".{key}: {reference} is not a reference to a Patient"
    return None, ": has no subject or patient reference, so whose record this is cannot be told"


@dataclass(slots=True)
class _Row:
    patient: str | None
    file: int
    line: int
    is_patient: bool
    ok: bool
    resource: str | None


def _read_file(
    con: Any, path: Path, number: int, name: str, staged: StagedExport, writers: _Writers, pool: Executor | None
) -> None:
    batch: list[_Row] = []
    for line, checked, unreadable in _checked_lines(path, pool):
        if unreadable is not None:
            _reject_line(staged, writers, name, line, None, [unreadable], "")
            break
        if checked is None:
            continue  # a blank line (often the last one) holds no resource
        staged.lines += 1
        row = _apply(checked, number, line, name, staged, writers)
        if row is not None:
            batch.append(row)
        if len(batch) >= _BATCH_LINES:
            _insert(con, batch)
            batch = []
    if batch:
        _insert(con, batch)


def _checked_lines(path: Path, pool: Executor | None) -> Iterator[tuple[int, _Checked | None, str | None]]:
    """(line number, what the line holds (None: blank), None) in file order; (n, None, problem) if
    the file cannot be read on from line n. With a pool, chunks of lines are checked in worker
    processes, a bounded number ahead of the one being used, so memory stays flat."""
    if pool is None:
        for line, raw, unreadable in _lines(path):
            yield line, (_check_line(raw) if raw is not None else None), unreadable
        return
    pending: deque[tuple[list[int], Future[list[_Checked | None]]]] = deque()
    numbers: list[int] = []
    raws: list[bytes] = []
    failure: tuple[int, str] | None = None
    for line, raw, unreadable in _lines(path):
        if unreadable is not None:
            failure = (line, unreadable)
            break
        assert raw is not None
        numbers.append(line)
        raws.append(raw)
        if len(raws) >= _CHUNK_LINES:
            pending.append((numbers, pool.submit(_check_lines, raws)))
            numbers, raws = [], []
            while len(pending) > _CHUNKS_AHEAD:
                yield from _zip_chunk(*pending.popleft())
    if raws:
        pending.append((numbers, pool.submit(_check_lines, raws)))
    while pending:
        yield from _zip_chunk(*pending.popleft())
    if failure is not None:
        yield failure[0], None, failure[1]


def _zip_chunk(
    numbers: list[int], checked: Future[list[_Checked | None]]
) -> Iterator[tuple[int, _Checked | None, str | None]]:
    for line, one in zip(numbers, checked.result(), strict=True):
        yield line, one, None


@dataclass(frozen=True, slots=True)
class _Checked:
    """What one line holds, decided without side effects so that a worker process can decide it."""

    text: str
    patient_id: str | None = None
    is_patient: bool = False
    ok: bool = False
    problems: tuple[str, ...] = ()
    not_read: str | None = None  # a resource type the mapping does not read: counted, not kept


def _check_lines(raws: list[bytes]) -> list[_Checked | None]:
    return [_check_line(raw) for raw in raws]


def _check_line(raw: bytes) -> _Checked | None:
    """Parse and validate one NDJSON line (None for a blank line)."""
    if not raw.strip():
        return None
    text = raw.decode("utf-8", errors="replace").rstrip("\r\n")

    def unreadable(problem: str) -> _Checked:
        patient_id, is_patient = _patient_named_in(text)
        return _Checked(text, patient_id, is_patient, problems=(problem,))

    try:
        resource = json.loads(raw)
    except UnicodeDecodeError:
        return unreadable("is not UTF-8 text")
    except json.JSONDecodeError as exc:
        return unreadable(f"not JSON: {exc.msg} at column {exc.colno}")
    if not isinstance(resource, dict):
        return unreadable("not a FHIR resource: expected a JSON object")
    kind = resource.get("resourceType")
    if not isinstance(kind, str) or not kind:
        return unreadable("resourceType: is required")
    if kind == "Patient":
        patient_id = resource.get("id") if isinstance(resource.get("id"), str) and resource.get("id") else None
        if patient_id is None:
            return _Checked(text, problems=("Patient.id: is required to gather the patient's record",))
        why_not = None
    elif kind in INTERPRETED:
        patient_id, why_not = _patient_reference(resource)
    else:
        # Only the types the mapping reads are checked and gathered; the others change no fact.
        return _Checked(text, not_read=kind)
    problems = [f"{p.field}: {p.problem}" for p in validate_resource(resource)]
    if why_not is not None:
        problems.append(f"{_resource_name(resource)}{why_not}")
    return _Checked(text, patient_id, kind == "Patient", ok=not problems, problems=tuple(problems))


def _apply(
    checked: _Checked, number: int, line: int, name: str, staged: StagedExport, writers: _Writers
) -> _Row | None:
    """Count and set aside what the line's check found; the row to gather, if it names a patient."""
    if checked.not_read is not None:
        staged.not_read[checked.not_read] += 1
        return None
    if checked.problems:
        _reject_line(staged, writers, name, line, checked.patient_id, list(checked.problems), checked.text)
    if checked.patient_id is None:
        return None
    # A rejected line still marks its patient, whose record is then incomplete.
    return _Row(checked.patient_id, number, line, checked.is_patient, checked.ok, checked.text if checked.ok else None)


_PATIENT_REFERENCE = re.compile(r'"reference"\s*:\s*"(?:[^"]*/)?Patient/([^"/]+)(?:/_history/[^"]*)?"')
_PATIENT_TYPE = re.compile(r'"resourceType"\s*:\s*"Patient"')
_ANY_ID = re.compile(r'"id"\s*:\s*"([^"]+)"')


def _patient_named_in(text: str) -> tuple[str | None, bool]:
    """(patient id, is it the Patient itself) that a line which cannot be read still names, if just one.

    Only so that a patient whose line is broken is set aside rather than evaluated without it;
    a line that names no patient, or several, ties to none.
    """
    if _PATIENT_TYPE.search(text):
        ids = set(_ANY_ID.findall(text))
        return (ids.pop(), True) if len(ids) == 1 else (None, False)
    references = set(_PATIENT_REFERENCE.findall(text))
    return (references.pop(), False) if len(references) == 1 else (None, False)


def _resource_name(resource: Mapping[str, Any]) -> str:
    rid = resource.get("id")
    return f"{resource['resourceType']}/{rid}" if isinstance(rid, str) and rid else str(resource["resourceType"])


def _insert(con: Any, rows: list[_Row]) -> None:
    import pyarrow as pa

    table = pa.table(
        {
            "patient": pa.array([r.patient for r in rows], pa.string()),
            "file": pa.array([r.file for r in rows], pa.int32()),
            "line": pa.array([r.line for r in rows], pa.int64()),
            "is_patient": pa.array([r.is_patient for r in rows], pa.bool_()),
            "ok": pa.array([r.ok for r in rows], pa.bool_()),
            "resource": pa.array([r.resource for r in rows], pa.string()),
        }
    )
    con.register("incoming", table)
    con.execute("INSERT INTO lines SELECT * FROM incoming")
    con.unregister("incoming")


def _reject_line(
    staged: StagedExport,
    writers: _Writers,
    name: str,
    line: int,
    patient_id: str | None,
    problems: list[str],
    text: str,
) -> None:
    staged.lines_rejected += 1
    staged.problem_count += len(problems)
    for problem in problems:
        if len(staged.line_problems) < KEPT_PROBLEMS:
            staged.line_problems.append(LineProblem(name, line, patient_id, problem))
    writers.line_reject(name, line, patient_id, "; ".join(problems), text)


# --- one patient at a time -----------------------------------------------------------------------

_RESOURCE_INDEX = re.compile(r"resources\[(\d+)\]")


_Groups = list[list[dict[str, Any]]]
"""Patients' line rows, one list per patient."""


@dataclass(frozen=True, slots=True)
class _Reading:
    """How each patient is read; picklable, and small (plain code tables), as it goes to every worker task."""

    importer: Importer
    as_of: dt.date


def _group_and_map(
    con: Any, names: list[str], staged: StagedExport, writers: _Writers, reading: _Reading, pool: Executor | None
) -> None:
    relation = con.sql("SELECT * FROM lines ORDER BY patient, file, line")
    stream = getattr(relation, "to_arrow_reader", None) or relation.fetch_arrow_reader
    pending: deque[tuple[_Groups, list[bool], Future[list[_Outcome]] | None]] = deque()
    chunk: _Groups = []

    def send(groups: _Groups) -> None:
        # Only the groups that pass the cheap checks are imported; the others are set aside on apply.
        importable = [_importable(g) for g in groups]
        texts = [[r["resource"] for r in g] for g, ok in zip(groups, importable, strict=True) if ok]
        future = pool.submit(_import_groups, texts, reading) if pool is not None else None
        pending.append((groups, importable, future))
        while len(pending) > (_CHUNKS_AHEAD if pool is not None else 0):
            apply(*pending.popleft())

    def apply(groups: _Groups, importable: list[bool], outcomes: Future[list[_Outcome]] | None) -> None:
        results = iter(outcomes.result()) if outcomes is not None else None
        for g, ok in zip(groups, importable, strict=True):
            outcome = next(results) if results is not None and ok else None
            _map_patient(g, names, staged, writers, reading, outcome)

    group: list[dict[str, Any]] = []
    for batch in stream(_BATCH_LINES):
        for row in batch.to_pylist():
            if group and row["patient"] != group[0]["patient"]:
                chunk.append(group)
                group = []
                if len(chunk) >= _CHUNK_PATIENTS:
                    send(chunk)
                    chunk = []
            group.append(row)
    if group:
        chunk.append(group)
    if chunk:
        send(chunk)
    while pending:
        apply(*pending.popleft())


def _importable(group: list[dict[str, Any]]) -> bool:
    """One Patient and every line kept: the only records the Importer is asked to map."""
    return sum(1 for r in group if r["is_patient"]) == 1 and all(r["ok"] for r in group)


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What the FHIR mapping made of one patient's record (picklable: it may come from a worker)."""

    facts: dict[str, Any] | None
    alerts: tuple[tuple[str, str, str], ...] = ()
    problems: tuple[Problem, ...] = ()


def _import_groups(texts: list[list[str]], reading: _Reading) -> list[_Outcome]:
    return [_import_group(t, reading) for t in texts]


def _import_group(texts: list[str], reading: _Reading) -> _Outcome:
    try:
        imported = reading.importer.from_resources([json.loads(t) for t in texts], as_of=reading.as_of, validated=True)
    except FhirInputError as exc:
        return _Outcome(None, problems=tuple(exc.problems))
    alerts = tuple((a.id, a.severity, a.message) for a in imported.alerts)
    return _Outcome(imported.facts.model_dump(mode="json"), alerts)


def _map_patient(
    group: list[dict[str, Any]],
    names: list[str],
    staged: StagedExport,
    writers: _Writers,
    reading: _Reading,
    outcome: _Outcome | None = None,
) -> None:
    patient_id: str = group[0]["patient"]
    where = [f"{names[r['file']]}:{r['line']}" for r in group]
    patients = [i for i, r in enumerate(group) if r["is_patient"]]
    if not patients:
        missing = f"Patient/{patient_id}: no Patient resource with this id in the export"
        for r in group:
            if r["ok"]:
                _reject_line(staged, writers, names[r["file"]], r["line"], patient_id, [missing], r["resource"])
        return
    staged.patients += 1
    problems: list[Problem] = []
    first = where[patients[0]]
    for i in patients[1:]:
        second = f"a second Patient resource with this id (first at {first})"
        if group[i]["ok"]:
            r = group[i]
            _reject_line(staged, writers, names[r["file"]], r["line"], patient_id, [second], r["resource"])
        problems.append(Problem(where[i], second))
    problems += [
        Problem(place, "this line was set aside (see the NDJSON rejects): the record is incomplete")
        for r, place in zip(group, where, strict=True)
        if not r["ok"]
    ]
    if not problems:
        outcome = outcome or _import_group([r["resource"] for r in group], reading)
        if outcome.facts is None:
            problems = [Problem(_locate(p.field, where), p.problem) for p in outcome.problems]
        else:
            writers.facts(patient_id, outcome.facts)
            for alert_id, severity, message in outcome.alerts:
                writers.alert(patient_id, alert_id, severity, message)
            staged.mapped += 1
            return
    staged.patients_rejected += 1
    staged.problem_count += len(problems)
    for p in problems:
        if len(staged.patient_problems) < KEPT_PROBLEMS:
            staged.patient_problems.append(PatientProblem(patient_id, p.field, p.problem))
    writers.patient_reject(patient_id, problems, where)


def _locate(field: str, where: list[str]) -> str:
    """`resources[3](Condition/c9).clinicalStatus` -> `Condition.ndjson:12(Condition/c9).clinicalStatus`
    (every position in the field: some problems name several resources)."""
    return _RESOURCE_INDEX.sub(lambda m: where[int(m.group(1))], field)


# --- output --------------------------------------------------------------------------------------


def facts_schema() -> Any:
    """The facts table's columns, typed as `allpath.cohort` reads them best (lists as lists)."""
    import pyarrow as pa

    from allpath.facts import FACT_KINDS

    types = {"number": pa.float64(), "integer": pa.int64(), "boolean": pa.bool_(), "enum": pa.string()}
    fields = [(ID_COLUMN, pa.string())]
    for name in FIELD_NAMES:
        kind = FACT_KINDS[name].type
        fields.append((name, pa.list_(pa.string()) if kind == "list" else types[kind]))
    return pa.schema(fields)


class _Writers:
    """Parquet writers for the four output tables, fed row by row and flushed in batches."""

    def __init__(self, paths: Mapping[str, Path]):
        import pyarrow as pa

        self._schemas = {
            "facts": facts_schema(),
            "alerts": pa.schema(
                [(ID_COLUMN, pa.string()), ("alert", pa.string()), ("severity", pa.string()), ("message", pa.string())]
            ),
            "line_rejects": pa.schema(
                [
                    ("file", pa.string()),
                    ("line", pa.int64()),
                    (ID_COLUMN, pa.string()),
                    ("problem", pa.string()),
                    ("original_line", pa.string()),
                ]
            ),
            "patient_rejects": pa.schema(
                [(ID_COLUMN, pa.string()), ("problems", pa.string()), ("resources", pa.list_(pa.string()))]
            ),
        }
        self._paths = dict(paths)
        self._rows: dict[str, list[dict[str, Any]]] = {k: [] for k in self._schemas}
        self._writers: dict[str, Any] = {}

    def __enter__(self) -> _Writers:
        return self

    def __exit__(self, *exc: object) -> None:
        for kind in self._schemas:
            self._flush(kind)
        for writer in self._writers.values():
            writer.close()
        # Every table exists after a run, empty when nothing went into it, so a reader never guesses.
        import pyarrow.parquet as pq

        for kind, schema in self._schemas.items():
            if kind not in self._writers:
                pq.write_table(schema.empty_table(), self._paths[kind])

    def _add(self, kind: str, row: dict[str, Any]) -> None:
        self._rows[kind].append(row)
        if len(self._rows[kind]) >= _BATCH_PATIENTS:
            self._flush(kind)

    def _flush(self, kind: str) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows = self._rows[kind]
        if not rows:
            return
        if kind not in self._writers:
            self._writers[kind] = pq.ParquetWriter(self._paths[kind], self._schemas[kind], compression="zstd")
        self._writers[kind].write_table(pa.Table.from_pylist(rows, schema=self._schemas[kind]))
        self._rows[kind] = []

    def facts(self, patient_id: str, facts: Mapping[str, Any]) -> None:
        self._add("facts", {ID_COLUMN: patient_id, **{name: facts.get(name) for name in FIELD_NAMES}})

    def alert(self, patient_id: str, alert: str, severity: str, message: str) -> None:
        self._add("alerts", {ID_COLUMN: patient_id, "alert": alert, "severity": severity, "message": message})

    def line_reject(self, file: str, line: int, patient_id: str | None, problem: str, text: str) -> None:
        self._add(
            "line_rejects",
            {"file": file, "line": line, ID_COLUMN: patient_id, "problem": problem, "original_line": text},
        )

    def patient_reject(self, patient_id: str, problems: list[Problem], where: list[str]) -> None:
        self._add(
            "patient_rejects",
            {ID_COLUMN: patient_id, "problems": json.dumps([p.as_dict() for p in problems]), "resources": where},
        )
