"""Where a worker's model comes from: a fixed folder, or a registry alias it follows.

``resolve()`` turns the source into an immutable (name, version, folder) at that moment; the
engine loads that, stamps it on every result, and resolves again to notice an alias move.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gpu_worker.manifest import ModelManifest
from registry import ModelRef, ModelRegistry


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    """What was loaded: the name and version stamped on results, and its files."""

    name: str
    version: str
    folder: Path
    digest: str  # the artifact's content hash (manifest version)


class FolderSource:
    """A model folder on disk (``MODQ_MODEL_DIR``): name and version from its manifest."""

    follows_moves = False

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def resolve(self) -> ResolvedModel:
        folder = self.folder.resolve()  # a symlink such as models/current: pin its target
        manifest = ModelManifest.read(folder)
        return ResolvedModel(manifest.name, manifest.version, folder, manifest.version)

    def __str__(self) -> str:
        return str(self.folder)


class RegistrySource:
    """``models:/NAME@ALIAS`` (follows alias moves) or ``models:/NAME/VERSION`` (pinned)."""

    def __init__(self, ref: ModelRef, registry: ModelRegistry) -> None:
        self.ref = ref
        self.registry = registry
        self.follows_moves = ref.alias is not None

    def resolve(self) -> ResolvedModel:
        entry = self.registry.resolve(self.ref)
        folder = self.registry.local_folder(entry)
        return ResolvedModel(entry.name, entry.version, folder, entry.digest)

    def __str__(self) -> str:
        return str(self.ref)
