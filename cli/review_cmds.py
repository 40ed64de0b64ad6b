"""`modq review import FILE.csv`: ground truth from human review, for A/B analysis."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from cli.registry_cmds import _clear_errors

PROGRESS_EVERY_ROWS = 10_000


@click.group()
def review() -> None:
    """Human review outcomes (ground truth for `modq ab report`)."""


@review.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--source", default=None, help="Where the labels come from (default: file name).")
def review_import(file: Path, source: str | None) -> None:
    """Import review outcomes from a CSV file.

    Header `content_id,label` (violation/safe), or `content_id` plus one column per category
    (violation/safe, 1/0, true/false, yes/no; blank = not reviewed); optional `reviewer` and
    `reviewed_at` (ISO-8601). Re-importing a file changes nothing; a corrected label replaces
    the old one. Exit status 0 if every row was stored (or was there already), 1 if any row
    was malformed or named content modq never decided: those are listed and not stored, the
    good rows are.
    """
    from db.reviews import ReviewRepository
    from db.session import make_engine
    from modq.settings import get_settings
    from reviews.csv_import import import_reviews

    last_shown = 0

    def progress(rows: int) -> None:
        nonlocal last_shown
        if rows - last_shown >= PROGRESS_EVERY_ROWS:
            click.echo(f"  {rows:,} rows read", err=True)
            last_shown = rows

    with _clear_errors():
        engine = make_engine(get_settings().database_url)
        try:
            report = import_reviews(
                file, ReviewRepository(engine), source=source, progress=progress
            )
        finally:
            engine.dispose()
    for line in report.lines():
        click.echo(line)
    if not report.clean:
        sys.exit(1)
