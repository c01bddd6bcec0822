"""Store: schema, versioning, attempts round trip, events, read-only opening."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from controller.model.observed import ConflictCheck
from controller.state.store import SCHEMA_VERSION, AttemptRow, Store, StoreError


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "orchestrator.db"


def test_open_creates_parents_schema_wal_and_version(db: Path) -> None:
    with Store.open(db) as store:
        assert store.schema_version == SCHEMA_VERSION
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"meta", "attempts", "events", "controller"} <= tables
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert {"events_task", "events_kind", "attempts_task"} <= indexes
        version = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        assert version == (str(SCHEMA_VERSION),)
    finally:
        conn.close()


def test_reopen_keeps_data(db: Path) -> None:
    with Store.open(db) as store:
        store.begin_attempt("t1", 1, "dev", "abc", now=10.0)
        store.add_event("spawn", "started", task="t1", now=11.0)
        store.set_meta("spec_generation", "7")
    with Store.open(db) as store:
        assert [r.task for r in store.attempts()] == ["t1"]
        assert [e.kind for e in store.events()] == ["spawn"]
        assert store.get_meta("spec_generation") == "7"
        assert store.get_meta("missing") is None


def test_newer_schema_version_is_refused(db: Path) -> None:
    Store.open(db).close()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION + 5,))
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match=r"schema version \d+ is newer.*upgrade orchestrator"):
        Store.open(db)
    with pytest.raises(StoreError, match="newer"):
        Store.open_readonly(db)


def test_attempt_round_trip(db: Path) -> None:
    with Store.open(db) as store:
        store.begin_attempt("t1", 1, "dev", "base1", now=100.0)
        store.begin_attempt("t1", 1, "other", "base2", now=200.0)  # idempotent: first wins
        store.set_launched("t1", 1, pid=4242, create_time=101.5, started_at=101.6)
        store.finish_attempt(
            "t1", 1, outcome="conflict", reason="merge conflict", conflicts=["a.py", "b.py"]
        )
        store.finish_attempt("t1", 1, outcome="failed", reason="exit 1", exit_code=1, retry_at=300)
        store.begin_attempt("t1", 2, "dev", "base1", now=400.0)
        store.begin_attempt("t0", 1, "pm", None, now=50.0)
        rows = store.attempts("t1")
        assert rows[0] == AttemptRow(
            task="t1",
            number=1,
            created_at=100.0,
            pid=4242,
            create_time=101.5,
            started_at=101.6,
            ended_at=None,
            exit_code=1,
            outcome="failed",
            reason="exit 1",
            retry_at=300.0,
            conflicts=("a.py", "b.py"),  # not overwritten by a finish without conflicts
            agent="dev",
            base_sha="base1",
        )
        assert rows[1].number == 2 and rows[1].outcome is None and rows[1].pid is None
        by_task = store.attempts_by_task()
        assert list(by_task) == ["t0", "t1"]
        assert [r.number for r in by_task["t1"]] == [1, 2]


def test_finish_and_launch_upsert_missing_rows(db: Path) -> None:
    with Store.open(db) as store:
        store.set_launched("t", 3, pid=1, create_time=2.0, started_at=3.0)
        store.finish_attempt("u", 1, outcome="lost", ended_at=9.0)
        assert store.attempts("t")[0].pid == 1
        (u,) = store.attempts("u")
        assert (u.outcome, u.reason, u.ended_at, u.created_at) == ("lost", "", 9.0, None)


def test_events_append_only_ordering_and_filters(db: Path) -> None:
    with Store.open(db) as store:
        ids = [
            store.add_event("spawn", "a", task="t1", now=1.0),
            store.add_event("exit", "b", task="t1", data={"code": 1}, now=2.0),
            store.add_event("spawn", "c", task="t2", now=3.0),
            store.add_event("pass", "d", now=4.0),
        ]
        assert ids == sorted(ids) and len(set(ids)) == 4
        assert [e.message for e in store.events()] == ["a", "b", "c", "d"]
        assert [e.message for e in store.events(task="t1")] == ["a", "b"]
        assert [e.message for e in store.events(kinds=["spawn"])] == ["a", "c"]
        assert [e.message for e in store.events(kinds=["spawn", "pass"])] == ["a", "c", "d"]
        assert store.events(kinds=[]) == []
        assert [e.message for e in store.events(since_id=ids[1])] == ["c", "d"]
        assert [e.message for e in store.events(limit=2)] == ["a", "b"]
        assert [e.message for e in store.events(limit=2, newest=True)] == ["c", "d"]
        ev = store.events(task="t1", kinds=["exit"])[0]
        assert (ev.ts, ev.task, ev.data) == (2.0, "t1", {"code": 1})
        assert store.events(kinds=["pass"])[0].task is None


def test_open_readonly_missing_file_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "orchestrator.db"
    assert Store.open_readonly(path) is None
    assert not path.parent.exists()
    assert list(tmp_path.iterdir()) == []


def test_open_readonly_reads_while_writer_open_and_cannot_write(db: Path) -> None:
    writer = Store.open(db)
    try:
        writer.begin_attempt("t1", 1, "dev", None, now=1.0)
        reader = Store.open_readonly(db)
        assert reader is not None
        with reader:
            assert [r.task for r in reader.attempts()] == ["t1"]
            writer.add_event("x", "later")
            assert [e.message for e in reader.events()] == ["later"]
            with pytest.raises(sqlite3.OperationalError):
                reader.add_event("x", "nope")
    finally:
        writer.close()
    reader = Store.open_readonly(db)  # writer gone (WAL checkpointed)
    assert reader is not None
    with reader:
        assert reader.get_meta("pid") is None


def test_open_readonly_empty_file_is_none(tmp_path: Path) -> None:
    path = tmp_path / "orchestrator.db"
    path.touch()
    assert Store.open_readonly(path) is None
    assert path.stat().st_size == 0


def test_spawn_requests_keep_their_first_time_and_order(db: Path) -> None:
    with Store.open(db) as store:
        assert store.add_request("b", 20.0)
        assert store.add_request("a", 10.0)
        assert not store.add_request("b", 5.0)  # asked again: keeps its place
        assert store.add_request("c", 10.0)  # same time: the order of asking
        assert store.requests() == {"a": 10.0, "c": 10.0, "b": 20.0}
        assert list(store.requests()) == ["a", "c", "b"]
        assert store.clear_request("a") and not store.clear_request("a")
    with Store.open(db) as store:
        assert store.requests() == {"c": 10.0, "b": 20.0}


def test_a_version_2_database_gains_usage_columns_and_requests_and_keeps_its_rows(
    db: Path,
) -> None:
    from controller.state.schema import MIGRATIONS

    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    for migration in MIGRATIONS[:2]:
        migration(conn)
    conn.execute("INSERT INTO meta VALUES ('schema_version', '2')")
    conn.execute("INSERT INTO attempts(task, number, outcome) VALUES ('old', 1, 'merged')")
    conn.commit()
    conn.close()
    with Store.open(db) as store:
        assert store.schema_version == SCHEMA_VERSION == 8
        (old,) = store.attempts()
        assert old.outcome == "merged" and old.cost_usd is None and old.port is None
        assert old.start_id is None
        assert store.requests() == {} and store.conflict_checks() == {}
        assert store.orders() == {}


def test_usage_and_port_round_trip(db: Path) -> None:
    from controller.model.observed import Usage

    with Store.open(db) as store:
        store.begin_attempt("t1", 1, "dev", "abc", now=1.0, port=8100)
        store.set_usage("t1", 1, Usage(10, 20, 30, 40, 0.125), 6)
        store.set_usage("t2", 1, None, 2)  # turns without usage (a row is made)
        t1, t2 = store.attempts()
    assert (t1.input_tokens, t1.output_tokens, t1.cache_read_tokens, t1.cache_write_tokens) == (
        10, 20, 30, 40,
    )  # fmt: skip
    assert (t1.cost_usd, t1.turns, t1.port, t1.agent) == (0.125, 6, 8100, "dev")
    assert (t2.cost_usd, t2.input_tokens, t2.turns) == (None, None, 2)


def test_conflict_checks_round_trip_one_row_per_task(db: Path) -> None:
    with Store.open(db) as store:
        assert store.conflict_checks() == {}
        store.set_conflict_checks(
            [
                ConflictCheck("t1", "b1", "m1", 10.0, ("a.txt",)),
                ConflictCheck("t2", "b2", "m1", 11.0),
            ]
        )
        store.set_conflict_checks([ConflictCheck("t1", "b3", "m2", 12.0)])  # replaced
    with Store.open_readonly(db) as store:  # type: ignore[union-attr]
        checks = store.conflict_checks()
    assert checks == {
        "t1": ConflictCheck("t1", "b3", "m2", 12.0, ()),
        "t2": ConflictCheck("t2", "b2", "m1", 11.0, ()),
    }


def test_a_version_3_database_gains_the_rate_limits_table(db: Path) -> None:
    from controller.model.ratelimit import LimiterState
    from controller.state.schema import MIGRATIONS

    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    for migration in MIGRATIONS[:3]:
        migration(conn)
    conn.execute("INSERT INTO meta VALUES ('schema_version', '3')")
    conn.execute("INSERT INTO attempts(task, number, outcome) VALUES ('old', 1, 'merged')")
    conn.commit()
    conn.close()
    with Store.open(db) as store:
        assert store.schema_version == SCHEMA_VERSION >= 4
        assert [a.task for a in store.attempts()] == ["old"]
        assert store.rate_limits() == {}
        store.set_rate_limit(LimiterState("claude-code", 2, 100.5, 90.0, 1))
        store.set_rate_limit(LimiterState("claude-code", None, 130.0, 120.0, 0))  # replaced
        store.set_rate_limit(LimiterState("other", 1, 5.0, 4.0, 3))
    with Store.open_readonly(db) as store:  # type: ignore[union-attr]
        assert store.rate_limits() == {
            "claude-code": LimiterState("claude-code", None, 130.0, 120.0, 0),
            "other": LimiterState("other", 1, 5.0, 4.0, 3),
        }
