"""Accounts: people who may use a shared server, their passwords and their API keys.

Kept in SQLite in the data dir. Passwords are hashed with Argon2id (argon2-cffi); an API key is
shown once, when made, and only its SHA-256 is stored. With no accounts, kme-chat is the local
single-person app: everything runs as the settings' user and the page asks for no login.
"""
from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, password TEXT NOT NULL, admin INTEGER NOT NULL,
                                  created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (digest TEXT PRIMARY KEY, name TEXT NOT NULL REFERENCES users(name),
                                     created REAL NOT NULL);
"""
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MIN_PASSWORD = 8


@dataclass(frozen=True)
class User:
    name: str
    admin: bool = False


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class Accounts:
    def __init__(self, path: str | Path):
        from argon2 import PasswordHasher

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._hasher = PasswordHasher()
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def any(self) -> bool:
        return self._db.execute("SELECT 1 FROM users LIMIT 1").fetchone() is not None

    def add(self, name: str, password: str, admin: bool = False) -> User:
        if not NAME.match(name or ""):
            raise UserError("a user name is 1-64 letters, digits, '.', '_' or '-'")
        if len(password or "") < MIN_PASSWORD:
            raise UserError(f"the password is too short (at least {MIN_PASSWORD} characters)")
        with self._lock:
            try:
                self._db.execute("INSERT INTO users VALUES (?, ?, ?, ?)",
                                 (name, self._hasher.hash(password), int(admin), time.time()))
            except sqlite3.IntegrityError:
                raise UserError(f"user {name!r} exists already") from None
        return User(name, admin)

    def remove(self, name: str) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM api_keys WHERE name = ?", (name,))
            gone = self._db.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount
            self._db.execute("COMMIT")
        if not gone:
            raise UserError(f"no user {name!r}")

    def users(self) -> list[User]:
        return [User(n, bool(a)) for n, a in self._db.execute("SELECT name, admin FROM users ORDER BY name")]

    def get(self, name: str) -> User | None:
        row = self._db.execute("SELECT name, admin FROM users WHERE name = ?", (name,)).fetchone()
        return User(row[0], bool(row[1])) if row else None

    def check_password(self, name: str, password: str) -> User | None:
        from argon2.exceptions import VerificationError

        row = self._db.execute("SELECT password, admin FROM users WHERE name = ?", (name or "",)).fetchone()
        if row is None:
            return None
        try:
            self._hasher.verify(row[0], password or "")
        except VerificationError:
            return None
        return User(name, bool(row[1]))

    def new_key(self, name: str) -> str:
        if self.get(name) is None:
            raise UserError(f"no user {name!r}")
        key = "kme-" + secrets.token_urlsafe(32)
        with self._lock:
            self._db.execute("INSERT INTO api_keys VALUES (?, ?, ?)", (_digest(key), name, time.time()))
        return key

    def user_for_key(self, key: str) -> User | None:
        row = self._db.execute("SELECT u.name, u.admin FROM api_keys k JOIN users u ON u.name = k.name "
                               "WHERE k.digest = ?", (_digest(key or ""),)).fetchone()
        return User(row[0], bool(row[1])) if row else None

    def close(self) -> None:
        self._db.close()
