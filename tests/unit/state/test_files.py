"""state.files: what an agent can plant in the state folder is never followed, blocked on
or read without end; files the controller makes there are the user's alone."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from controller.state import files

pytestmark = pytest.mark.timeout(10)  # a pipe opened the blocking way would hang here


@pytest.fixture
def root(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    files.ensure_dirs(state, state / "logs", state / "runs")
    return state


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    canary = tmp_path / "outside.txt"
    canary.write_text("the user's file\n")
    return canary


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


# --- folders ---------------------------------------------------------------------------------


def test_folders_are_created_0700_and_an_open_state_folder_is_tightened(tmp_path: Path) -> None:
    from controller.state.paths import StatePaths

    old = os.umask(0o022)
    try:
        files.ensure_dirs(tmp_path / "new", tmp_path / "new" / "logs" / "t1")
    finally:
        os.umask(old)
    assert mode(tmp_path / "new") == 0o700 and mode(tmp_path / "new" / "logs") == 0o700
    assert mode(tmp_path / "new" / "logs" / "t1") == 0o700
    state = StatePaths(tmp_path / "state")
    state.root.mkdir(mode=0o755)
    os.chmod(state.root, 0o755)
    state.ensure()
    assert mode(state.root) == 0o755  # no database: maybe not ours, left alone
    state.db.write_bytes(b"")
    state.ensure()
    assert mode(state.root) == 0o700  # an older release's state folder


def test_a_symlinked_folder_is_dropped_for_writing_and_refused_for_reading(
    root: Path, tmp_path: Path, outside: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "1.exit.json").write_text('{"exit_code": 0}')
    (root / "runs" / "t1").symlink_to(elsewhere)
    with pytest.raises(files.UnsafeFile, match="symbolic link"):
        files.read_bytes(root, root / "runs" / "t1" / "1.exit.json", 100)
    files.write_atomic(root, root / "runs" / "t1" / "1.exit.json", b"{}")
    assert not (root / "runs" / "t1").is_symlink() and (root / "runs" / "t1").is_dir()
    assert (elsewhere / "1.exit.json").read_text() == '{"exit_code": 0}'


def test_a_symlinked_state_root_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "state").symlink_to(real)
    with pytest.raises(files.UnsafeFile, match="not the state folder"):
        files.read_bytes(tmp_path / "state", tmp_path / "state" / "x", 10)


def test_paths_must_lie_inside_the_root(root: Path) -> None:
    for bad in (root.parent / "x", root / ".." / "x", Path("/etc/passwd")):
        with pytest.raises(ValueError):
            files.read_bytes(root, bad, 10)


# --- reading ---------------------------------------------------------------------------------


def test_reads_are_capped_or_keep_the_tail(root: Path) -> None:
    path = root / "runs" / "big"
    path.write_bytes(b"a" * 100 + b"END")
    with pytest.raises(files.FileTooLarge):
        files.read_bytes(root, path, 50)
    assert files.read_bytes(root, path, 5, tail=True) == b"aaEND"
    assert files.read_bytes(root, path, 1000) == b"a" * 100 + b"END"


def test_a_symlink_to_dev_zero_is_never_read(root: Path) -> None:
    link = root / "runs" / "1.exit.json"
    link.symlink_to("/dev/zero")
    with pytest.raises(files.UnsafeFile, match="symbolic link"):
        files.read_bytes(root, link, files.RECORD_LIMIT)


def test_a_named_pipe_is_refused_without_blocking(root: Path) -> None:
    fifo = root / "runs" / "1.progress"
    os.mkfifo(fifo)
    with pytest.raises(files.UnsafeFile, match="named pipe"):
        files.read_bytes(root, fifo, 100)
    with pytest.raises(files.UnsafeFile, match="named pipe"):
        files.open_read(root, fifo)


def test_read_regular_follows_links_but_reads_only_regular_files(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("a: 1\n")
    (tmp_path / "linked.yaml").symlink_to(spec)
    assert files.read_regular(tmp_path / "linked.yaml", 100) == b"a: 1\n"
    with pytest.raises(files.UnsafeFile, match="character device"):
        files.read_regular(Path("/dev/zero"), 100)
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(files.UnsafeFile, match="named pipe"):
        files.read_regular(tmp_path / "pipe", 100)
    with pytest.raises(files.FileTooLarge):
        files.read_regular(spec, 2)


# --- writing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("flags", [os.O_WRONLY | os.O_APPEND, os.O_RDWR | os.O_TRUNC])
def test_a_planted_symlink_is_replaced_not_written_through(
    root: Path, outside: Path, flags: int
) -> None:
    log = root / "logs" / "t1" / "1.log"
    log.parent.mkdir()
    log.symlink_to(outside)
    fd = files.open_file(root, log, flags)
    try:
        os.write(fd, b"agent output\n")
    finally:
        os.close(fd)
    assert outside.read_text() == "the user's file\n"
    assert not log.is_symlink() and log.read_text() == "agent output\n"
    assert mode(log) == 0o600


def test_a_hard_link_to_a_users_file_is_replaced_not_truncated(root: Path, outside: Path) -> None:
    log = root / "logs" / "1.verify.log"
    os.link(outside, log)  # same user, same file system: an agent can do this
    fd = files.open_file(root, log, os.O_WRONLY | os.O_TRUNC)
    os.close(fd)
    assert outside.read_text() == "the user's file\n"
    assert log.read_text() == "" and os.stat(log).st_ino != os.stat(outside).st_ino


def test_a_planted_pipe_is_replaced_without_blocking(root: Path) -> None:
    log = root / "logs" / "1.log"
    os.mkfifo(log)
    fd = files.open_file(root, log)
    os.close(fd)
    assert stat.S_ISREG(os.lstat(log).st_mode)


def test_an_existing_log_is_appended_to_and_tightened(root: Path) -> None:
    log = root / "logs" / "1.log"
    log.write_text("first\n")
    os.chmod(log, 0o644)
    fd = files.open_file(root, log)
    os.write(fd, b"second\n")
    os.close(fd)
    assert log.read_text() == "first\nsecond\n" and mode(log) == 0o600


def test_write_atomic_replaces_a_planted_link_and_leaves_no_temp(root: Path, outside: Path) -> None:
    record = root / "runs" / "t1" / "1.start.json"
    record.parent.mkdir()
    record.symlink_to(outside)
    files.write_atomic(root, record, b'{"pid": 1}')
    assert outside.read_text() == "the user's file\n"
    assert record.read_bytes() == b'{"pid": 1}' and mode(record) == 0o600
    assert sorted(p.name for p in record.parent.iterdir()) == ["1.start.json"]


def test_unlink_removes_the_link_never_its_target(root: Path, outside: Path) -> None:
    link = root / "runs" / "1.exit.json"
    link.symlink_to(outside)
    files.unlink(root, link)
    files.unlink(root, link)  # missing: nothing
    files.unlink(root, root / "runs" / "no-such-dir" / "x")
    assert not link.is_symlink() and outside.exists()


def test_planted_lists_links_pipes_and_hard_links(root: Path, outside: Path) -> None:
    (root / "db").write_text("")
    (root / "db-wal").symlink_to(outside)
    os.mkfifo(root / "db-shm")
    os.link(outside, root / "db-journal")
    names = ["db", "db-wal", "db-shm", "db-journal", "missing"]
    assert files.planted(root, names) == ["db-wal", "db-shm", "db-journal"]


def test_the_opener_makes_open_safe(root: Path, outside: Path) -> None:
    log = root / "logs" / "controller.log"
    log.symlink_to(outside)
    with open(log, "a", opener=files.opener(root / "logs")) as fh:
        fh.write("controller line\n")
    assert outside.read_text() == "the user's file\n" and log.read_text() == "controller line\n"


# --- its users in the state layer: the lock and the store --------------------------------------


def test_the_lock_never_truncates_through_a_planted_link(root: Path, outside: Path) -> None:
    from controller.state.lock import ControllerLock, is_locked, read_holder

    lock_path = root / "controller.lock"
    lock_path.symlink_to(outside)
    assert read_holder(lock_path) is None and not is_locked(lock_path)
    with ControllerLock(lock_path):
        assert is_locked(lock_path) and read_holder(lock_path) is not None
    assert outside.read_text() == "the user's file\n"
    lock_path.unlink()
    os.mkfifo(lock_path)
    assert read_holder(lock_path) is None and not is_locked(lock_path)  # and no hang


def test_the_store_never_opens_planted_companions(root: Path, outside: Path) -> None:
    from controller.state.store import Store, StoreError

    db = root / "orchestrator.db"
    Store.open(db).close()
    (root / "orchestrator.db-shm").symlink_to(outside)  # SQLite truncates -shm when first
    with pytest.raises(StoreError, match="orchestrator.db-shm"):
        Store.open_readonly(db)
    with Store.open(db) as store:  # the controller drops it before opening
        store.set_meta("k", "v")
    assert outside.read_text() == "the user's file\n"
    assert not (root / "orchestrator.db-shm").is_symlink()
