"""The `diary` command line. Exit 0 on success, 2 on bad input (nothing half-written)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import functools
import io
import json
import logging
import os
import sqlite3
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine, Sequence
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy.exc
from pydantic import ValidationError

from bot.config import Settings
from bot.services import open_services
from core.clock import from_db
from core.errors import (
    DemoRefused,
    InputInvalid,
    PhoneInvalid,
    PhoneNotFound,
    Problem,
    UnknownStudent,
)
from core.identity import format_code
from core.importers.journal import JournalText, parse_journal, read_journal
from core.importers.roster import read_roster
from core.importers.teachers import read_teachers
from core.importers.text import UTF8, UTF8_BOM, decode, split_lines
from core.storage.db import Database
from core.storage.migrate import upgrade

JOBS = ("deliver", "digest", "expire-dots", "expire-invitations", "housekeeping")
EXIT_OK = 0
EXIT_INPUT = 2

NO_TOKEN = """\
BOT_TOKEN is not set, so the bot cannot start.

Get a token from @BotFather in Telegram (send /newbot and follow the steps), then put it
into the .env file next to the Makefile:

    BOT_TOKEN=123456789:AA...

(.env.example lists every setting.) Or set BOT_TOKEN in the environment.
"""


EXIT_BUSY = 1

# A spreadsheet takes a cell starting with one of these for a formula (OWASP: CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class InputError(Exception):
    """Bad input on the command line: printed, exit code 2."""


def plural(n: int, one: str, many: str) -> str:
    """``1 push``, ``2 pushes``, ``0 pushes``: a count with its noun, as a person writes it."""
    return f"{n} {one if n == 1 else many}"


class SchoolTimeFormatter(logging.Formatter):
    """Log lines stamped in school time with its offset, as every other time the CLI prints."""

    def __init__(self, fmt: str, tz: tzinfo) -> None:
        super().__init__(fmt)
        self.tz = tz

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, self.tz).isoformat(timespec="milliseconds")


# How the import summary names each journal event type: (one, many).
EVENT_NOUNS = {
    "grade": ("grade", "grades"),
    "grade_changed": ("grade change", "grade changes"),
    "grade_deleted": ("grade deletion", "grade deletions"),
    "dot": ("dot", "dots"),
    "dot_closed": ("dot closed", "dots closed"),
    "attendance": ("attendance mark", "attendance marks"),
    "homework": ("homework task", "homework tasks"),
    "lesson": ("lesson", "lessons"),
    "period": ("period", "periods"),
    "final_grade": ("final mark", "final marks"),
    "final_grade_deleted": ("final mark withdrawn", "final marks withdrawn"),
}


def csv_safe(value: object) -> object:
    """A cell a spreadsheet shows as text: one that would start a formula gets a leading '."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _csv_rows(rows: list[dict]) -> list[dict]:
    return [{k: csv_safe(v) for k, v in row.items()} for row in rows]


def _read_note(path: str, encoding: str) -> None:
    if encoding not in (UTF8, UTF8_BOM):
        print(f"{path}: read as {encoding}")


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="diary", description="School diary bot")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("run", help="start the bot: polling, delivery worker, scheduler")
    sub.add_parser("web", help="the webhook server (WEBHOOK_URL, WEBHOOK_SECRET): any number"
                              " behind a load balancer; /healthz and /metrics")
    sub.add_parser("deliver", help="a sender: delivers pushes until stopped; any number may run")
    sub.add_parser("scheduler", help="the scheduled jobs; any number may run, one acts")

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="create or migrate the database (idempotent)")
    dcopy = db_sub.add_parser("copy", help="copy every row of this database into another, empty"
                                           " one (e.g. from SQLite to PostgreSQL)")
    dcopy.add_argument("--to", required=True, metavar="URL",
                       help="the target: postgresql://… or sqlite:///path")

    roster = sub.add_parser("roster", help="the school roster")
    roster_sub = roster.add_subparsers(dest="roster_command", required=True)
    imp = roster_sub.add_parser("import", help="import the roster CSV (all or nothing)")
    imp.add_argument("file")
    imp.add_argument("--dry-run", action="store_true", help="validate and report, change nothing")

    teachers = sub.add_parser("teachers", help="class teachers (teachers.csv)")
    teachers_sub = teachers.add_subparsers(dest="teachers_command", required=True)
    timp = teachers_sub.add_parser("import", help="import teachers.csv (all or nothing)")
    timp.add_argument("file")
    timp.add_argument("--dry-run", action="store_true",
                      help="validate and report, change nothing")
    tcodes = teachers_sub.add_parser("codes", help="issue one-time link codes for teachers")
    tcodes.add_argument("--class", dest="class_name")
    tcodes.add_argument("--teacher-id")
    tcodes.add_argument("--out", help="write the CSV here instead of standard output")
    tcodes.add_argument("--bot-username", help="for the links; asked from Telegram if omitted")

    messages = sub.add_parser("messages", help="conversations of parents and class teachers")
    messages_sub = messages.add_subparsers(dest="messages_command", required=True)
    mexp = messages_sub.add_parser("export", help="export conversations for school staff")
    mexp.add_argument("--class", dest="class_name")
    mexp.add_argument("--student-id")
    mexp.add_argument("--format", choices=("csv", "json"), default="csv")

    journal = sub.add_parser("journal", help="journal events")
    journal_sub = journal.add_subparsers(dest="journal_command", required=True)
    jimp = journal_sub.add_parser("import", help="import journal events (JSONL; '-' for stdin)")
    jimp.add_argument("file")
    jimp.add_argument("--skip-invalid", action="store_true",
                      help="import the valid lines, reject the others")
    jimp.add_argument("--rejects", help="write rejected lines with reasons here (JSONL)")
    jimp.add_argument("--no-notify", action="store_true",
                      help="store without pushes (back-filling history)")
    jsync = journal_sub.add_parser(
        "sync", help="sync snapshots (JSONL; '-' for stdin): a student's or a class's marks for"
                     " a period as a whole, turned into new, changed and deleted grades")
    jsync.add_argument("file")
    jsync.add_argument("--dry-run", action="store_true", help="work out and report, change nothing")
    jsync.add_argument("--force", action="store_true",
                       help="take a snapshot that looks cut short (under half the marks of the"
                            " previous one)")
    jsync.add_argument("--no-notify", action="store_true", help="store without pushes")

    jobs = sub.add_parser("jobs", help="run one scheduled job now and exit")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True)
    jrun = jobs_sub.add_parser("run", help="run a job: " + ", ".join(JOBS))
    jrun.add_argument("name", choices=JOBS)

    codes = sub.add_parser("codes", help="one-time link codes")
    codes_sub = codes.add_subparsers(dest="codes_command", required=True)
    issue = codes_sub.add_parser("issue", help="issue codes for guardians and students")
    issue.add_argument("--class", dest="class_name")
    issue.add_argument("--student-id")
    issue.add_argument("--out", help="write the CSV here instead of standard output")
    issue.add_argument("--bot-username", help="for the links; asked from Telegram if omitted")

    link = sub.add_parser("link", help="support desk: link a Telegram account by phone")
    link.add_argument("--telegram-id", type=int, required=True)
    link.add_argument("--phone", required=True)

    notices = sub.add_parser("notices", help="absence notices filed by parents")
    notices_sub = notices.add_subparsers(dest="notices_command", required=True)
    nlist = notices_sub.add_parser("list", help="list notices for school staff")
    nlist.add_argument("--since", type=_iso_date, help="notices not ended before this date")
    nlist.add_argument("--class", dest="class_name")
    nlist.add_argument("--format", choices=("csv", "json"), default="csv")

    signoffs = sub.add_parser("signoffs", help="weekly diary sign-offs by parents")
    signoffs_sub = signoffs.add_subparsers(dest="signoffs_command", required=True)
    slist = signoffs_sub.add_parser("list", help="who signed the week, for school staff")
    slist.add_argument("--week", type=_iso_date, help="any day of the week (default: this week)")
    slist.add_argument("--class", dest="class_name")
    slist.add_argument("--format", choices=("csv", "json"), default="csv")

    demo = sub.add_parser("demo", help="seed a demo school into its own database and run the"
                                       " bot in demo mode")
    demo.add_argument("--database", help="the demo SQLite database (default: demo.sqlite3"
                                         " beside the SQLite database, or in data/)")

    sub.add_parser("status", help="counts, queue depth, last import")

    tokens = sub.add_parser("tokens", help="bearer tokens of the ingestion API, per school")
    tokens_sub = tokens.add_subparsers(dest="tokens_command", required=True)
    tissue = tokens_sub.add_parser("issue", help="issue a token for a school's journal system"
                                                 " (printed once)")
    tissue.add_argument("--school", required=True,
                        help="the school's name as in the roster ('' for the one school)")
    tissue.add_argument("--note", help="what the token is for, shown by `tokens list`")
    tlist = tokens_sub.add_parser("list", help="the tokens (never the tokens themselves)")
    tlist.add_argument("--format", choices=("csv", "json"), default="csv")
    trevoke = tokens_sub.add_parser("revoke", help="revoke a token at once")
    trevoke.add_argument("id", type=int)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        for err in exc.errors():
            if err["loc"]:
                print(f"setting {str(err['loc'][0]).upper()}: {err['msg']}", file=sys.stderr)
            else:
                print(f"settings: {err['msg'].removeprefix('Value error, ')}", file=sys.stderr)
        return EXIT_INPUT
    handler = logging.StreamHandler()
    handler.setFormatter(SchoolTimeFormatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s", settings.tz))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    if args.command == "demo":
        return _demo(args, settings)
    if args.command == "run":
        if not settings.has_token:
            print(NO_TOKEN, file=sys.stderr)
            return EXIT_INPUT
        from bot.roles import run_all

        return _run_polling(run_all(settings))
    if args.command in ("web", "deliver", "scheduler"):
        return _run_role(args.command, settings)
    try:
        return asyncio.run(_dispatch(args, settings))
    except (sqlite3.OperationalError, sqlalchemy.exc.OperationalError, OSError) as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            print("error: the database is busy (another import or job holds it for too long);"
                  " nothing was changed, try again", file=sys.stderr)
            return EXIT_BUSY
        if settings.is_sqlite:
            raise
        shown = Database(settings.database).display()
        print(f"error: cannot use the database at {shown}: {exc}".splitlines()[0],
              file=sys.stderr)
        return EXIT_BUSY
    except InputInvalid as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{plural(len(exc.problems), 'problem', 'problems')}; nothing was changed.",
              file=sys.stderr)
        return EXIT_INPUT
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT


def _run_role(role: str, settings: Settings) -> int:
    """`diary web`, `diary deliver`, `diary scheduler`: one role of a deployment."""
    if role in ("web", "deliver") and not settings.has_token:
        print(NO_TOKEN, file=sys.stderr)
        return EXIT_INPUT
    if role == "web" and not (settings.webhook_url and settings.webhook_secret
                              and settings.webhook_secret.get_secret_value()):
        print("error: `diary web` needs WEBHOOK_URL (the public https URL Telegram posts"
              " updates to) and WEBHOOK_SECRET (1-256 letters, digits, _ or -, checked on every"
              " update)", file=sys.stderr)
        return EXIT_INPUT
    from bot.roles import ROLES  # each role loads what it runs (a sender: nothing of aiogram)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(ROLES[role](settings))
    return EXIT_OK


def _run_polling(bot: Coroutine[Any, Any, None]) -> int:
    """Run the bot until it stops; a second poller for the same database is refused."""
    from bot.roles import ApiUnavailable
    from bot.singleton import AlreadyRunning

    try:
        asyncio.run(bot)
    except KeyboardInterrupt:
        pass
    except ApiUnavailable as exc:
        print(f"error: the ingestion API cannot listen on {exc.where} ({exc.reason}); change"
              " API_HOST or API_PORT, or leave API_PORT empty", file=sys.stderr)
        return EXIT_BUSY
    except AlreadyRunning as exc:
        print(f"error: another bot ({exc.holder}) is already running on this database"
              f" ({exc.what} is locked). Telegram allows one poller per token: stop the"
              " other one first.", file=sys.stderr)
        return EXIT_BUSY
    return EXIT_OK


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from bot.roles import demo_school, run_all

    if not settings.has_token:  # said before any work, as `diary run` does
        print(NO_TOKEN, file=sys.stderr)
        return EXIT_INPUT
    path = Path(args.database) if args.database else (
        (settings.sqlite_path or settings.database_path).parent / "demo.sqlite3")
    settings = settings.model_copy(update={"database_path": path, "database_url": None})

    async def seed() -> None:
        async with open_services(settings) as services:
            await demo_school(services).seed()

    try:
        asyncio.run(seed())
    except DemoRefused:
        print(f"error: {path} holds a school's data; demo mode never runs on a real school's"
              f" database. Choose another file with --database.", file=sys.stderr)
        return EXIT_INPUT
    print(f"demo school ready in {path}", file=sys.stderr)
    return _run_polling(run_all(settings, demo=True))


async def _db_copy(args: argparse.Namespace, settings: Settings) -> int:
    from core.storage.copy import TargetNotEmpty, copy_database
    from core.storage.db import database_url

    try:
        database_url(args.to)
    except ValueError as exc:
        raise InputError(f"--to: {exc}") from None
    async with Database(settings.database) as source, Database(args.to) as target:
        try:
            result = await copy_database(source, target)
        except TargetNotEmpty as exc:
            raise InputError(f"the target already holds rows ({', '.join(exc.tables)});"
                             " nothing was copied") from None
        shown = target.display()
    print(f"copied {plural(result.total, 'row', 'rows')} of {len(result.rows)} tables to"
          f" {shown}")
    print("Keep the same SECRET_KEY for the new database (with a generated key: the content of"
          " secret.key beside the old one), or no phone or code will match there.")
    return EXIT_OK


async def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "db" and args.db_command == "copy":
        return await _db_copy(args, settings)
    if args.command == "db":
        async with Database(settings.database) as db:
            done = await upgrade(db)
        print("applied: " + ", ".join(done) if done else "the database is up to date")
        return EXIT_OK
    if args.command == "roster":
        return await _roster_import(args, settings)
    if args.command == "journal" and args.journal_command == "sync":
        return await _journal_sync(args, settings)
    if args.command == "journal":
        return await _journal_import(args, settings)
    if args.command == "teachers" and args.teachers_command == "import":
        return await _teachers_import(args, settings)
    if args.command == "teachers":
        return await _teachers_codes(args, settings)
    if args.command == "messages":
        return await _messages_export(args, settings)
    if args.command == "jobs":
        return await _run_job(args, settings)
    if args.command == "codes":
        return await _codes_issue(args, settings)
    if args.command == "link":
        return await _link(args, settings)
    if args.command == "status":
        return await _status(settings)
    if args.command == "notices":
        return await _notices(args, settings)
    if args.command == "signoffs":
        return await _signoffs(args, settings)
    if args.command == "tokens":
        return await _tokens(args, settings)
    raise AssertionError(args.command)


T = TypeVar("T")


def _read_csv(path: str, read: Callable[[str], T]) -> T:
    """A roster-like CSV (``read_roster``, ``read_teachers``), or no such file."""
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file")
    return read(path)


async def _roster_import(args: argparse.Namespace, settings: Settings) -> int:
    roster = await asyncio.to_thread(_read_csv, args.file, read_roster)
    _read_note(args.file, roster.encoding)
    async with open_services(settings) as services:
        summary = await services.roster.apply(roster, args.file, dry_run=args.dry_run)
    head = "dry run, nothing changed" if summary.dry_run else "roster imported"
    print(
        f"{head}: {plural(summary.students, 'student', 'students')},"
        f" {plural(summary.guardians, 'guardian', 'guardians')},"
        f" {plural(summary.classes, 'class', 'classes')},"
        f" {plural(summary.links, 'student–guardian link', 'student–guardian links')}\n"
        f"students: +{summary.students_added} added, {summary.students_updated} updated,"
        f" {summary.students_moved} moved to another class,"
        f" {summary.students_deactivated} no longer listed (deactivated)\n"
        f"guardians: +{summary.guardians_added} added, {summary.guardians_updated} updated,"
        f" {summary.guardians_removed} removed\n"
        f"links: +{summary.links_added} added, {summary.links_removed} removed"
    )
    for line, column in summary.replaced:
        print(f"warning: {args.file}:{line}: {column}: now names another person than before"
              f" (a different name): a new guardian, the previous one's Telegram account links"
              f" {'would end' if summary.dry_run else 'ended'} and they"
              f" {'would be' if summary.dry_run else 'were'} asked to link again")
    return EXIT_OK


async def _teachers_import(args: argparse.Namespace, settings: Settings) -> int:
    roster = await asyncio.to_thread(_read_csv, args.file, read_teachers)
    _read_note(args.file, roster.encoding)
    async with open_services(settings) as services:
        summary = await services.teachers.apply(roster, args.file, dry_run=args.dry_run)
    head = "dry run, nothing changed" if summary.dry_run else "teachers imported"
    print(
        f"{head}: {plural(summary.teachers, 'teacher', 'teachers')},"
        f" {plural(summary.classes, 'class', 'classes')}\n"
        f"teachers: +{summary.teachers_added} added, {summary.teachers_updated} updated,"
        f" {summary.teachers_removed} no longer listed (access ended,"
        f" {plural(summary.links_ended, 'Telegram account', 'Telegram accounts')} unlinked)\n"
        f"classes: {summary.classes_assigned} given a class teacher,"
        f" {summary.classes_unassigned} left without one;"
        f" {plural(summary.pushes_dropped, 'waiting message', 'waiting messages')} to former"
        f" class teachers dropped"
    )
    return EXIT_OK


def _check_out(path: str | None) -> None:
    """Make sure codes can be written to ``--out`` before issuing them revokes the previous
    ones (the file is created owner-only, and not emptied yet)."""
    if not path:
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    except OSError as exc:
        raise InputError(f"--out: cannot write {path}: {exc.strerror}") from exc
    os.close(fd)


def _write_codes(path: str | None, text: str, count: int) -> None:
    """Issued codes as CSV: to ``--out`` (owner-only), else to standard output."""
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        print(f"{plural(count, 'code', 'codes')} written to {path}", file=sys.stderr)
    else:
        sys.stdout.write(text)


async def _teachers_codes(args: argparse.Namespace, settings: Settings) -> int:
    username = await _bot_username(args, settings)
    _check_out(args.out)
    async with open_services(settings) as services:
        codes = await services.teachers.issue_codes(class_name=args.class_name,
                                                    teacher_id=args.teacher_id)
    if not codes:
        raise InputError("no active class teachers match: nothing issued")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["teacher_id", "teacher", "classes", "code", "link", "expires"])
    for c in codes:
        writer.writerow([csv_safe(cell) for cell in (
            c.teacher_id, c.name.full, " ".join(c.classes), format_code(c.code),
            f"https://t.me/{username}?start={c.code}",
            c.expires_at.astimezone(settings.tz).date().isoformat())])
    _write_codes(args.out, out.getvalue(), len(codes))
    return EXIT_OK


MESSAGE_FIELDS = ["thread", "message", "class", "student_id", "student", "teacher_id", "teacher",
                  "parent", "author", "written_at", "delivery_from", "reply_to", "muted", "photo",
                  "text"]


async def _messages_export(args: argparse.Namespace, settings: Settings) -> int:
    async with open_services(settings) as services:
        rows = await services.conversations.export(args.class_name, args.student_id)
    if args.format == "json":
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        writer = csv.DictWriter(sys.stdout, fieldnames=MESSAGE_FIELDS)
        writer.writeheader()
        writer.writerows(_csv_rows(rows))
    return EXIT_OK


def _read_journal(path: str) -> JournalText:
    if path == "-":
        stream = getattr(sys.stdin, "buffer", None)
        if stream is None:  # already text (tests, embedding)
            return JournalText(split_lines(sys.stdin.read()), UTF8)
        text, encoding = decode(stream.read(), "<stdin>")
        return JournalText(split_lines(text), encoding)
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file")
    return read_journal(path)


def _check_writable(option: str, path: str) -> None:
    """Fail before anything is imported if ``path`` cannot be written (it is created empty)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except OSError as exc:
        raise InputError(f"{option}: cannot write {path}: {exc.strerror};"
                         f" nothing was imported") from exc
    os.close(fd)


def _progress(label: str) -> Callable[[int, int], None] | None:
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        end = "\n" if done == total else ""
        print(f"\r{label}: {done}/{total} ({done * 100 // max(total, 1)}%)", end=end,
              file=sys.stderr, flush=True)

    return show


def _write_rejects(path: str, checked_problems: list[Problem], raw: dict[int, str],
                   lines: set[int]) -> None:
    by_line: dict[int, list[str]] = {}
    for p in checked_problems:
        by_line.setdefault(p.line, []).append(f"{p.field}: {p.message}" if p.field else p.message)
    with open(path, "w", encoding="utf-8") as fh:
        for line in sorted(lines):
            record = {"line": line, "problems": by_line.get(line, []), "raw": raw.get(line, "")}
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")


async def _journal_import(args: argparse.Namespace, settings: Settings) -> int:
    name = "<stdin>" if args.file == "-" else args.file
    if args.rejects:
        _check_writable("--rejects", args.rejects)
    journal = await asyncio.to_thread(_read_journal, args.file)
    _read_note(name, journal.encoding)
    lines = journal.lines
    raw = {n: text for n, text in enumerate(lines, 1)}
    parsed = parse_journal(lines, name)
    async with open_services(settings) as services:
        try:
            summary, checked = await services.journal.import_journal(
                parsed, name, raw, notify=not args.no_notify, skip_invalid=args.skip_invalid,
                progress=_progress("importing"),
            )
        except InputInvalid as exc:
            if args.rejects:
                lines_bad = {p.line for p in exc.problems}
                await asyncio.to_thread(_write_rejects, args.rejects, exc.problems, raw, lines_bad)
            raise
    if args.rejects:
        await asyncio.to_thread(_write_rejects, args.rejects, checked.problems, raw,
                                set(checked.rejected_lines))
    for problem in checked.problems:
        print(f"rejected: {problem}", file=sys.stderr)
    applied = ", ".join(plural(n, *EVENT_NOUNS.get(kind, (kind, kind)))
                        for kind, n in sorted(summary.applied.items()))
    print(
        f"journal imported: {plural(summary.lines, 'line', 'lines')}, applied"
        f" {plural(summary.applied_total, 'event', 'events')}"
        + (f" ({applied})" if applied else "")
        + f"; {summary.already_imported} already imported, {summary.duplicates_in_file} repeated"
        f" in the file, {summary.rejected} rejected;"
        f" {plural(summary.pushes, 'push', 'pushes')} queued"
        + ("" if summary.notify else " (--no-notify)")
    )
    return EXIT_OK


def _sync_counts(count: Callable[[str], int]) -> str:
    """``3 new, 1 changed, …`` of a snapshot sync; ``count`` gives each by name."""
    return (f"{count('new')} new, {count('changed')} changed, {count('deleted')} deleted,"
            f" {count('missing_once')} missing once (kept), {count('unchanged')} unchanged")


async def _journal_sync(args: argparse.Namespace, settings: Settings) -> int:
    from core.services.snapshot import sync_snapshots

    name = "<stdin>" if args.file == "-" else args.file
    journal = await asyncio.to_thread(_read_journal, args.file)
    _read_note(name, journal.encoding)
    async with open_services(settings) as services:
        result = await sync_snapshots(services.journal, "\n".join(journal.lines),
                                      filename=name, force=args.force,
                                      notify=not args.no_notify, dry_run=args.dry_run)
    if not result.ok:
        raise InputInvalid(result.problems)
    for s in result.snapshots:
        period = s.period_id or f"{s.start}..{s.end}"
        scope = (f"student {s.student_id}" if s.student_id
                 else f"class {s.class_name}, {plural(s.students, 'student', 'students')}")
        notes = ""
        if s.already_imported:
            notes += f"; {s.already_imported} already imported"
        if s.first:
            notes += ("; first snapshot: stored without pushes" if s.student_id else
                      f"; first snapshot of {plural(s.first, 'student', 'students')}:"
                      " stored without pushes")
        if s.stale:
            notes += ("; left alone: a later snapshot was synced already" if s.student_id else
                      f"; {plural(s.stale, 'student', 'students')} left alone: a later"
                      " snapshot was synced already")
        if s.forced:
            notes += "; taken although it looks cut short (--force)"
        print(f"{name}:{s.line}: snapshot {s.snapshot_id} ({scope}, {period}"
              + (f", {s.subject}" if s.subject else "")
              + f"): {_sync_counts(functools.partial(getattr, s))}{notes};"
              f" {plural(s.pushes, 'push', 'pushes')} queued")
    head = "dry run, nothing changed" if result.status == "dry_run" else "snapshots synced"
    print(f"{head}: {plural(len(result.snapshots), 'snapshot', 'snapshots')},"
          f" {_sync_counts(result.total)}; {plural(result.pushes, 'push', 'pushes')} queued"
          + ("" if result.notify else " (--no-notify)"))
    return EXIT_OK


async def _run_job(args: argparse.Namespace, settings: Settings) -> int:
    from bot.i18n import create_i18n
    from bot.jobs import digest, expire_dots, expire_invitations, housekeeping
    from bot.sender import create_budget, create_sender_api, create_worker

    async with open_services(settings) as services:
        if args.name == "deliver":
            if not settings.has_token:
                raise InputError("delivering needs BOT_TOKEN")
            async with create_sender_api(settings) as api:
                budget = await create_budget(settings, services)
                worker = create_worker(api, services, create_i18n(settings.default_locale),
                                       settings, budget)
                try:
                    stats = await worker.run_until_empty()
                finally:
                    await budget.close()
            held = await services.outbox.pending()
            print(f"delivered {plural(stats.rows, 'push', 'pushes')} in"
                  f" {plural(stats.messages, 'message', 'messages')};"
                  f" {stats.retries} retried, {stats.rate_limited} rate-limited,"
                  f" {plural(stats.unreachable, 'recipient', 'recipients')} unreachable;"
                  f" {held} still waiting")
        elif args.name == "expire-dots":
            result = await expire_dots(services)
            graded = result["graded"]
            print(f"dots: {graded} became {'a grade' if graded == 1 else 'grades'},"
                  f" {result['vanished']} vanished;"
                  f" {plural(result['reminders'], 'reminder', 'reminders')} queued")
        elif args.name == "digest":
            result = await digest(services)
            print(f"digests: {result['sent']} queued, {result['nothing_to_say']} with nothing"
                  f" to say, {result['too_late']} too late for today")
        elif args.name == "expire-invitations":
            result = await expire_invitations(services)
            print(f"invitations: {result['expired']} expired")
        elif args.name == "housekeeping":
            done = await housekeeping(services)
            print("housekeeping: deleted "
                  + ", ".join(plural(done.get(key, 0), one, many) for key, one, many in (
                      ("outbox", "delivered push", "delivered pushes"),
                      ("digest_log", "digest decision", "digest decisions"),
                      ("conversations", "abandoned conversation", "abandoned conversations"),
                      ("codes", "expired or used code", "expired or used codes"),
                      ("code_failures", "failed code attempt", "failed code attempts"),
                      ("workers", "silent worker", "silent workers"))))
    return EXIT_OK


async def _bot_username(args: argparse.Namespace, settings: Settings) -> str:
    if args.bot_username:
        return args.bot_username.lstrip("@")
    if not settings.has_token:
        raise InputError("the links need the bot's username: set BOT_TOKEN or pass --bot-username")
    return await asyncio.to_thread(_ask_username, settings)


GET_ME_TIMEOUT = 10.0  # seconds; `codes issue` asks Telegram once and does not hang on it


def _ask_username(settings: Settings) -> str:
    """The bot's username from Telegram's getMe: one request, without loading the bot (aiogram
    takes seconds to import). Neither the token nor the URL is ever printed."""
    assert settings.bot_token is not None
    base = (settings.telegram_api_url or "https://api.telegram.org").rstrip("/")
    url = f"{base}/bot{settings.bot_token.get_secret_value()}/getMe"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # as the bot: no proxy
    try:
        with opener.open(url, timeout=GET_ME_TIMEOUT) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise InputError(f"Telegram refused BOT_TOKEN (HTTP {exc.code}) when asked for the"
                         " bot's username; check BOT_TOKEN or pass --bot-username") from None
    except (OSError, ValueError) as exc:  # unreachable, timed out, not JSON
        reason = getattr(exc, "reason", None) or exc.__class__.__name__
        raise InputError(f"could not ask Telegram for the bot's username ({reason});"
                         " pass --bot-username") from None
    username = (answer.get("result") or {}).get("username") if isinstance(answer, dict) else None
    if not username:
        raise InputError("Telegram did not give the bot's username; pass --bot-username")
    return username


async def _codes_issue(args: argparse.Namespace, settings: Settings) -> int:
    username = await _bot_username(args, settings)
    _check_out(args.out)
    async with open_services(settings) as services:
        try:
            codes = await services.linking.issue_codes(
                class_name=args.class_name, student_external_id=args.student_id
            )
        except UnknownStudent as exc:
            raise InputError(f"--student-id: no active student {args.student_id!r}") from exc
    if not codes:
        raise InputError("no active students match: nothing issued")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["class", "student_id", "student", "recipient_role", "recipient", "relation", "code",
         "link", "expires"]
    )
    for c in codes:
        writer.writerow([csv_safe(cell) for cell in (
            c.class_name, c.student_external_id, c.student_name.full, c.recipient.value,
            c.recipient_name.full, c.relation, format_code(c.code),
            f"https://t.me/{username}?start={c.code}",
            c.expires_at.astimezone(settings.tz).date().isoformat())])
    _write_codes(args.out, out.getvalue(), len(codes))
    return EXIT_OK


async def _link(args: argparse.Namespace, settings: Settings) -> int:
    async with open_services(settings) as services:
        try:
            result = await services.linking.support_link(args.telegram_id, args.phone)
        except PhoneInvalid as exc:
            raise InputError("--phone: not a Russian phone number") from exc
        except PhoneNotFound as exc:
            raise InputError("--phone: no guardian or student has this number") from exc
    names = ", ".join(f"{c.name.full} ({c.class_name})" for c in result.children)
    print(f"linked Telegram account {args.telegram_id} to: {names}")
    return EXIT_OK


NOTICE_FIELDS = ["number", "student_id", "child", "class", "start", "end", "lessons", "reason",
                 "comment", "filed_by", "filed_at", "status"]


async def _notices(args: argparse.Namespace, settings: Settings) -> int:
    async with open_services(settings) as services:
        notices = await services.absence.listing(args.since, args.class_name)
    rows = [
        {"number": n.id, "student_id": n.student_external_id, "child": n.child_name,
         "class": n.class_name, "start": n.start.isoformat(), "end": n.end.isoformat(),
         "lessons": " ".join(str(x) for x in n.lessons), "reason": n.reason.value,
         "comment": n.comment, "filed_by": n.filed_by_name,
         "filed_at": n.created_at.astimezone(settings.tz).isoformat(timespec="minutes"),
         "status": "cancelled" if n.cancelled_at else "active"}
        for n in notices
    ]
    if args.format == "json":
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        writer = csv.DictWriter(sys.stdout, fieldnames=NOTICE_FIELDS)
        writer.writeheader()
        writer.writerows(_csv_rows(rows))
    return EXIT_OK


async def _signoffs(args: argparse.Namespace, settings: Settings) -> int:
    async with open_services(settings) as services:
        day = args.week or services.absence.today()
        monday = day - timedelta(days=day.weekday())
        rows = await services.digest.signoffs(monday, args.class_name)
    out = [{"week": monday.isoformat(), "student_id": r["external_id"], "student": r["student"],
            "class": r["class_name"], "signed_by": r["guardian"] or "",
            "signed_at": from_db(r["signed_at"]).astimezone(settings.tz).isoformat(
                timespec="minutes") if r["signed_at"] else ""} for r in rows]
    if args.format == "json":
        print(json.dumps(out, ensure_ascii=False, indent=2))
    else:
        writer = csv.DictWriter(sys.stdout, fieldnames=["week", "student_id", "student", "class",
                                                        "signed_by", "signed_at"])
        writer.writeheader()
        writer.writerows(_csv_rows(out))
    return EXIT_OK


async def _status(settings: Settings) -> int:
    """Counts and the health of delivery; exit 1 when pushes are due and nothing goes out."""
    async with open_services(settings) as services:
        st = await services.status.status()
        now = services.clock.now()

    def at(moment: datetime | None) -> str:
        if moment is None:
            return "-"
        ago = int((now - moment).total_seconds())
        text = moment.astimezone(settings.tz).isoformat(timespec="seconds")
        return f"{text} ({_ago(ago)})" if ago >= 0 else text

    print(f"schema version:      {st.schema_version}")
    print(f"students (active):   {st.students}")
    print(f"guardians:           {st.guardians}")
    print(f"classes:             {st.classes}")
    print(f"accounts:            {st.accounts} ({st.linked_accounts} linked,"
          f" {st.unreachable_accounts} unreachable)")
    print(f"queue depth:         {st.queue_depth}")
    print(f"due now:             {st.due_now}")
    print(f"oldest undelivered:  {at(st.oldest_undelivered)}")
    print(f"last delivery:       {at(st.last_delivery)}")
    if settings.paid_broadcast or st.paid_today:
        limit = settings.paid_daily_limit if settings.paid_broadcast else 0
        print(f"paid broadcasts:     {st.paid_today} today (daily limit {limit})")
    if st.last_import:
        finished = st.last_import["finished_at"]
        with contextlib.suppress(ValueError):
            finished = from_db(finished).astimezone(settings.tz).isoformat(timespec="seconds")
        print(f"last import:         {st.last_import['kind']} {st.last_import['source']}"
              f" at {finished}")
    else:
        print("last import:         -")
    if st.workers:
        print("workers:")
        for w in st.workers:
            line = (f"  {w.role:<20} {w.owner}: alive {at(w.beat_at)},"
                    f" progress {at(w.progress_at)}")
            if w.role == "delivery":
                line += (f"; sent {w.messages} ({w.sent_per_second:.1f}/s),"
                         f" 429s {w.rate_limited}, paid {w.paid}")
            if w.last_error:
                line += f"; failing: {w.last_error}"
            print(line)
    if st.stalled:
        errors = [w.last_error for w in st.workers if w.role == "delivery" and w.last_error]
        last = f" Last error: {errors[0]}" if errors else ""
        if st.due_now:
            due = "1 push is" if st.due_now == 1 else f"{st.due_now} pushes are"
            print(f"ALERT: {due} due since {at(st.due_since)} and nothing has been"
                  f" delivered since {at(st.last_delivery)}. Is `diary run`"
                  " (or `diary deliver`) running?" + last)
        else:
            print("ALERT: pushes keep failing and wait for retries; nothing has been delivered"
                  f" since {at(st.last_delivery)}. Is Telegram reachable, the token valid?"
                  + last)
        return EXIT_BUSY
    return EXIT_OK


async def _tokens(args: argparse.Namespace, settings: Settings) -> int:
    from core.identity import Hasher
    from core.services.tokens import ApiTokens, school_name

    async with open_services(settings) as services:
        tokens = ApiTokens(services.db, Hasher(settings.secret()), services.clock)
        if args.tokens_command == "issue":
            school = school_name(args.school)
            known = await tokens.schools()
            record, secret = await tokens.issue(school, args.note)
            print(secret)
            shown = f"school {school!r}" if school else "the one school"
            print(f"token {record.id} for {shown} issued; it is shown only now: hand it to the"
                  " school's journal system as `Authorization: Bearer <token>`",
                  file=sys.stderr)
            if school not in known:
                print(f"note: the roster has no school {school!r} yet"
                      + (f" (it has: {', '.join(repr(k) for k in known)})" if known else "")
                      + "; the token can send that school's roster first (POST /v1/roster)",
                      file=sys.stderr)
            return EXIT_OK
        if args.tokens_command == "revoke":
            revoked = await tokens.revoke(args.id)
            if revoked is None:
                raise InputError(f"no token {args.id}")
            record = revoked
            assert record.revoked_at is not None
            print(f"token {record.id} ({record.school or 'the one school'}) revoked at"
                  f" {record.revoked_at.astimezone(settings.tz).isoformat(timespec='seconds')}")
            return EXIT_OK
        records = await tokens.listing()

    def when(moment: datetime | None) -> str:
        return moment.astimezone(settings.tz).isoformat(timespec="seconds") if moment else ""

    rows = [{"id": r.id, "school": r.school, "note": r.note or "",
             "created": when(r.created_at), "last_used": when(r.last_used_at),
             "revoked": when(r.revoked_at)} for r in records]
    if args.format == "json":
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        writer = csv.DictWriter(sys.stdout, fieldnames=["id", "school", "note", "created",
                                                        "last_used", "revoked"])
        writer.writeheader()
        writer.writerows(_csv_rows(rows))
    return EXIT_OK


def _ago(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


