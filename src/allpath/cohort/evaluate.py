"""Evaluate the KB's rules over a facts table, on DuckDB (embedded) or Spark (local or cluster).

Both engines run the same generated SQL: staging (`staging.typed_sql`), then the compiled rules
(`rules.sql.select_sql`). Flagged rows are checked by `PatientFacts` in Python; rows it rejects
go to the rejects file with their problems, and every other row is evaluated.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from allpath.cohort.staging import (
    CSV_READ_OPTIONS,
    ROW_COLUMN,
    STAGING,
    SUSPECT_COLUMN,
    SourceKind,
    TableError,
    check_columns,
    check_row,
    first_line,
    suspect_sql,
    typed_sql,
)
from allpath.facts import FIELD_NAMES, ID_COLUMN, Problem
from allpath.knowledge import KnowledgeBase
from allpath.rules.sql import mask_columns, mask_sql, select_sql

Progress = Callable[[float], None]
"""Called with a completion fraction in [0, 1] while a long query runs."""


@dataclass(frozen=True, slots=True)
class RowProblem:
    row: int
    patient_id: str | None
    field: str
    problem: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.field}: {self.problem}"


@dataclass(slots=True)
class Summary:
    engine: str
    rows: int = 0
    evaluated: int = 0
    rejected: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    out: str = ""
    rejects: str | None = None
    seconds: float = 0.0


def input_format(path: str | Path) -> str:
    """`csv` or `parquet`, from the file name (a directory is read as Parquet files)."""
    name = str(path).lower()
    if name.endswith((".csv", ".csv.gz", ".txt")):
        return "csv"
    return "parquet"


def default_rejects_path(out: str | Path, fmt: str) -> Path:
    out = Path(out)
    stem = out.name.removesuffix(".parquet")
    return out.with_name(f"{stem}.rejects.{'csv' if fmt == 'csv' else 'parquet'}")


def _write_rejects(path: Path, fmt: str, rows: list[dict[str, Any]], problems: dict[int, list[Problem]]) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    records = []
    for row in sorted(rows, key=lambda r: r[ROW_COLUMN]):
        number = row[ROW_COLUMN]
        record = {"row_number": number, **{k: v for k, v in row.items() if k != ROW_COLUMN}}
        record["problems"] = json.dumps([p.as_dict() for p in problems[number]])
        records.append(record)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        columns = ["row_number", *(k for k in (records[0] if records else {}) if k not in ("row_number", "problems"))]
        columns.append("problems")
        table = pa.table(
            {c: [None if r.get(c) is None else str(r[c]) for r in records] for c in columns}
            if records
            else {"row_number": pa.array([], pa.string()), "problems": pa.array([], pa.string())}
        )
        pacsv.write_csv(table, path)
    else:
        table = pa.Table.from_pylist(records) if records else pa.table({"row_number": pa.array([], pa.int64())})
        pq.write_table(table, path)


def _judge(suspects: list[dict[str, Any]], present: Sequence[str]) -> tuple[dict[int, list[Problem]], list[int]]:
    """PatientFacts' verdict on each flagged row: the problems of the rejected, the rows readmitted."""
    rejected: dict[int, list[Problem]] = {}
    readmitted: list[int] = []
    for row in suspects:
        problems = check_row(row, present)
        if problems:
            rejected[row[ROW_COLUMN]] = problems
        else:
            readmitted.append(row[ROW_COLUMN])
    return rejected, readmitted


def _problems(rejected: dict[int, list[Problem]], ids: dict[int, str | None]) -> list[RowProblem]:
    return [RowProblem(row, ids.get(row), p.field, p.problem) for row in sorted(rejected) for p in rejected[row]]


# --- DuckDB -------------------------------------------------------------------------------------


def _duckdb_kind(type_name: str) -> SourceKind:
    t = type_name.upper()
    if t.endswith("[]"):
        return "list"
    if t in ("VARCHAR", "TEXT", "STRING"):
        return "text"
    if t in ("BOOLEAN", "BOOL"):
        return "boolean"
    if t in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"):
        return "integer"
    if t in ("FLOAT", "DOUBLE", "REAL") or t.startswith("DECIMAL"):
        return "float"
    return "other"


def evaluate_duckdb(
    source: str | Path,
    out: str | Path,
    kb: KnowledgeBase,
    *,
    rejects: str | Path | None = None,
    progress: Progress | None = None,
    threads: int | None = None,
    memory_limit: str | None = None,
) -> Summary:
    """Evaluate every valid row of `source` (CSV or Parquet) and write one result row per patient.

    A file DuckDB cannot read (not Parquet, a broken CSV, a corrupt row group) raises `TableError`
    naming `SOURCE`, and no partial results file is left behind.
    """
    import duckdb

    try:
        return _evaluate_duckdb(
            source, out, kb, rejects=rejects, progress=progress, threads=threads, memory_limit=memory_limit
        )
    except duckdb.Error as exc:
        Path(out).unlink(missing_ok=True)
        raise TableError([Problem("SOURCE", f"cannot be read: {first_line(exc)}")]) from None


def _evaluate_duckdb(
    source: str | Path,
    out: str | Path,
    kb: KnowledgeBase,
    *,
    rejects: str | Path | None,
    progress: Progress | None,
    threads: int | None,
    memory_limit: str | None,
) -> Summary:
    """`evaluate_duckdb` itself.

    One scan: each row is typed, flagged and evaluated in the same query. For a batch holding
    flagged rows, their typed values and raw cells are fetched by row number (DuckDB reads only
    the row groups concerned), Python judges them, and the rejected ones are dropped before the
    batch is written. The output keeps the input's row order.
    """
    import duckdb
    import pyarrow as pa

    started = time.perf_counter()
    fmt = input_format(source)
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    path = str(source).replace("'", "''")
    if fmt == "csv":
        # A table keeps the file's order, so rowid is the data row's position in the file.
        con.execute(f"CREATE TABLE raw_csv AS SELECT * FROM read_csv('{path}', {CSV_READ_OPTIONS})")
        position, cells, scan = "rowid", "*", "raw_csv"
    else:
        position, cells, scan = (
            "file_row_number",
            "* EXCLUDE (file_row_number)",
            (f"read_parquet('{path}', file_row_number = true)"),
        )

    def raw_sql(where: str = "") -> str:
        return f'SELECT {position} + 1 AS "{ROW_COLUMN}", {cells} FROM {scan}{where}'

    # Plain (not TEMP) views: the flagged-row lookups run on a second connection to this database.
    con.execute(f"CREATE VIEW raw AS {raw_sql()}")
    described = con.execute("DESCRIBE raw").fetchall()
    columns = [c[0] for c in described if c[0] != ROW_COLUMN]
    check_columns(columns)
    kinds: dict[str, SourceKind] = {c[0]: _duckdb_kind(c[1]) for c in described if c[0] in FIELD_NAMES}
    present = [n for n in FIELD_NAMES if n in kinds]
    d = STAGING["duckdb"]
    con.execute(f"CREATE VIEW typed AS {typed_sql('raw', kinds, d)}")
    total_rows = int(con.execute("SELECT count(*) FROM raw").fetchall()[0][0])
    lookup = con.cursor()

    def flagged_rows(numbers: list[int]) -> list[dict[str, Any]]:
        # The range lets DuckDB skip every other row group; the semi-join picks the rows.
        lookup.register("flagged_positions", pa.table({"p": pa.array([n - 1 for n in numbers], pa.int64())}))
        where = (
            f" WHERE {position} BETWEEN {min(numbers) - 1} AND {max(numbers) - 1}"
            f" AND {position} IN (SELECT p FROM flagged_positions)"
        )
        rows: list[dict[str, Any]] = duckdb_arrow(
            lookup, suspect_sql(f"({raw_sql(where)}) flagged_raw", kinds, d)
        ).to_pylist()
        return rows

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    id_type = next(c[1] for c in described if c[0] == ID_COLUMN)
    judged = _judged(present, flagged_rows, duplicate_rows_duckdb(con, id_type))
    query = mask_sql(kb, "typed", keep=(ID_COLUMN, ROW_COLUMN, SUSPECT_COLUMN))
    evaluated = _write_masked(con, kb, query, judged, out, total_rows, progress)
    if isinstance(judged, _JudgedWithDuplicates):
        judged.add_duplicate_problems()

    summary = Summary(engine="duckdb", out=str(out))
    summary.rows = total_rows
    summary.evaluated = evaluated
    summary.rejected = len(judged.rejected)
    summary.problems = _problems(judged.rejected, judged.ids)
    if judged.rejected:
        con.register("rejected_rows", pa.table({ROW_COLUMN: pa.array(sorted(judged.rejected), pa.int64())}))
        raw_rows = duckdb_arrow(
            con, f'SELECT * FROM raw WHERE "{ROW_COLUMN}" IN (SELECT "{ROW_COLUMN}" FROM rejected_rows)'
        )
        path_out = Path(rejects) if rejects else default_rejects_path(out, fmt)
        _write_rejects(path_out, fmt, _plain_rows(raw_rows), judged.rejected)
        summary.rejects = str(path_out)
    lookup.close()
    con.close()
    summary.seconds = time.perf_counter() - started
    return summary


RESULT_LISTS = ("recommendations", "not_recommended", "alerts", "variants")


@dataclass(slots=True)
class _Judged:
    """PatientFacts' verdicts on the flagged rows met so far; `fetch` gives their typed values and raw cells."""

    present: list[str]
    fetch: Callable[[list[int]], list[dict[str, Any]]]
    rejected: dict[int, list[Problem]] = field(default_factory=dict)
    ids: dict[int, str | None] = field(default_factory=dict)

    def keep_mask(self, batch: Any) -> Any:
        """A boolean array over `batch`, False for the rows PatientFacts rejects; None when all stay."""
        import pyarrow as pa
        import pyarrow.compute as pc

        flags = pc.fill_null(batch.column(SUSPECT_COLUMN), False)
        if not pc.any(flags).as_py():
            return None
        flagged = self.fetch(batch.column(ROW_COLUMN).filter(flags).to_pylist())
        rejected, _ = _judge(flagged, self.present)
        if not rejected:
            return None
        self.rejected.update(rejected)
        self.ids.update({r[ROW_COLUMN]: r.get(ID_COLUMN) for r in flagged if r[ROW_COLUMN] in rejected})
        return pc.invert(pc.is_in(batch.column(ROW_COLUMN), value_set=pa.array(list(rejected), pa.int64())))


def masks_to_lists(batch: Any, layout: Sequence[tuple[str, str, str, list[str]]]) -> Any:
    """Turn the bit-mask columns of `rules.sql.mask_sql` into list<string> columns, vectorised.

    A cohort holds few distinct answers (a thousand or so per million patients), so each list is
    built once per distinct mask combination (hash-encoded by Arrow, no sort) and then gathered
    per row with `take`. The list values stay dictionary-encoded (the rule ids), which Parquet
    stores as it would plain strings. Within a combination the set bits, laid side by side in plan
    order over the list's segments, are exactly the fired ids in order.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    columns: dict[str, Any] = {ID_COLUMN: batch.column(ID_COLUMN)}
    rows = batch.num_rows
    for name in RESULT_LISTS:
        segments = [(column, ids) for column, _, output, ids in layout if output == name]
        ids_in_order = [i for _, segment_ids in segments for i in segment_ids]
        masks = [
            np.ascontiguousarray(batch.column(column).to_numpy(zero_copy_only=False), dtype="<i8")
            for column, _ in segments
        ]
        codes = None
        for mask in masks:
            encoded = pc.dictionary_encode(pa.array(mask))
            indices = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
            if codes is None:
                codes = indices
            else:
                # Re-encoding keeps the codes below the row count, however many segments there are.
                mixed = pa.array(codes * len(encoded.dictionary) + indices)
                codes = pc.dictionary_encode(mixed).indices.to_numpy(zero_copy_only=False).astype(np.int64)
        if codes is None:
            codes = np.zeros(rows, dtype=np.int64)
        distinct = int(codes.max()) + 1 if rows else 0
        # One row standing for each combination: writing in reverse leaves the first occurrence.
        first_row = np.zeros(distinct, dtype=np.int64)
        first_row[codes[::-1]] = np.arange(rows - 1, -1, -1, dtype=np.int64)
        bits = [
            np.unpackbits(mask[first_row].view(np.uint8).reshape(distinct, 8), axis=1, bitorder="little")[
                :, : len(segment_ids)
            ]
            for mask, (_, segment_ids) in zip(masks, segments, strict=True)
        ]
        matrix = np.concatenate(bits, axis=1) if bits else np.zeros((distinct, 0), dtype=np.uint8)
        combination, id_index = np.nonzero(matrix)
        offsets = np.zeros(distinct + 1, dtype=np.int32)
        np.cumsum(np.bincount(combination, minlength=distinct), out=offsets[1:])
        values = pa.DictionaryArray.from_arrays(
            pa.array(id_index.astype(np.int32)), pa.array(ids_in_order, pa.string())
        )
        per_combination = pa.ListArray.from_arrays(pa.array(offsets), values)
        columns[name] = per_combination.take(pa.array(codes.astype(np.int32)))
    return pa.table(columns)


def _write_masked(
    con: Any, kb: KnowledgeBase, query: str, judged: _Judged, out: Path, total: int, progress: Progress | None
) -> int:
    """Stream the evaluation in record batches into one Parquet file; returns the rows written.

    A single writer thread encodes batch k while DuckDB computes batch k+1 (Arrow's Parquet
    writer and DuckDB both release the GIL); at most two batches wait, so memory stays flat.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    layout = mask_columns(kb)
    ids = pa.dictionary(pa.int32(), pa.string())
    schema = pa.schema([(ID_COLUMN, pa.string()), *((name, pa.list_(ids)) for name in RESULT_LISTS)])
    relation = con.sql(query)
    # DuckDB 2.x streams with to_arrow_reader; 1.x calls it fetch_arrow_reader.
    stream = getattr(relation, "to_arrow_reader", None) or relation.fetch_arrow_reader
    reader = stream(BATCH_ROWS)
    written = seen = 0
    pending: deque[Future[None]] = deque()
    # Statistics only on patient_id: min/max of rule-id lists help no reader and cost a fifth of the write.
    with (
        pq.ParquetWriter(out, schema, compression="zstd", write_statistics=[ID_COLUMN], store_schema=False) as writer,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="allpath-parquet") as pool,
    ):
        for batch in reader:
            seen += batch.num_rows
            keep = judged.keep_mask(batch)
            if keep is not None:
                batch = batch.filter(keep)
            if batch.num_rows:
                table = masks_to_lists(batch, layout)
                while len(pending) >= 2:
                    pending.popleft().result()
                pending.append(pool.submit(writer.write_table, table))
                written += batch.num_rows
            if progress is not None:
                progress(min(seen / max(total, 1), 1.0))
        while pending:
            pending.popleft().result()
    return written


BATCH_ROWS = 262_144


def _plain_rows(table: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


def duckdb_arrow(con: Any, query: str) -> Any:
    """A query's result as a pyarrow Table (the method's name changed between DuckDB 1.x and 2.x)."""
    relation = con.sql(query)
    fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
    return fetch()


# --- Spark --------------------------------------------------------------------------------------


def spark_session(
    master: str | None = None, app_name: str = "allpath-cohort", extra_conf: Mapping[str, str] | None = None
) -> Any:
    """A SparkSession: local mode with small shuffles unless a master URL is given.

    `extra_conf` is set on top (the tests use it to trade the JVM's peak speed for a cheaper start).
    """
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    else:
        builder = (
            builder.master("local[2]")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.ui.enabled", "false")
            .config("spark.driver.memory", "2g")
        )
    for key, value in (extra_conf or {}).items():
        builder = builder.config(key, value)
    session = builder.config("spark.sql.session.timeZone", "UTC").getOrCreate()
    if not master:
        # Locally, a failed task would print its Java stack trace before allpath reports the problem
        # in one line; on a cluster the logs stay as the cluster's configuration says.
        session.sparkContext.setLogLevel("FATAL")
    return session


def _spark_kind(data_type: Any) -> SourceKind:
    from pyspark.sql import types as st

    if isinstance(data_type, st.StringType):
        return "text"
    if isinstance(data_type, st.BooleanType):
        return "boolean"
    if isinstance(data_type, st.ByteType | st.ShortType | st.IntegerType | st.LongType):
        return "integer"
    if isinstance(data_type, st.FloatType | st.DoubleType | st.DecimalType):
        return "float"
    if isinstance(data_type, st.ArrayType):
        return "list"
    return "other"


def _row_numbers(df: Any, keys: Sequence[int]) -> dict[int, int]:
    """Row numbers (1.., in read order) for the given `monotonically_increasing_id` values.

    The id holds the partition number in its upper bits and the position within the partition
    below; adding the row counts of the earlier partitions gives the row's place in the input.
    Run only when there are rejects, since it costs one more pass over the input.
    """
    from pyspark.sql import functions as sf

    counts = dict(df.groupBy(sf.spark_partition_id().alias("p")).count().select("p", "count").collect())
    offsets, running = {}, 0
    for part in sorted(counts):
        offsets[part] = running
        running += counts[part]
    return {key: offsets[key >> 33] + (key & ((1 << 33) - 1)) + 1 for key in keys}


def evaluate_spark(
    source: str | Path,
    out: str | Path,
    kb: KnowledgeBase,
    *,
    spark: Any = None,
    master: str | None = None,
    rejects: str | Path | None = None,
    progress: Progress | None = None,
) -> Summary:
    """The same evaluation on Spark; `out` is written as a Parquet directory (Spark's part files).

    Input Spark cannot read raises `TableError` naming `SOURCE`.
    """
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    spark = spark or spark_session(master)
    try:
        return _evaluate_spark(source, out, kb, spark=spark, rejects=rejects, progress=progress)
    except PySparkException as exc:
        raise TableError([Problem("SOURCE", f"cannot be read: {first_line(exc)}")]) from None
    except Py4JJavaError as exc:
        # Its own first line only names the JVM call; the Java exception says what went wrong.
        raise TableError([Problem("SOURCE", f"cannot be read: {first_line(exc.java_exception)}")]) from None


def _evaluate_spark(
    source: str | Path,
    out: str | Path,
    kb: KnowledgeBase,
    *,
    spark: Any,
    rejects: str | Path | None,
    progress: Progress | None,
) -> Summary:
    from pyspark.sql import functions as sf

    started = time.perf_counter()
    fmt = input_format(source)
    if fmt == "csv":
        df = spark.read.option("header", "true").option("inferSchema", "false").csv(str(source))
    else:
        df = spark.read.parquet(str(source))
    check_columns(df.columns)
    kinds: dict[str, SourceKind] = {f.name: _spark_kind(f.dataType) for f in df.schema.fields if f.name in FIELD_NAMES}
    present = [n for n in FIELD_NAMES if n in kinds]
    # A unique key per row without a pass over the data; true row numbers only for the rejects.
    raw = df.withColumn(ROW_COLUMN, sf.monotonically_increasing_id())
    view = f"allpath_raw_{uuid.uuid4().hex}"
    raw.createOrReplaceTempView(view)
    d = STAGING["spark"]
    spark.sql(typed_sql(view, kinds, d)).createOrReplaceTempView(f"{view}_typed")

    suspects = [r.asDict(recursive=True) for r in spark.sql(suspect_sql(view, kinds, d)).collect()]
    rejected_by_key, readmitted = _judge(suspects, present)
    spark.createDataFrame([(r,) for r in readmitted], f"{ROW_COLUMN} BIGINT").createOrReplaceTempView(f"{view}_ok")
    where = f"NOT `{SUSPECT_COLUMN}` OR `{ROW_COLUMN}` IN (SELECT `{ROW_COLUMN}` FROM {view}_ok)"
    duplicates = duplicate_rows_spark(spark, view)
    where = _spark_without_duplicates(spark, view, where, duplicates)
    result = spark.sql(select_sql(kb, f"{view}_typed", d.rules, keep=(ID_COLUMN,), where=where))
    with _spark_progress(spark, progress):
        result.write.mode("overwrite").parquet(str(out))

    summary = Summary(engine="spark", out=str(out))
    summary.evaluated = spark.read.parquet(str(out)).count()
    summary.rejected = len(rejected_by_key.keys() | duplicates.keys())
    summary.rows = summary.evaluated + summary.rejected
    if rejected_by_key or duplicates:
        numbers = _row_numbers(df, [*rejected_by_key, *duplicates, *(first for _, first in duplicates.values())])
        rejected_by_key = _with_duplicate_problems(rejected_by_key, duplicates, numbers)
        rejected = {numbers[k]: v for k, v in rejected_by_key.items()}
        ids: dict[int, str | None] = {numbers[k]: patient_id for k, (patient_id, _) in duplicates.items()}
        ids.update({numbers[r[ROW_COLUMN]]: r.get(ID_COLUMN) for r in suspects if r[ROW_COLUMN] in rejected_by_key})
        summary.problems = _problems(rejected, ids)
        rows = []
        for r in raw.where(sf.col(ROW_COLUMN).isin(list(rejected_by_key))).collect():
            row = r.asDict(recursive=True)
            row[ROW_COLUMN] = numbers[row[ROW_COLUMN]]
            rows.append(row)
        path_out = Path(rejects) if rejects else default_rejects_path(out, fmt)
        _write_rejects(path_out, fmt, rows, rejected)
        summary.rejects = str(path_out)
    for name in (view, f"{view}_typed", f"{view}_ok", f"{view}_duplicates"):
        spark.catalog.dropTempView(name)
    summary.seconds = time.perf_counter() - started
    return summary


@contextmanager
def _spark_progress(spark: Any, progress: Progress | None) -> Iterator[None]:
    """Report the share of finished tasks of the active stages (Spark's status tracker)."""
    if progress is None:
        yield
        return
    tracker = spark.sparkContext.statusTracker()
    done = threading.Event()

    def poll() -> None:
        while not done.wait(0.5):
            stages = [tracker.getStageInfo(s) for s in tracker.getActiveStageIds()]
            total = sum(s.numTasks for s in stages if s)
            if total:
                progress(sum(s.numCompletedTasks for s in stages if s) / total)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        progress(1.0)


# --- Duplicate patient_id -----------------------------------------------------------------------
# A patient_id names one patient: its second and later rows are bad rows ("duplicate of row N"),
# reported and set aside like any other, whatever the first row holds. The check is one hash
# aggregate over patient_id alone; the rows of the repeated ids are looked up only when there are some.


def duplicate_problem(first_row: int) -> Problem:
    return Problem(ID_COLUMN, f"duplicate of row {first_row}")


def _patient_key(quote: Callable[[str], str], text_type: str, stored_as_text: bool) -> str:
    # The same trimmed id the staging query gives `patient_id`, so ' A' and 'A' are one patient.
    column = quote(ID_COLUMN)
    return f"trim({column})" if stored_as_text else f"trim(CAST({column} AS {text_type}))"


def duplicate_rows_duckdb(con: Any, id_type: str) -> dict[int, tuple[str, int]]:
    """Over the `raw` view: row number -> (patient_id, row number of its first occurrence), later rows only."""
    import pyarrow as pa

    key = _patient_key(STAGING["duckdb"].rules.quote, "VARCHAR", _duckdb_kind(id_type) == "text")
    # Grouping 64-bit hashes is a quarter cheaper than grouping the strings; a hash seen twice is
    # only a candidate, and the exact ids of the candidate rows decide (a collision is no duplicate).
    hashes = con.execute(f"SELECT hash({key}) AS h FROM raw GROUP BY h HAVING count(*) > 1").fetchall()
    if not hashes:
        return {}
    con.register("repeated_hashes", pa.table({"h": pa.array([h[0] for h in hashes], pa.uint64())}))
    rows = con.execute(
        f'SELECT "{ROW_COLUMN}", {key} AS k FROM raw WHERE hash({key}) IN (SELECT h FROM repeated_hashes)'
        f" AND k <> '' ORDER BY 1"
    ).fetchall()
    con.unregister("repeated_hashes")
    return _later_occurrences(rows)


def _later_occurrences(rows: Sequence[tuple[int, str]]) -> dict[int, tuple[str, int]]:
    """From (row key, patient_id) pairs in row order: each later row's id and the key of the first."""
    first: dict[str, int] = {}
    later: dict[int, tuple[str, int]] = {}
    for row, patient_id in rows:
        if patient_id in first:
            later[row] = (patient_id, first[patient_id])
        else:
            first[patient_id] = row
    return later


@dataclass(slots=True)
class _JudgedWithDuplicates(_Judged):
    """`_Judged`, and the rows of repeated patient_ids dropped from every batch too."""

    duplicates: dict[int, tuple[str, int]] = field(default_factory=dict)
    _duplicate_rows: Any = field(default=None, init=False, repr=False)

    def keep_mask(self, batch: Any) -> Any:
        import pyarrow as pa
        import pyarrow.compute as pc

        keep = _Judged.keep_mask(self, batch)
        if self._duplicate_rows is None:
            self._duplicate_rows = pa.array(list(self.duplicates), pa.int64())
        unique = pc.invert(pc.is_in(batch.column(ROW_COLUMN), value_set=self._duplicate_rows))
        return unique if keep is None else pc.and_(keep, unique)

    def add_duplicate_problems(self) -> None:
        """Put each repeated row's problem first among its problems (call once the batches are written)."""
        for row, (patient_id, first) in self.duplicates.items():
            self.rejected.setdefault(row, []).insert(0, duplicate_problem(first))
            self.ids.setdefault(row, patient_id)


def _judged(
    present: list[str], fetch: Callable[[list[int]], list[dict[str, Any]]], duplicates: dict[int, tuple[str, int]]
) -> _Judged:
    """Plain `_Judged` when every patient_id is unique, so that case pays no per-batch lookup."""
    if duplicates:
        return _JudgedWithDuplicates(present, fetch, duplicates=duplicates)
    return _Judged(present, fetch)


def duplicate_rows_spark(spark: Any, view: str) -> dict[int, tuple[str, int]]:
    """Over a Spark view with `__row` keys: row key -> (patient_id, key of its first occurrence), later rows only.

    The keys (`monotonically_increasing_id`) grow in read order, so the smallest key is the first row.
    """
    key = _patient_key(STAGING["spark"].rules.quote, "STRING", False)
    repeated = spark.sql(
        f"SELECT k FROM (SELECT {key} AS k FROM {view}) GROUP BY k HAVING count(*) > 1 AND k <> ''"
    ).collect()
    if not repeated:
        return {}
    spark.createDataFrame([(r[0],) for r in repeated], "k STRING").createOrReplaceTempView(f"{view}_repeated")
    rows = spark.sql(
        f"SELECT `{ROW_COLUMN}`, {key} AS k FROM {view} WHERE {key} IN (SELECT k FROM {view}_repeated)"
        f" ORDER BY `{ROW_COLUMN}`"
    ).collect()
    spark.catalog.dropTempView(f"{view}_repeated")
    return _later_occurrences([(r[0], r[1]) for r in rows])


def _spark_without_duplicates(spark: Any, view: str, where: str, duplicates: dict[int, tuple[str, int]]) -> str:
    if not duplicates:
        return where
    spark.createDataFrame([(k,) for k in duplicates], f"{ROW_COLUMN} BIGINT").createOrReplaceTempView(
        f"{view}_duplicates"
    )
    return f"({where}) AND `{ROW_COLUMN}` NOT IN (SELECT `{ROW_COLUMN}` FROM {view}_duplicates)"


def _with_duplicate_problems(
    rejected: dict[int, list[Problem]], duplicates: dict[int, tuple[str, int]], numbers: dict[int, int]
) -> dict[int, list[Problem]]:
    """Row keys' problems with each repeated row's "duplicate of row N" first (N from `numbers`)."""
    merged = {key: list(problems) for key, problems in rejected.items()}
    for key, (_, first) in duplicates.items():
        merged.setdefault(key, []).insert(0, duplicate_problem(numbers[first]))
    return merged
