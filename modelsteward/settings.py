"""Service settings, read from the environment (secrets only from there), built by a factory."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings", "reset_settings_cache"]


class Settings(BaseSettings):
    """Everything configurable about a Model Steward workspace.

    Environment names are part of the command-line contract (DESIGN.md); do not rename them.
    """

    model_config = SettingsConfigDict(env_prefix="STEWARD_", extra="ignore", populate_by_name=True)

    home: Path = Field(default=Path(".steward"), description="Workspace folder (STEWARD_HOME).")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL (STEWARD_DATABASE_URL).")
    log_dir: str | None = Field(
        default=None, description="Request-log store: a folder, file:///path or s3://bucket/prefix (STEWARD_LOG_DIR).")
    wal_dir: Path | None = Field(
        default=None, description="Local folder of the log store's write-ahead files (STEWARD_WAL_DIR); default "
                                  "<log folder>/wal, or <workspace>/wal when the logs are in a bucket.")
    cache_dir: Path = Field(
        default_factory=lambda: Path.home() / ".cache" / "modelsteward",
        description="Machine-wide cache (converted local models) shared by workspaces (STEWARD_CACHE_DIR).",
    )
    mlflow_tracking_uri: str | None = Field(default=None, validation_alias="MLFLOW_TRACKING_URI")
    agent_llm: str | None = Field(default=None, description="openai:MODEL for the LLM planner (STEWARD_AGENT_LLM).")
    log_batch_rows: int = Field(default=5000, ge=1)
    log_flush_seconds: float = Field(default=1.0, gt=0)
    max_request_bytes: int = Field(default=1_000_000, ge=1024)

    @property
    def workspace(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.workspace / 'steward.db'}"

    @property
    def logs_location(self):  # type: ignore[no-untyped-def]
        """The parsed ``STEWARD_LOG_DIR`` (a ``ConfigError`` naming it for a scheme we do not support)."""
        from modelsteward.loglocation import parse_log_location

        return parse_log_location(self.log_dir, default=self.workspace / "logs")

    @property
    def logs_path(self) -> Path:
        """The log folder; for a bucket, the workspace folder that holds its write-ahead files."""
        loc = self.logs_location
        return loc.path if loc.path is not None else self.wal_path

    @property
    def logs_url(self) -> str:
        return self.logs_location.url

    @property
    def wal_path(self) -> Path:
        if self.wal_dir is not None:
            return self.wal_dir.expanduser().resolve()
        loc = self.logs_location
        return loc.path / "wal" if loc.path is not None else self.workspace / "wal"

    @property
    def tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{self.workspace / 'mlflow.db'}"

    @property
    def artifacts_path(self) -> Path:
        return self.workspace / "artifacts"

    @property
    def is_sqlite(self) -> bool:
        return self.db_url.startswith("sqlite")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment on first use."""
    return Settings()


def reset_settings_cache() -> None:
    """Forget cached settings (tests change the environment between cases)."""
    get_settings.cache_clear()
