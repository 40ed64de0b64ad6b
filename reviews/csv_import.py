"""`modq review import FILE.csv`: review outcomes from a file, checked row by row.

Two shapes, told apart by the header (one file may combine them):
- ``content_id,label[,reviewer][,reviewed_at]`` — ``label`` is violation/safe (overall);
- ``content_id,<category>...[,reviewer][,reviewed_at]`` — one column per canonical category,
  each violation/safe, 1/0, true/false, yes/no, or blank (that category was not reviewed).

A bad header stops the import before anything is stored. A malformed row is skipped and
reported with its line number; an unknown content id is reported and not stored (a review of
content modq never decided cannot be joined to anything). Everything else is stored in
batches, idempotently: importing the same file twice changes nothing.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from db.reviews import RecordCounts, ReviewOutcome, ReviewRepository
from modq.errors import InvalidReview
from reviews.labels import CATEGORIES, review_outcomes

BATCH_ROWS = 2_000
OPTIONAL = ("reviewer", "reviewed_at")
SHOWN = 20  # problems listed by name in a report; the counts cover all


@dataclass(slots=True)
class ImportReport:
    rows: int = 0
    counts: RecordCounts = field(default_factory=RecordCounts)
    repeated_in_file: int = 0  # the same (content_id, category) twice in this file
    unknown: list[tuple[int, str]] = field(default_factory=list)  # (line, content_id)
    malformed: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)

    @property
    def clean(self) -> bool:
        """Every row was stored or was there already."""
        return not self.unknown and not self.malformed

    def lines(self) -> list[str]:
        """The report as people read it."""
        out = [
            f"{self.rows} rows: {self.counts.new} new, {self.counts.unchanged} unchanged, "
            f"{self.counts.changed} changed, {len(self.unknown)} unknown content ids, "
            f"{len(self.malformed)} malformed"
            + (f" ({self.repeated_in_file} repeated in the file)" if self.repeated_in_file else "")
        ]
        if self.unknown:
            shown = ", ".join(f"{cid} (line {line})" for line, cid in self.unknown[:SHOWN])
            more = f" and {len(self.unknown) - SHOWN} more" if len(self.unknown) > SHOWN else ""
            out.append(f"unknown content ids, not stored: {shown}{more}")
        for line, reason in self.malformed[:SHOWN]:
            out.append(f"line {line}: {reason}")
        if len(self.malformed) > SHOWN:
            out.append(f"... and {len(self.malformed) - SHOWN} more malformed rows")
        return out


def _columns(header: list[str] | None) -> tuple[bool, list[str]]:
    """(overall shape?, category columns) from the header, or ``InvalidReview``."""
    if not header:
        raise InvalidReview("the file is empty: a header row is required")
    names = [h.strip() for h in header]
    if "content_id" not in names:
        raise InvalidReview(f"no content_id column in the header {names}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InvalidReview(f"columns repeat in the header: {', '.join(repeated)}")
    rest = [n for n in names if n not in ("content_id", *OPTIONAL)]
    unknown = [n for n in rest if n != "label" and n not in CATEGORIES]
    if unknown or not rest:
        raise InvalidReview(
            f"unknown columns {unknown or '(none to label)'}; expected content_id with "
            f"label and/or category columns ({', '.join(CATEGORIES)}), and optional "
            f"{', '.join(OPTIONAL)}"
        )
    return "label" in rest, [n for n in rest if n != "label"]


def import_reviews(
    path: Path,
    repository: ReviewRepository,
    *,
    source: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import ``path``; ``progress(rows_done)`` is called after each stored batch."""
    report = ImportReport()
    origin = source or path.name
    seen: set[tuple[str, str]] = set()
    try:
        file = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise InvalidReview(f"cannot read {path}: {exc}") from exc
    with file:
        reader = csv.reader(file)
        try:
            header = next(reader, None)
            overall, categories = _columns(header)
            assert header is not None
            names = [h.strip() for h in header]
            batch: list[tuple[int, list[ReviewOutcome]]] = []
            for row in reader:
                line = reader.line_num
                if not any(cell.strip() for cell in row):
                    continue  # blank lines are not rows
                report.rows += 1
                if len(row) != len(names):
                    report.malformed.append(
                        (line, f"{len(row)} fields, the header has {len(names)}")
                    )
                    continue
                cells = dict(zip(names, row, strict=True))
                try:
                    outcomes = review_outcomes(
                        cells["content_id"],
                        label=cells.get("label") if overall else None,
                        labels={c: cells[c] for c in categories},
                        source=origin,
                        reviewer=cells.get("reviewer") or None,
                        reviewed_at=cells.get("reviewed_at"),
                    )
                except InvalidReview as exc:
                    report.malformed.append((line, exc.message))
                    continue
                for outcome in outcomes:
                    key = (outcome.content_id, outcome.category)
                    if key in seen:
                        report.repeated_in_file += 1
                    seen.add(key)
                batch.append((line, outcomes))
                if len(batch) >= BATCH_ROWS:
                    _store(batch, repository, report, progress)
                    batch = []
            _store(batch, repository, report, progress)
        except UnicodeDecodeError as exc:
            raise InvalidReview(f"{path} is not UTF-8 text: {exc}") from exc
        except csv.Error as exc:
            raise InvalidReview(f"{path} line {reader.line_num}: {exc}") from exc
    return report


def _store(
    batch: list[tuple[int, list[ReviewOutcome]]],
    repository: ReviewRepository,
    report: ImportReport,
    progress: Callable[[int], None] | None,
) -> None:
    if not batch:
        return
    known = repository.known_content_ids(o[0].content_id for _, o in batch)
    keep: list[ReviewOutcome] = []
    for line, outcomes in batch:
        if outcomes[0].content_id in known:
            keep += outcomes
        else:
            report.unknown.append((line, outcomes[0].content_id))
    report.counts.add(repository.record(keep))
    if progress is not None:
        progress(report.rows)
