"""Settings from the environment and ``.env`` (pydantic-settings)."""

from __future__ import annotations

import os
import re
import secrets
from datetime import datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.budget import Rates
from core.clock import Clock, StartedClock, SystemClock
from core.storage.db import database_url

LOCALES = ("ru", "en")


def parse_hhmm(text: str) -> time:
    hours, _, minutes = text.strip().partition(":")
    return time(int(hours), int(minutes))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    bot_token: SecretStr | None = None
    telegram_api_url: str | None = None
    # sqlite:///path or postgresql://user@host:port/db; when unset, DATABASE_PATH (SQLite).
    database_url: str | None = None
    database_path: Path = Path("data/diary.sqlite3")
    secret_key: SecretStr | None = None
    timezone: str = "Europe/Moscow"
    default_locale: str = "ru"
    digest_time: str = "19:00"
    quiet_hours: str = "22:00-08:00"
    # When a parent's message reaches the class teacher at once (school time); outside, it
    # waits for the next opening.
    teacher_hours: str = "Mon-Fri 08:00-18:00"
    send_rate: float = Field(default=25, gt=0, le=1000)
    # Paid broadcasts: above FREE_SEND_RATE, up to SEND_RATE, at most PAID_DAILY_LIMIT messages a
    # day (then the free rate only). Telegram charges Stars for each paid message.
    paid_broadcast: bool = False
    free_send_rate: float = Field(default=25, gt=0, le=30)
    paid_daily_limit: int = Field(default=100_000, ge=0)
    send_rate_per_chat: float = Field(default=1, gt=0)
    # How long a sender's claim on pushes lasts unless renewed: the longest a dead sender's
    # pushes wait for another sender.
    claim_lease_seconds: int = Field(default=60, ge=5, le=3600)
    relevance_days: int = Field(default=3, ge=0)
    # A student's history: their first journal data and what comes this long after it. Only its
    # recent facts are news, sent together at the window's end (docs/CONTRACT.md, What is pushed).
    history_window_minutes: int = Field(default=60, ge=0, le=10080)
    rounding_threshold: float = Field(default=0.5, gt=0, lt=1)
    dot_remind_student_days_before: int = Field(default=2, ge=0, le=14)
    dot_remind_student_last_day: bool = True
    dot_remind_parent_last_day: bool = True
    attendance_hold_seconds: int = Field(default=60, ge=0, le=3600)
    demo_simulator_minutes: int = Field(default=3, ge=1, le=120)
    # Deployment by role (`diary web`, `diary deliver`, `diary scheduler`).
    webhook_url: str | None = None  # the public URL Telegram posts updates to
    webhook_secret: SecretStr | None = None  # checked on every update (the secret token header)
    web_host: str = "0.0.0.0"
    web_port: int = Field(default=8080, ge=1, le=65535)
    redis_url: str | None = None  # conversation state and per-chat ordering across processes
    # The HTTP ingestion API (bot/api.py): always served by `diary web` on WEB_PORT; by
    # `diary run` only when API_PORT is set.
    api_port: int | None = Field(default=None, ge=1, le=65535)
    api_host: str = "127.0.0.1"
    api_max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    api_rate_per_minute: int = Field(default=120, ge=1, le=1_000_000)
    # Rehearsals and tests: the process starts its clock at this moment (ISO 8601 with an
    # offset) and runs at real speed from there. Never set in production.
    clock_start: datetime | None = None

    @field_validator("clock_start", mode="before")
    @classmethod
    def _clock_start_empty(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            database_url(value.strip())
        except Exception as exc:
            raise ValueError(str(exc)) from exc
        return value.strip()

    @model_validator(mode="after")
    def _shared_database_needs_a_key(self) -> Settings:
        if not self.is_sqlite and not self._has_secret_key():
            raise ValueError(
                "SECRET_KEY must be set with a PostgreSQL DATABASE_URL: every process that uses"
                " the database must hash phones with the same key (a key generated on each host"
                " would match no one). Generate one with"
                " `python -c 'import secrets; print(secrets.token_hex(32))'`, set it everywhere"
                " and keep it with the backups.")
        return self

    def _has_secret_key(self) -> bool:
        return self.secret_key is not None and bool(self.secret_key.get_secret_value())

    @property
    def database(self) -> str:
        """The database URL: DATABASE_URL, else the SQLite file DATABASE_PATH."""
        return self.database_url or f"sqlite:///{self.database_path}"

    @property
    def is_sqlite(self) -> bool:
        return database_url(self.database).get_backend_name() == "sqlite"

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file (None on PostgreSQL)."""
        url = database_url(self.database)
        if url.get_backend_name() != "sqlite":
            return None
        return Path(url.database or "")

    @field_validator("clock_start")
    @classmethod
    def _clock_start(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs an offset, e.g. 2026-11-23T10:00:00+03:00")
        return value

    def clock(self) -> Clock:
        return StartedClock(self.clock_start) if self.clock_start else SystemClock()

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("default_locale")
    @classmethod
    def _locale(cls, value: str) -> str:
        if value not in LOCALES:
            raise ValueError(f"must be one of {', '.join(LOCALES)}")
        return value

    @field_validator("digest_time")
    @classmethod
    def _digest(cls, value: str) -> str:
        try:
            parse_hhmm(value)
        except ValueError as exc:
            raise ValueError("must be HH:MM") from exc
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _quiet(cls, value: str) -> str:
        if value.strip():
            start, sep, end = value.partition("-")
            try:
                if not sep:
                    raise ValueError
                parse_hhmm(start)
                parse_hhmm(end)
            except ValueError as exc:
                raise ValueError("must be HH:MM-HH:MM or empty") from exc
        return value.strip()

    @field_validator("teacher_hours")
    @classmethod
    def _teacher_hours(cls, value: str) -> str:
        from core.worktime import WorkingHours

        try:
            return str(WorkingHours.parse(value))
        except ValueError as exc:
            raise ValueError("must look like Mon-Fri 08:00-18:00 (days optional:"
                             " Monday to Friday)") from exc

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value():
            text = value.get_secret_value()
            if not (1 <= len(text) <= 256) or not re.fullmatch(r"[A-Za-z0-9_-]+", text):
                raise ValueError("1-256 characters: letters, digits, _ and -")
        return value

    @field_validator("api_port", mode="before")
    @classmethod
    def _api_port_empty(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("webhook_url", "redis_url", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _paid(self) -> Settings:
        if self.paid_broadcast and self.send_rate <= self.free_send_rate:
            raise ValueError("PAID_BROADCAST needs SEND_RATE above FREE_SEND_RATE")
        return self

    def rates(self) -> Rates:
        """The send budget: without paid broadcasts SEND_RATE is the whole (free) rate."""
        if not self.paid_broadcast:
            return Rates(free=self.send_rate, per_chat=self.send_rate_per_chat)
        return Rates(free=self.free_send_rate, per_chat=self.send_rate_per_chat,
                     paid=self.send_rate - self.free_send_rate,
                     paid_daily_limit=self.paid_daily_limit)

    @property
    def has_token(self) -> bool:
        return self.bot_token is not None and bool(self.bot_token.get_secret_value().strip())

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def secret(self) -> bytes:
        """The hashing key: SECRET_KEY, or one generated once beside the database."""
        if self._has_secret_key():
            assert self.secret_key is not None
            return self.secret_key.get_secret_value().encode()
        path = (self.sqlite_path or self.database_path).parent / "secret.key"
        if not path.exists():
            # Written aside and hard-linked into place: two processes starting at once agree.
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".secret.key.{os.getpid()}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        return path.read_text().strip().encode()
