"""Cohort analytics: the KB's rules compiled to SQL and run over facts tables (DuckDB or Spark)."""
