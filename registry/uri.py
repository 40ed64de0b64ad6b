"""``models:/NAME@ALIAS`` and ``models:/NAME/VERSION``: what a worker is told to serve."""

from __future__ import annotations

import re
from dataclasses import dataclass

from modq.errors import UnknownModel

_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[\w-]+)|/(?P<version>\d+))$")


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A registered model and either an alias (follows moves) or a pinned version."""

    name: str
    alias: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        return (
            f"models:/{self.name}@{self.alias}"
            if self.alias
            else f"models:/{self.name}/{self.version}"
        )


def parse_model_uri(uri: str) -> ModelRef:
    """Parse a registry URI; anything else is an ``UnknownModel`` error that says the form."""
    match = _URI.match(uri.strip())
    if match is None:
        raise UnknownModel(
            f"cannot read model URI {uri!r}: expected models:/NAME@ALIAS or models:/NAME/VERSION"
        )
    return ModelRef(match["name"], alias=match["alias"], version=match["version"])
