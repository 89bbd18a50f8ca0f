"""Driver script for `spark-submit`: evaluate a facts table on whatever cluster spark-submit names.

    spark-submit --master spark://head:7077 $(python -c 'import allpath.cohort.spark_main as m; print(m.__file__)') \\
        hdfs:///registry/facts.parquet hdfs:///registry/allpath-results --rejects ./rejects.parquet

The session is taken from spark-submit (master, executors, memory), never forced to local mode.
Executors need no Python packages: the rules run as Spark SQL in the JVM; only this driver
imports allpath.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="allpath-spark", description="Evaluate allpath's rules over a facts table.")
    parser.add_argument("source", help="Facts table (.csv or Parquet file/directory), on any filesystem Spark reads.")
    parser.add_argument("out", help="Results directory (Parquet part files).")
    parser.add_argument("--rejects", default=None, help="Local file for rejected rows (default: next to out).")
    args = parser.parse_args(argv)

    from pyspark.sql import SparkSession

    from allpath.cohort.evaluate import evaluate_spark
    from allpath.cohort.staging import TableError
    from allpath.knowledge import load_kb
    from allpath.settings import KnowledgeSettings, SettingsError

    try:
        parameters = KnowledgeSettings.from_env().parameters()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    spark = SparkSession.builder.appName("allpath-cohort").getOrCreate()
    try:
        summary = evaluate_spark(
            args.source, args.out, load_kb(parameters=parameters), spark=spark, rejects=args.rejects
        )
    except TableError as exc:
        for table_problem in exc.problems:
            print(table_problem, file=sys.stderr)
        return 2
    for row_problem in summary.problems[:20]:
        print(row_problem, file=sys.stderr)
    print(f"{summary.rows} rows: {summary.evaluated} evaluated, {summary.rejected} rejected -> {summary.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
