"""No content id or user id in a database error: a recognisable content id and user id are
planted in every repository's statements, the database fails (a constraint violation, dropped
tables, a connection stopped mid-statement; real PostgreSQL and SQLite), and no message, log
line, typed error or printed traceback holds them. The issue found 8 messages in 5 repositories
that wrote the statement's parameters; PostgreSQL's own ``DETAIL`` line holds them too."""

from __future__ import annotations

import ast
import logging
import threading
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from db.alias_history import AliasHistory, AliasMove
from db.api_keys import ApiKeyRepository
from db.assignments import AssignmentRepository
from db.experiments import ExperimentRepository
from db.models import Base
from db.results import ResultRepository
from db.reviews import ReviewRepository
from db.session import make_engine
from db.storage_errors import reason
from db.user_history import UserHistoryRepository
from modq.errors import ModerationError, StorageRejected, StorageUnavailable
from modq.experiment import AssignmentUnit, Experiment, Variant
from modq.reviews import OVERALL, ReviewOutcome
from tests.conftest import POSTGRES_ADMIN_URL
from tests.factories import make_result
from tests.polling import wait_until
from tests.tasks.conftest import tiny_model_dir  # noqa: F401  # a fixture: the tiny model

REPO = Path(__file__).resolve().parents[2]
CONTENT_ID = "c0ntent-planted-7f3a9"
USER_ID = "us3r-planted-91bd2"
PLANTED = (CONTENT_ID, USER_ID)
NOW = datetime.now(UTC)


def _experiment() -> Experiment:
    return Experiment(
        id="exp-planted",  # an operator's name, shown in messages; the planted user is its author
        variants=(
            Variant("control", "models:/m@production", "v1", 0.5),
            Variant("challenger", "models:/m/2", "v1", 0.5),
        ),
        unit=AssignmentUnit.USER_ID,
        created_by=USER_ID,
    )


def _move() -> AliasMove:
    return AliasMove("m", "production", "promote", None, "2", USER_ID, CONTENT_ID, NOW)


def _record_move(engine: Engine) -> None:
    with AliasHistory(engine).recording(_move()):
        pass


# every repository call, each with the planted ids among its parameters
WRITES: dict[str, Callable[[Engine], object]] = {
    "store results": lambda e: ResultRepository(e).store(make_result(CONTENT_ID, user_id=USER_ID)),
    "record reviews": lambda e: ReviewRepository(e).record(
        [ReviewOutcome(CONTENT_ID, OVERALL, True, "import", USER_ID, NOW)]
    ),
    "create experiment": lambda e: ExperimentRepository(e).create(_experiment()),
    "record alias move": _record_move,
    "create API key": lambda e: ApiKeyRepository(e).create(USER_ID, ["normal"]),
}
READS: dict[str, Callable[[Engine], object]] = {
    "known content ids": lambda e: ReviewRepository(e).known_content_ids([CONTENT_ID]),
    "review labels": lambda e: ReviewRepository(e).labels_for([CONTENT_ID]),
    "review outcomes": lambda e: ReviewRepository(e).outcomes(CONTENT_ID),
    "user history": lambda e: UserHistoryRepository(e).recent(USER_ID, NOW - timedelta(days=1)),
    "assignments": lambda e: AssignmentRepository(e).for_experiment(CONTENT_ID),
    "assignment counts": lambda e: AssignmentRepository(e).counts(CONTENT_ID),
    "alias history": lambda e: AliasHistory(e).moves(CONTENT_ID),
    "results": lambda e: ResultRepository(e).find(CONTENT_ID),
}


def everything_shown(error: BaseException, log: str) -> str:
    """What anyone may see of ``error``: its text, repr, to_dict, the traceback as Python,
    Celery or a log handler prints it, and the log."""
    shown = [str(error), repr(error), log, "".join(traceback.format_exception(error))]
    if isinstance(error, ModerationError):
        shown.append(repr(error.to_dict()))
    return "\n".join(shown)


def assert_clean(error: BaseException, log: str, where: str) -> None:
    shown = everything_shown(error, log)
    for value in PLANTED:
        assert value not in shown, f"{value} leaked from {where}:\n{shown[-3000:]}"


def _failure(call: Callable[[Engine], object], engine: Engine) -> BaseException:
    with pytest.raises(ModerationError) as caught:  # typed, never the driver's own error
        call(engine)
    return caught.value


@pytest.fixture
def engine(database_url: str, caplog: pytest.LogCaptureFixture) -> Iterator[Engine]:
    caplog.set_level(logging.DEBUG)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def test_every_engine_hides_parameters(database_url: str) -> None:
    engine = make_engine(database_url)
    assert engine.hide_parameters
    engine.dispose()


def test_no_engine_is_made_outside_db_session() -> None:
    """Every engine of the service comes from make_engine (hide_parameters): no room calls
    SQLAlchemy's create_engine itself (bench/ and tests/ are tools, not the service)."""
    rooms = ["modq", "policy", "cache", "registry", "db", "gpu_worker", "lifecycle", "tasks"]
    rooms += ["cli", "training", "experiments", "reviews", "api", "migrations"]
    found = []
    for room in rooms:
        for path in (REPO / room).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call):
                    name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                    if name in {"create_engine", "engine_from_config"}:
                        found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert found and {where.split(":")[0] for where in found} == {"db/session.py"}, found


def _drop_every_table(engine: Engine) -> None:
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            for table in Base.metadata.tables:
                connection.execute(text(f'DROP TABLE IF EXISTS "{table}" CASCADE'))
            connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
        else:
            Base.metadata.drop_all(connection)


def test_dropped_tables(engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    _drop_every_table(engine)
    for name, call in {**WRITES, **READS}.items():
        error = _failure(call, engine)
        assert isinstance(error, StorageUnavailable), (name, error)
        assert_clean(error, caplog.text, name)


# a constraint that refuses the planted row: PostgreSQL names the whole row in its DETAIL line
_REFUSED_COLUMNS = {
    "moderation_results": "content_id",
    "review_outcomes": "content_id",
    "experiments": "created_by",
    "model_alias_moves": "actor",
    "api_keys": "name",
}


def _refuse_the_planted_rows(engine: Engine) -> None:
    with engine.begin() as connection:
        for table, column in _REFUSED_COLUMNS.items():
            planted = CONTENT_ID if column == "content_id" else USER_ID
            if engine.dialect.name == "postgresql":
                connection.execute(
                    text(
                        f"ALTER TABLE {table} ADD CONSTRAINT no_planted_{table} "
                        f"CHECK ({column} <> '{planted}')"
                    )
                )
            else:
                connection.execute(
                    text(
                        f"CREATE TRIGGER no_planted_{table} BEFORE INSERT ON {table} "
                        f"WHEN NEW.{column} = '{planted}' "
                        "BEGIN SELECT RAISE(ABORT, 'planted row refused'); END"
                    )
                )


def test_a_constraint_violation(engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    _refuse_the_planted_rows(engine)
    for name, call in WRITES.items():
        error = _failure(call, engine)
        assert not isinstance(error, StorageUnavailable), (name, error)  # the row, for good
        assert_clean(error, caplog.text, name)
        if engine.dialect.name == "postgresql":  # the test can fail: the driver's error has it
            driver_error = str(error.__context__)
            assert any(value in driver_error for value in PLANTED), (name, driver_error)


def test_an_experiment_id_taken_twice(engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    ExperimentRepository(engine).create(_experiment())
    error = _failure(WRITES["create experiment"], engine)
    assert type(error).__name__ == "ExperimentError"
    assert_clean(error, caplog.text, "create experiment twice")


WAITING_ON_A_LOCK = (
    "SELECT pid FROM pg_stat_activity WHERE datname = :d AND wait_event_type = 'Lock'"
)


def _stopped_mid_statement(
    call: Callable[[Engine], object], engine: Engine, database_url: str
) -> BaseException:
    """What ``call(engine)`` raises when its read waits on a table lock and its server
    process is terminated while it waits."""
    database = database_url.rsplit("/", 1)[1]
    locker = create_engine(database_url)
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    errors: list[BaseException] = []

    def read() -> None:
        try:
            call(engine)
        except BaseException as exc:
            errors.append(exc)

    try:
        with locker.begin() as lock:
            lock.execute(text("LOCK TABLE moderation_results IN ACCESS EXCLUSIVE MODE"))
            reader = threading.Thread(target=read)
            reader.start()
            with admin.connect() as connection:
                pid = wait_until(
                    lambda: connection.execute(text(WAITING_ON_A_LOCK), {"d": database}).scalar(),
                    timeout_s=30,
                    message="the read never waited on the lock",
                )
                connection.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            reader.join(30)
    finally:
        locker.dispose()
        admin.dispose()
    assert len(errors) == 1, errors
    return errors[0]


@pytest.mark.parametrize("name", ["user history", "results"])
def test_a_connection_stopped_mid_statement(
    name: str, engine: Engine, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("a server connection to stop: PostgreSQL only")
    error = _stopped_mid_statement(READS[name], engine, database_url)
    assert isinstance(error, StorageUnavailable), error
    assert_clean(error, caplog.text, name)


@pytest.mark.parametrize(
    "message",
    [
        f'invalid input syntax for type integer: "{CONTENT_ID}"',
        f"invalid literal for int() with base 10: '{USER_ID}'",
    ],
)
def test_a_quoted_value_in_the_servers_first_line_is_masked(message: str) -> None:
    """PostgreSQL's data errors quote the value in their first line, Python's in a repr: the
    reason keeps the line and masks the value, and keeps the schema's own names."""
    assert all(value not in reason(ValueError(message)) for value in PLANTED)
    assert "invalid" in reason(ValueError(message))
    kept = 'duplicate key value violates unique constraint "uq_review_content_category"'
    assert reason(ValueError(kept)).endswith(kept)


def test_a_refused_row_is_still_told_apart_from_an_outage(engine: Engine) -> None:
    """The classifier still says which: StorageRejected for the row, never retried."""
    _refuse_the_planted_rows(engine)
    error = _failure(WRITES["store results"], engine)
    assert isinstance(error, StorageRejected)


@pytest.mark.integration
def test_a_worker_refused_a_row_shows_no_planted_value(tmp_path, tiny_model_dir):  # noqa: F811
    """A real worker stores a job whose row PostgreSQL refuses (its DETAIL line names the whole
    row): the caller's error, and the worker's log, hold neither the content id's row values nor
    the user id."""
    import migrations
    from modq import moderate
    from tests.conftest import postgres_database
    from tests.workers import running_worker

    with postgres_database() as database:
        migrations.upgrade(database.url)
        engine = make_engine(database.url)
        _refuse_the_planted_rows(engine)
        engine.dispose()
        env = {"MODQ_DATABASE_URL": database.url, "MODQ_MODEL_DIR": str(tiny_model_dir)}
        with running_worker(env, log_dir=tmp_path, threads=2) as worker:
            job = moderate.delay(content_id=CONTENT_ID, content="hello", user_id=USER_ID)
            with pytest.raises(Exception) as caught:
                job.get(timeout=120)
        log = worker.log.read_text()
    assert "refused the row" in str(caught.value), caught.value
    shown = everything_shown(caught.value, log)
    assert USER_ID not in shown, shown[-3000:]
    # the content id is the job's own name (shown by design in task events); the row's other
    # values, the user id above, are what PostgreSQL's DETAIL line would have added
    assert f"({CONTENT_ID}" not in shown and f"{CONTENT_ID}," not in shown, shown[-3000:]
