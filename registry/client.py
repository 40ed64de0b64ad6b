"""The model registry: MLflow (SQLite store + local artifacts by default, any server at scale).

Aliases (``production``, ``challenger``, ...) name versions; registry stages are deprecated in
MLflow 3 and not used. A version is immutable: its files, its digest (the manifest's content
hash) and its tags never change. MLflow keeps no history of alias moves: ``lifecycle`` records
each one in SQL.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from modq.errors import ModelUnavailable, UnknownModel
from registry.uri import ModelRef

if TYPE_CHECKING:
    from mlflow import MlflowClient

EXPERIMENT = "modq-models"
ARTIFACT_PATH = "model"
MANIFEST_FILE = "manifest.json"


@dataclass(frozen=True, slots=True)
class RegisteredVersion:
    """One immutable registered version and the aliases that point at it now."""

    name: str
    version: str
    digest: str  # the artifact's content hash (its manifest version)
    source: str  # artifact URI
    run_id: str | None
    created_at: str
    aliases: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    description: str = ""


@contextmanager
def _mlflow_errors(what: str) -> Iterator[None]:
    """MLflow's exceptions → our tree: a missing thing is UnknownModel, the rest unavailable."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise UnknownModel(f"{what}: {exc.message}") from exc
        raise ModelUnavailable(f"{what}: registry error {exc.error_code}: {exc.message}") from exc
    except OSError as exc:
        raise ModelUnavailable(f"{what}: registry unreachable: {exc}") from exc


class ModelRegistry:
    """Register model folders, list versions, move aliases, fetch a version's files."""

    def __init__(self, tracking_uri: str, artifact_root: Path, cache_dir: Path) -> None:
        self.tracking_uri = tracking_uri
        self.artifact_root = Path(artifact_root).resolve()
        self.cache_dir = Path(cache_dir)
        self._client: MlflowClient | None = None

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            from mlflow import MlflowClient

            if self.tracking_uri.startswith("sqlite:///"):
                Path(self.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(
                    parents=True, exist_ok=True
                )
            self._client = MlflowClient(
                tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri
            )
        return self._client

    # --- writing ----------------------------------------------------------------------------
    def register(
        self,
        folder: Path,
        name: str,
        *,
        tags: Mapping[str, str],
        metrics: Mapping[str, float],
        description: str = "",
    ) -> RegisteredVersion:
        """Log the folder's files in a run and register them as a new version of ``name``."""
        with _mlflow_errors(f"registering {folder} as {name}"):
            client = self.client
            run = client.create_run(self._experiment_id(), tags={"modq.kind": "register", **tags})
            run_id = run.info.run_id
            for key, value in metrics.items():
                client.log_metric(run_id, key, value)
            client.log_artifacts(run_id, str(folder), ARTIFACT_PATH)
            client.set_terminated(run_id)
            source = f"{run.info.artifact_uri}/{ARTIFACT_PATH}"
            self._ensure_registered_model(name)
            created = client.create_model_version(
                name, source=source, run_id=run_id, tags=dict(tags), description=description
            )
        return self.get(name, str(created.version))

    def log_evaluation(self, entry: RegisteredVersion, metrics: Mapping[str, float]) -> str:
        """Log held-out metrics of a version as a run of its own; returns the run id."""
        with _mlflow_errors(f"logging evaluation of {entry.name} v{entry.version}"):
            client = self.client
            run = client.create_run(
                self._experiment_id(),
                tags={
                    "modq.kind": "eval",
                    "modq.model": entry.name,
                    "modq.version": entry.version,
                    "modq.digest": entry.digest,
                },
            )
            for key, value in metrics.items():
                client.log_metric(run.info.run_id, key, value)
            client.set_terminated(run.info.run_id)
        return str(run.info.run_id)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        with _mlflow_errors(f"pointing {name}@{alias} at v{version}"):
            self.client.set_registered_model_alias(name, alias, version)

    # --- reading ----------------------------------------------------------------------------
    def get(self, name: str, version: str) -> RegisteredVersion:
        with _mlflow_errors(f"no version {version} of model {name!r}"):
            found = self.client.get_model_version(name, version)
        return _entry(found)

    def resolve(self, ref: ModelRef) -> RegisteredVersion:
        """The version an alias points at now, or the pinned version."""
        if ref.version is not None:
            return self.get(ref.name, ref.version)
        with _mlflow_errors(f"no alias {ref.alias!r} on model {ref.name!r}"):
            found = self.client.get_model_version_by_alias(ref.name, str(ref.alias))
        return _entry(found)

    def aliases(self, name: str) -> dict[str, str]:
        """alias → version, for every alias of ``name``."""
        with _mlflow_errors(f"no model {name!r} in the registry"):
            model = self.client.get_registered_model(name)
        return {str(alias): str(version) for alias, version in dict(model.aliases).items()}

    def versions(self, name: str) -> list[RegisteredVersion]:
        """Every version of ``name``, oldest first (an unknown name is an error)."""
        aliases = self.aliases(name)  # raises UnknownModel for a name that does not exist
        with _mlflow_errors(f"listing versions of {name!r}"):
            found = self.client.search_model_versions(f"name = '{name}'")
        entries = []
        for version in found:  # search results carry no aliases: take them from the model
            entry = _entry(version)
            held = tuple(sorted(a for a, v in aliases.items() if v == entry.version))
            entries.append(replace(entry, aliases=held))
        return sorted(entries, key=lambda e: int(e.version))

    def names(self) -> list[str]:
        with _mlflow_errors("listing registered models"):
            return sorted(m.name for m in self.client.search_registered_models())

    def local_folder(self, entry: RegisteredVersion) -> Path:
        """A folder on this disk holding the version's files (downloaded once if remote)."""
        parsed = urlparse(entry.source)
        if parsed.scheme in ("", "file"):
            folder = Path(unquote(parsed.path))
        else:
            folder = self.cache_dir / entry.name / entry.version
            if not (folder / MANIFEST_FILE).exists():
                self._download(entry, folder)
        _check_digest(folder, entry)
        return folder

    # --- helpers ----------------------------------------------------------------------------
    def _experiment_id(self) -> str:
        client = self.client
        found = client.get_experiment_by_name(EXPERIMENT)
        if found is not None:
            return str(found.experiment_id)
        self.artifact_root.mkdir(parents=True, exist_ok=True)
        return str(
            client.create_experiment(EXPERIMENT, artifact_location=self.artifact_root.as_uri())
        )

    def _ensure_registered_model(self, name: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            self.client.create_registered_model(name)

    def _download(self, entry: RegisteredVersion, folder: Path) -> None:
        import mlflow

        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".download-", dir=folder.parent))
        try:
            with _mlflow_errors(f"downloading {entry.name} v{entry.version}"):
                mlflow.set_tracking_uri(self.tracking_uri)
                path = mlflow.artifacts.download_artifacts(
                    artifact_uri=entry.source, dst_path=str(staging)
                )
            os.replace(path, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _check_digest(folder: Path, entry: RegisteredVersion) -> None:
    """The files must be those registered: a missing or changed manifest is a corrupt artifact."""
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelUnavailable(
            f"{entry.name} v{entry.version}: artifact at {folder} is missing or corrupt ({exc})"
        ) from exc
    if entry.digest and manifest.get("version") != entry.digest:
        raise ModelUnavailable(
            f"{entry.name} v{entry.version}: artifact digest {manifest.get('version')} is not the "
            f"registered {entry.digest}"
        )


def _entry(version: Any) -> RegisteredVersion:
    tags = {str(k): str(v) for k, v in dict(version.tags or {}).items()}
    created = datetime.fromtimestamp((version.creation_timestamp or 0) / 1000, UTC)
    return RegisteredVersion(
        name=str(version.name),
        version=str(version.version),
        digest=tags.get("modq.digest", ""),
        source=str(version.source),
        run_id=version.run_id,
        created_at=created.isoformat(timespec="seconds"),
        aliases=tuple(str(a) for a in (getattr(version, "aliases", None) or ())),
        tags=tags,
        description=str(version.description or ""),
    )
