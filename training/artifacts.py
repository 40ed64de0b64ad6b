"""Model folders on disk: content-addressed versions, atomic publish, the ``current`` link."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path


def onnx_version(onnx_path: Path) -> str:
    """A model's version: the first 12 hex digits of its ONNX file's sha256."""
    return hashlib.sha256(onnx_path.read_bytes()).hexdigest()[:12]


def staging_folder(models_root: Path) -> Path:
    """A fresh hidden folder under ``models_root`` to assemble a model in."""
    models_root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=".build-", dir=models_root))


def publish_folder(staging: Path, models_root: Path, name: str, version: str) -> Path:
    """Move a finished staging folder to ``models_root/name/version`` (replacing one there)."""
    final = models_root / name / version
    if final.exists():
        shutil.rmtree(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, final)
    return final


def point_current(models_root: Path, target: Path) -> Path:
    """Atomically repoint ``models_root/current`` at ``target``."""
    link = models_root / "current"
    temporary = models_root / f".current-{os.getpid()}"
    if temporary.is_symlink():
        temporary.unlink()
    temporary.symlink_to(target.resolve().relative_to(models_root.resolve()))
    os.replace(temporary, link)
    return link
