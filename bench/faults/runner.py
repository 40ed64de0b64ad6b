"""Running the fault scenarios and printing their table (see ``bench.faults.__main__``)."""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from bench.faults import FaultRow

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "bench" / "results" / "faults.json"
DOC = REPO / "docs" / "reliability.md"
BEGIN, END = "<!-- faults:begin -->", "<!-- faults:end -->"
# Run order: cheap and self-contained first, broker restarts last.
SCENARIOS = (
    "poison",
    "hostile_items",
    "worker_kill",
    "hanging_webhook",
    "database_outage",
    "model_failure",
    "model_hang",
    "backpressure_flood",
    "redis_restart",
    "rabbitmq_restart",
)
COLUMNS = ("scenario", "broker", "sent", "stored", "lost", "duplicated", "caller_errors")


def run_scenario(name: str, *, quick: bool) -> list[FaultRow]:
    """One scenario's rows; a scenario that crashes is a row that says so, never a silent gap."""
    module = importlib.import_module(f"bench.faults.{name}")
    workdir = Path(tempfile.mkdtemp(prefix=f"modq-fault-{name}-"))
    started = time.monotonic()
    try:
        rows = module.run(workdir, quick=quick)
    except Exception as error:  # reported in the table, with its traceback
        traceback.print_exc()
        return [FaultRow(name, "?", 0, 0, 0, 0, 0, notes=f"scenario failed: {error!r}"[:200])]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    rows = rows if isinstance(rows, list) else [rows]
    elapsed = time.monotonic() - started
    return [row if row.seconds else _with_seconds(row, elapsed / len(rows)) for row in rows]


def _with_seconds(row: FaultRow, seconds: float) -> FaultRow:
    data = row.as_dict()
    data["seconds"] = round(seconds, 1)
    return FaultRow(**data)  # type: ignore[arg-type]


def table(rows: Sequence[FaultRow]) -> str:
    """The Markdown table of ``rows``: the counts, then the dead-lettered/typed and notes."""
    head = [*COLUMNS, "dead-lettered", "failed (typed)", "s", "notes"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [str(getattr(row, column)) for column in COLUMNS]
        cells += [str(row.dead_lettered), str(row.failed_typed), f"{row.seconds:.0f}", row.notes]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def update_doc(markdown: str) -> None:
    """Replace the table between the markers of docs/reliability.md."""
    text = DOC.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    DOC.write_text(f"{head}{BEGIN}\n{markdown}\n{END}{tail}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the small subset CI runs")
    parser.add_argument("--only", help="comma-separated scenario names")
    parser.add_argument("--markdown", action="store_true", help="write docs/reliability.md")
    parser.add_argument("--json", type=Path, default=RESULTS, help=f"default: {RESULTS}")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(SCENARIOS)
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    rows: list[FaultRow] = []
    for index, name in enumerate(names, 1):
        print(f"[{index}/{len(names)}] {name} …", file=sys.stderr, flush=True)
        for row in run_scenario(name, quick=args.quick):
            rows.append(row)
            print(
                f"    {row.broker}: sent {row.sent}, stored {row.stored}, lost {row.lost}, "
                f"duplicated {row.duplicated}, caller errors {row.caller_errors}",
                file=sys.stderr,
                flush=True,
            )
    markdown = table(rows)
    print(markdown)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps([row.as_dict() for row in rows], indent=2) + "\n")
    if args.markdown:
        update_doc(markdown)
    if any(row.notes.startswith("scenario failed") for row in rows):
        sys.exit(1)
