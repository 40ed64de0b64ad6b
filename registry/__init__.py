"""The model registry (MLflow): versions, aliases, artifacts. Nothing here loads a model."""

from modq.settings import Settings
from registry.client import ModelRegistry, RegisteredVersion
from registry.uri import ModelRef, parse_model_uri


def registry_from_settings(settings: Settings) -> ModelRegistry:
    """The registry named by ``MODQ_MLFLOW_URI`` and ``MODQ_MLFLOW_ARTIFACT_ROOT``."""
    return ModelRegistry(
        settings.mlflow_uri, settings.mlflow_artifact_root, settings.model_cache_dir
    )


__all__ = [
    "ModelRef",
    "ModelRegistry",
    "RegisteredVersion",
    "parse_model_uri",
    "registry_from_settings",
]
