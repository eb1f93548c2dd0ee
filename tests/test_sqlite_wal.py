"""The embedded SQLite default: commits never checkpoint the WAL themselves; a thread of the Database's does, so
the WAL stays bounded while the service writes, and the database file is complete once the service stops."""

import shutil
import sqlite3
import time

from sqlalchemy import text

from shared.db import Database


def _write(database: Database, commits: int) -> None:
    with database.engine.connect() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"))
        conn.commit()
        for i in range(commits):
            conn.execute(text("INSERT INTO notes (body) VALUES (:body)"), {"body": f"note {i} " + "x" * 2000})
            conn.commit()


def _wal_bytes(path) -> int:
    wal = path.with_name(path.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def test_a_commit_does_not_checkpoint_and_the_background_thread_keeps_the_wal_bounded(tmp_path):
    unattended = Database(f"sqlite:///{tmp_path / 'unattended.db'}", checkpoint_seconds=3600)
    checkpointed = Database(f"sqlite:///{tmp_path / 'checkpointed.db'}", checkpoint_seconds=0.01)
    try:
        with unattended.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        for database in (unattended, checkpointed):
            for _ in range(10):  # in steps, each longer than the checkpoint interval
                _write(database, 150)
                time.sleep(0.05)
        # Without checkpoints every note is still in the WAL (~1,500 pages); with them the WAL was reused.
        assert _wal_bytes(tmp_path / "unattended.db") > 1500 * 2000
        assert _wal_bytes(tmp_path / "checkpointed.db") < _wal_bytes(tmp_path / "unattended.db") / 3
    finally:
        unattended.dispose()
        checkpointed.dispose()


def test_once_the_database_is_disposed_its_file_alone_holds_every_commit(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'service.db'}", checkpoint_seconds=3600)
    _write(database, 300)
    # Another process still has the file open (a CLI command, a reader), so closing ours is not SQLite's last
    # close, which would checkpoint by itself.
    other = sqlite3.connect(tmp_path / "service.db")
    try:
        other.execute("SELECT count(*) FROM sqlite_master").fetchone()
        database.dispose()
        # A backup that copies only the main file (the WAL forgotten) still has every note.
        shutil.copy(tmp_path / "service.db", tmp_path / "backup.db")
    finally:
        other.close()
    with sqlite3.connect(tmp_path / "backup.db") as copy:
        assert copy.execute("SELECT count(*) FROM notes").fetchone() == (300,)
