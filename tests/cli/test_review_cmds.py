"""`modq review import` as people type it: a summary, and an exit status that tells."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import migrations
from cli.main import main
from db.results import ResultRepository
from db.session import make_engine
from modq.settings import get_settings
from tests.factories import make_result


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'modq.db'}"
    migrations.upgrade(url)
    engine = make_engine(url)
    ResultRepository(engine).store_many([make_result(f"c-{i}") for i in range(3)])
    engine.dispose()
    monkeypatch.setenv("MODQ_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def _import(path: Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["review", "import", str(path)])
    return result.exit_code, result.stdout, result.stderr


def test_a_clean_file_exits_0_and_a_second_import_changes_nothing(
    database: str, tmp_path: Path
) -> None:
    path = tmp_path / "r.csv"
    path.write_text("content_id,label\nc-0,violation\nc-1,safe\n")
    code, out, _ = _import(path)
    assert code == 0 and "2 rows: labels 2 new, 0 unchanged, 0 changed" in out
    code, out, _ = _import(path)
    assert code == 0 and "2 rows: labels 0 new, 2 unchanged, 0 changed" in out


def test_unknown_or_malformed_rows_exit_1_after_storing_the_good_ones(
    database: str, tmp_path: Path
) -> None:
    path = tmp_path / "r.csv"
    path.write_text("content_id,label\nc-0,violation\nghost,safe\nc-1,perhaps\n")
    code, out, _ = _import(path)
    assert code == 1
    assert "3 rows: labels 1 new, 0 unchanged, 0 changed; 1 unknown content ids, 1 malformed" in out
    assert "ghost (line 3)" in out and "line 4: label: 'perhaps' is not a label" in out


def test_a_bad_header_or_a_database_that_is_down_is_one_line(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "r.csv"
    path.write_text("content_id,colour\nc-0,red\n")
    code, _, err = _import(path)
    assert code == 1 and "invalid_review: unknown columns ['colour']" in err
    assert "Traceback" not in err
    monkeypatch.setenv("MODQ_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    get_settings.cache_clear()
    path.write_text("content_id,label\nc-0,safe\n")
    code, _, err = _import(path)
    assert code == 1 and "storage_unavailable" in err


def test_a_big_file_shows_progress_on_stderr_and_help_tells_the_exit_status(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("reviews.csv_import.BATCH_ROWS", 2)
    monkeypatch.setattr("cli.review_cmds.PROGRESS_EVERY_ROWS", 4)
    path = tmp_path / "r.csv"
    path.write_text("content_id,spam\n" + "c-0,1\nc-1,0\nc-2,yes\n" * 3)
    code, out, err = _import(path)
    assert code == 0 and "9 rows: labels 3 new, 0 unchanged, 0 changed" in out
    assert "6 labels repeated in the file" in out
    assert "4 rows read" in err and "8 rows read" in err and "rows read" not in out
    help_text = CliRunner().invoke(main, ["review", "import", "--help"]).stdout
    assert "Exit status 0" in help_text and "1 if any row" in help_text
