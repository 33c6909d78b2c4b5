"""The edit log: every edit ever made, in SQLite (WAL). It is the source of truth: the memory
store and the weight deltas can be rebuilt from it. Each change is one committed transaction, so
an edit acknowledged to the user survives a crash of the process."""
from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from editors.base import SHARED, EditRequest

from .errors import UserError

KINDS = ("fact", "feedback", "preference", "rule")

SCHEMA = """
CREATE TABLE IF NOT EXISTS edits (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    relation TEXT NOT NULL,
    prompt TEXT NOT NULL,
    target_new TEXT NOT NULL,
    target_true TEXT NOT NULL,
    question TEXT NOT NULL,
    paraphrases TEXT NOT NULL,      -- JSON list
    note TEXT NOT NULL,
    condition TEXT NOT NULL,
    routes TEXT NOT NULL,           -- JSON list of editor names
    reason TEXT NOT NULL,
    status TEXT NOT NULL,           -- active | reverted
    user TEXT NOT NULL,
    created REAL NOT NULL,
    reverted REAL,
    source_turn TEXT NOT NULL,
    aliases TEXT NOT NULL DEFAULT '[]', -- JSON list: other names of the subject ("Iacolino")
    shared INTEGER NOT NULL DEFAULT 0   -- 1: in every user's memory (an admin shared it)
);
CREATE INDEX IF NOT EXISTS edits_status ON edits(status);
"""


@dataclass
class Edit:
    subject: str
    prompt: str
    target_new: str
    kind: str = "fact"
    relation: str = ""
    target_true: str = ""
    question: str = ""
    paraphrases: list[str] = field(default_factory=list)
    note: str = ""
    condition: str = ""
    routes: list[str] = field(default_factory=list)
    reason: str = ""
    status: str = "active"
    user: str = "local"
    created: float = field(default_factory=time.time)
    reverted: float | None = None
    source_turn: str = ""
    aliases: list[str] = field(default_factory=list)
    shared: bool = False
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def request(self) -> EditRequest:
        return EditRequest(id=self.id, subject=self.subject, prompt=self.prompt, target_new=self.target_new,
                           target_true=self.target_true, relation=self.relation, paraphrases=list(self.paraphrases),
                           aliases=list(self.aliases), question=self.question, note=self.note, condition=self.condition,
                           owner=SHARED if self.shared else self.user)

    @property
    def summary(self) -> str:
        if self.kind == "fact":
            old = f"{self.target_true} → " if self.target_true else ""
            return f"({self.subject}, {self.relation or self.prompt}, {old}{self.target_new})"
        if self.kind == "preference":
            return f"always: {self.note}"
        if self.kind == "rule":
            return f"if {self.condition}, then {self.note}"
        return f"when asked {self.question!r}: {self.note}"


class EditLog:
    def __init__(self, path: str | Path):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a commit is on disk before we say "saved"
        self._db.executescript(SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(edits)")}
        for name, kind in (("aliases", "TEXT NOT NULL DEFAULT '[]'"), ("shared", "INTEGER NOT NULL DEFAULT 0")):
            if name in columns:
                continue
            try:  # a log written before this column existed
                self._db.execute(f"ALTER TABLE edits ADD COLUMN {name} {kind}")
            except sqlite3.OperationalError as exc:  # another process added it first
                if "duplicate column" not in str(exc):
                    raise

    def _row(self, row) -> Edit:
        names = [d[0] for d in self._cursor_desc]
        values = dict(zip(names, row))
        values["paraphrases"] = json.loads(values["paraphrases"])
        values["routes"] = json.loads(values["routes"])
        values["aliases"] = json.loads(values["aliases"])
        values["shared"] = bool(values["shared"])
        return Edit(**values)

    def add(self, edit: Edit) -> Edit:
        if edit.kind not in KINDS:
            raise UserError(f"unknown edit kind {edit.kind!r}")
        values = asdict(edit)
        values["paraphrases"] = json.dumps(values["paraphrases"])
        values["routes"] = json.dumps(values["routes"])
        values["aliases"] = json.dumps(values["aliases"])
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(f"INSERT INTO edits ({columns}) VALUES ({marks})", list(values.values()))
                self._db.execute("COMMIT")
            except Exception:
                self._db.execute("ROLLBACK")
                raise
        return edit

    def set_shared(self, edit_id: str, shared: bool) -> Edit:
        with self._lock:
            cur = self._db.execute("UPDATE edits SET shared = ? WHERE id = ?", (int(shared), edit_id))
        if cur.rowcount == 0:
            raise UserError(f"no edit with id {edit_id!r}")
        return self.get(edit_id)

    def set_status(self, edit_id: str, status: str) -> Edit:
        with self._lock:
            cur = self._db.execute("UPDATE edits SET status = ?, reverted = ? WHERE id = ?",
                                   (status, time.time() if status == "reverted" else None, edit_id))
        if cur.rowcount == 0:
            raise UserError(f"no edit with id {edit_id!r}")
        return self.get(edit_id)

    def _select(self, where: str = "", args: tuple = ()) -> list[Edit]:
        with self._lock:
            cur = self._db.execute(f"SELECT * FROM edits {where} ORDER BY created, rowid", args)
            self._cursor_desc = cur.description
            rows = cur.fetchall()
        return [self._row(r) for r in rows]

    def get(self, edit_id: str) -> Edit:
        found = self._select("WHERE id = ?", (edit_id,))
        if not found:
            raise UserError(f"no edit with id {edit_id!r}")
        return found[0]

    def all(self) -> list[Edit]:
        return self._select()

    def active(self) -> list[Edit]:
        return self._select("WHERE status = 'active'")

    def close(self) -> None:
        with self._lock:
            self._db.close()
