"""`modq review import FILE.csv`: review outcomes from a file, checked row by row.

Two shapes, told apart by the header (one file may combine them):
- ``content_id,label[,reviewer][,reviewed_at]`` — ``label`` is violation/safe (overall);
- ``content_id,<category>...[,reviewer][,reviewed_at]`` — one column per canonical category,
  each violation/safe, 1/0, true/false, yes/no, or blank (that category was not reviewed).

A bad header, or text that is not UTF-8 or not CSV, stops the import before anything is
stored (the file is read twice: checked through once, then stored in batches). A malformed row
is skipped and reported with its line number; an unknown content id is reported and not stored
(a review of content modq never decided cannot be joined to anything). When the file labels
the same content and category more than once, its last label is the one stored. Everything
else is stored idempotently: importing the same file twice changes nothing.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

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
    repeated_in_file: int = 0  # labels a later row of the file labels again
    unknown: list[tuple[int, str]] = field(default_factory=list)  # (line, content_id)
    malformed: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)

    @property
    def clean(self) -> bool:
        """Every row was stored or was there already."""
        return not self.unknown and not self.malformed

    def lines(self) -> list[str]:
        """The report as people read it."""
        counts = self.counts
        summary = (
            f"{self.rows} rows: labels {counts.new} new, {counts.unchanged} unchanged, "
            f"{counts.changed} changed; {len(self.unknown)} unknown content ids, "
            f"{len(self.malformed)} malformed rows"
        )
        if self.repeated_in_file:
            summary += f"; {self.repeated_in_file} labels repeated in the file"
        out = [summary]
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
    origin = source or path.name
    try:
        file = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise InvalidReview(f"cannot read {path}: {exc}") from exc
    with file:
        try:
            last_line: dict[tuple[str, str], int] = {}  # where the file last labels each
            for line, outcomes in _parsed_rows(file, origin, ImportReport()):
                last_line.update(((o.content_id, o.category), line) for o in outcomes)
            file.seek(0)
            report = ImportReport()
            batch = _Batch(repository, report, progress)
            for line, outcomes in _parsed_rows(file, origin, report):
                batch.add(line, outcomes, last_line)
            batch.flush()
        except UnicodeDecodeError as exc:
            raise InvalidReview(f"{path} is not UTF-8 text: {exc}") from exc
    return report


def _parsed_rows(
    file: TextIO, origin: str, report: ImportReport
) -> Iterator[tuple[int, list[ReviewOutcome]]]:
    """(line, outcomes) of each good row; rows and malformed ones are counted in ``report``."""
    reader = csv.reader(file)
    try:
        header = next(reader, None)
        overall, categories = _columns(header)
        assert header is not None
        names = [h.strip() for h in header]
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue  # blank lines are not rows
            report.rows += 1
            if len(row) != len(names):
                report.malformed.append((line, f"{len(row)} fields, the header has {len(names)}"))
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
            yield line, outcomes
    except csv.Error as exc:
        raise InvalidReview(f"line {reader.line_num}: {exc}") from exc


class _Batch:
    """Rows waiting to be stored: their ids checked in bulk, their labels stored in one
    transaction. A label that a later row of the file labels again is counted, not stored."""

    def __init__(
        self,
        repository: ReviewRepository,
        report: ImportReport,
        progress: Callable[[int], None] | None,
    ) -> None:
        self._repository = repository
        self._report = report
        self._progress = progress
        self._rows: list[tuple[int, str, list[ReviewOutcome]]] = []  # (line, id, to store)

    def add(
        self, line: int, outcomes: list[ReviewOutcome], last_line: dict[tuple[str, str], int]
    ) -> None:
        keep = [o for o in outcomes if last_line[(o.content_id, o.category)] == line]
        self._report.repeated_in_file += len(outcomes) - len(keep)
        self._rows.append((line, outcomes[0].content_id, keep))
        if len(self._rows) >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self._rows:
            return
        known = self._repository.known_content_ids(cid for _, cid, _ in self._rows)
        store: list[ReviewOutcome] = []
        for line, content_id, outcomes in self._rows:
            if content_id in known:
                store += outcomes
            else:
                self._report.unknown.append((line, content_id))
        self._report.counts.add(self._repository.record(store))
        self._rows = []
        if self._progress is not None:
            self._progress(self._report.rows)
