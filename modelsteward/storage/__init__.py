"""Storage: relational registry (SQLAlchemy), request-log store (Parquet + DuckDB), tracking (MLflow)."""
