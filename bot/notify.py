"""Rendering outbox rows into messages, in the recipient's language, at send time."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from bot import buttons, render
from bot.buttons import Button, Keyboard
from bot.i18n import gettext as _
from bot.i18n import ngettext
from bot.render import average
from bot.text import split_text, width
from core.pushes import (
    KINDS,
    AnnouncementPush,
    AttendancePush,
    DigestPush,
    DotPush,
    FinalPush,
    GradePush,
    HomeworkPush,
    InvitationPush,
    LessonPush,
    RelinkPush,
    Shape,
    TeacherMessagePush,
    TrustNewsPush,
    WeekChartPush,
)
from core.services.outbox import OutboxItem

TELEGRAM_LIMIT = 4096
log = logging.getLogger(__name__)


def _value(p: Mapping[str, Any], key: str = "value") -> str:
    """The mark of a push: ``shown`` (``old_shown``) since marks are kept as shown, else the
    number that pushes queued before carried."""
    shown = p.get(key.replace("value", "shown"))
    return render.mark_shown(shown if shown is not None else p.get(key), p.get("scale"))


def _average_change(p: Mapping[str, Any]) -> str | None:
    before, after = p.get("avg_before"), p.get("avg_after")
    if p.get("counted") is False:
        # Shown by the school, left out of the average (weight 0, «зачёт», «н/а»).
        lines = [_("Not counted in the average.")]
        if after is not None:
            lines.append(_("Average: {average}").format(average=average(after)))
        return "\n".join(lines)
    if before is None and after is None:
        return None
    if before is None:  # the first counted mark of the subject in the period
        return _("Average: {average} (first mark)").format(average=average(after))
    return _("Average: {before} → {after}").format(before=average(before), after=average(after))


def _point(p: Mapping[str, Any]) -> str | None:
    """A mark's dot: until when it is open, or that it was cleared."""
    if p.get("point_until"):
        return _("📌 The mark carries a dot until {date} ({left})").format(
            date=render.day(date.fromisoformat(p["point_until"])),
            left=render.days_left(p.get("days_left", 0)))
    if p.get("point_cleared"):
        return _("📌 The dot on this mark is cleared.")
    return None


def _details(p: Mapping[str, Any]) -> str:
    parts = [p["child"], render.day(date.fromisoformat(p["date"]))]
    parts.append(_("weight {weight}").format(weight=p["weight"]))
    if p.get("work"):
        parts.append(p["work"])
    return " · ".join(parts)


def _grade_block(head: str, p: Mapping[str, Any], with_comment: bool = True,
                 with_teacher: bool = False) -> str:
    lines = [head, _details(p)]
    if with_comment and p.get("comment"):
        lines.append(_("Comment: «{comment}»").format(comment=p["comment"]))
    if with_teacher and p.get("teacher"):
        lines.append(_("Teacher: {teacher}").format(teacher=p["teacher"]))
    point = _point(p)
    if point:
        lines.append(point)
    change = _average_change(p)
    if change:
        lines.append(change)
    return "\n".join(lines)


def grade_new(p: GradePush) -> str:
    head = (
        _("🔔 Grade {value} from a dot · {subject}")
        if p.get("from_dot")
        else _("🔔 New grade {value} · {subject}")
    ).format(value=_value(p), subject=p["subject"])
    return _grade_block(head, p, with_teacher=True)


def grade_changed(p: GradePush) -> str:
    old, new = _value(p, "old_value"), _value(p)
    if (p.get("old_value") is not None or p.get("old_shown") is not None) and old != new:
        head = _("✏️ Grade corrected {old} → {value} · {subject}").format(
            old=old, value=new, subject=p["subject"]
        )
    else:
        head = _("✏️ Grade {value} updated · {subject}").format(
            value=new, subject=p["subject"]
        )
    return _grade_block(head, p)


def grade_deleted(p: GradePush) -> str:
    head = _("🗑 Grade {value} removed · {subject}").format(value=_value(p),
                                                           subject=p["subject"])
    return _grade_block(head, p, with_comment=False)


def _what(p: Mapping[str, Any]) -> str | None:
    if p.get("work") and p.get("comment"):
        return f"{p['work']}: {render.quoted(p['comment'])}"
    if p.get("comment"):
        return render.quoted(p["comment"])
    return p.get("work")


def dot_new(p: DotPush) -> str:
    lines = [
        _("📌 New dot · {subject}").format(subject=p["subject"]),
        _("{child} · until {date} ({left})").format(
            child=p["child"], date=render.day(date.fromisoformat(p["expires"])),
            left=render.days_left(p["days_left"])),
    ]
    if what := _what(p):
        lines.append(what)
    if p.get("value") is not None or p.get("shown") is not None:
        lines.append(_("If not settled by then, it becomes a {value}.").format(value=_value(p)))
    if p.get("teacher"):
        lines.append(_("Teacher: {teacher}").format(teacher=p["teacher"]))
    return "\n".join(lines)


def dot_reminder(p: DotPush) -> str:
    if p["days_left"] <= 0:
        head = _("⏰ Last day for a dot · {subject}").format(subject=p["subject"])
    else:
        head = _("⏰ Dot · {subject}: {left}").format(subject=p["subject"],
                                                      left=render.days_left(p["days_left"]))
    lines = [head, _("{child} · until {date}").format(
        child=p["child"], date=render.day(date.fromisoformat(p["expires"])))]
    if p.get("mark") is not None:
        lines.append(_("The dot is on the mark {mark}.").format(mark=p["mark"]))
    if what := _what(p):
        lines.append(what)
    if p.get("value") is not None or p.get("shown") is not None:
        lines.append(_("If not settled by then, it becomes a {value}.").format(value=_value(p)))
    return "\n".join(lines)


def dot_vanished(p: DotPush) -> str:
    head = (_("🧹 Dot removed by the teacher · {subject}") if p.get("reason") == "teacher"
            else _("🧹 Dot closed without a grade · {subject}")).format(subject=p["subject"])
    lines = [head, p["child"]]
    if what := _what(p):
        lines[1] += " · " + what
    return "\n".join(lines)


def homework(p: HomeworkPush) -> str:
    head = (_("📚 Homework for tomorrow changed · {subject}") if p.get("updated")
            else _("📚 Homework for tomorrow · {subject}")).format(subject=p["subject"])
    lines = [head]
    if p.get("personal"):
        lines.append(_("{child} · individual task").format(child=p["child"]))
    lines.append(p["text"])
    if not p.get("required", True):
        lines.append(_("(optional)"))
    # Pushes are plain text: an address shows as itself, and Telegram makes it a link.
    for link in p.get("links") or ():
        lines.append(f"🔗 {link['title']}: {link['url']}" if link.get("title")
                     else f"🔗 {link['url']}")
    return "\n".join(lines)


def announcement(p: AnnouncementPush) -> str:
    head = (_("📢 School announcement (updated)") if p.get("updated")
            else _("📢 School announcement"))
    lines = [head, p["text"]]
    for link in p.get("links") or ():
        lines.append(f"🔗 {link['title']}: {link['url']}" if link.get("title")
                     else f"🔗 {link['url']}")
    return "\n".join(lines)


def _lesson_when(p: Mapping[str, Any]) -> str:
    when = _("{child} · {day}, lesson {number} at {start}").format(
        child=p["child"], day=render.long_day(date.fromisoformat(p["date"])),
        number=p["number"], start=p["start"])
    return f"{when} · {p['group']}" if p.get("group") else when


def lesson_cancelled(p: LessonPush) -> str:
    return "\n".join([
        _("🗓 Lesson cancelled · {subject}").format(subject=p["subject"]),
        _lesson_when(p),
    ])


def lesson_replaced(p: LessonPush) -> str:
    lines = [_("🔄 Teacher replaced · {subject}").format(subject=p["subject"]), _lesson_when(p)]
    if p.get("substitute"):
        lines.append(_("Substitute: {name}").format(name=p["substitute"]))
    if p.get("teacher"):
        lines.append(_("Timetabled teacher: {name}").format(name=p["teacher"]))
    return "\n".join(lines)


def final_grade(p: FinalPush) -> str:
    """A final mark of a period (``period``: its name, as the school gives it) or the year."""
    if p.get("period"):
        head = _("🎓 Final mark for {period} · {subject}: {value}").format(
            period=p["period"], subject=p["subject"], value=p["value"])
    else:
        head = _("🎓 Final mark for the year · {subject}: {value}").format(
            subject=p["subject"], value=p["value"])
    return "\n".join([head, p["child"]])


def final_grade_changed(p: FinalPush) -> str:
    names = {"period": p.get("period"), "subject": p["subject"], "value": p["value"]}
    if p.get("old_value") is not None:
        head = (_("✏️ Final mark for {period} corrected · {subject}: {old} → {value}")
                if p.get("period") else
                _("✏️ Final mark for the year corrected · {subject}: {old} → {value}"))
        names["old"] = p["old_value"]
    else:
        head = (_("✏️ Final mark for {period} updated · {subject}: {value}") if p.get("period")
                else _("✏️ Final mark for the year updated · {subject}: {value}"))
    return "\n".join([head.format(**names), p["child"]])


def final_grade_deleted(p: FinalPush) -> str:
    head = (_("🗑 Final mark for {period} withdrawn · {subject}: {value}") if p.get("period")
            else _("🗑 Final mark for the year withdrawn · {subject}: {value}"))
    return "\n".join([head.format(period=p.get("period"), subject=p["subject"],
                                   value=p["value"]), p["child"]])


def final_grades(group: list[FinalPush]) -> str:
    """New final marks of one child for one period (or the year): one block, by subject."""
    if len(group) == 1:
        return final_grade(group[0])
    first = group[0]
    head = (_("🎓 Final marks for {period} · {child}") if first.get("period")
            else _("🎓 Final marks for the year · {child}")).format(
        period=first.get("period"), child=first["child"])
    lines = [head]
    for p in sorted(group, key=lambda p: p["subject"].casefold()):
        lines.append(f"• {p['subject']}: {p['value']}")
    return "\n".join(lines)


def attendance(group: list[AttendancePush]) -> str:
    """The marks of one child on one day, in lesson order."""
    first = group[0]
    day = render.day(date.fromisoformat(first["date"]))
    calm = all(p.get("excused") for p in group)
    if calm and all(p.get("by_notice") for p in group):
        head = _("✅ {child} is marked absent on {day}, as in your notice").format(
            child=first["child"], day=day)
    elif calm:
        head = _("✅ {child}: excused absence on {day}").format(child=first["child"], day=day)
    elif all(p["mark"] == "late" for p in group):
        head = ngettext("⏰ {child} was late on {day}", "⏰ {child} was late on {day}",
                        len(group)).format(child=first["child"], day=day)
    elif all(p["mark"] != "late" for p in group):
        head = ngettext("🚫 {child} missed a lesson on {day}", "🚫 {child} missed {n} lessons"
                        " on {day}", len(group)).format(child=first["child"], day=day,
                                                        n=len(group))
    else:
        head = _("🚫 {child} missed lessons and was late on {day}").format(
            child=first["child"], day=day)
    lines = [head]
    for p in sorted(group, key=lambda p: p["lesson"]):
        what = _("late") if p["mark"] == "late" else _("absent")
        if p.get("excused") and not calm:
            what += ", " + _("excused")
        lines.append(_("• lesson {number}, {subject} — {what}").format(
            number=p["lesson"], subject=p["subject"], what=what))
    return "\n".join(lines)


def scope_names(scopes: list[str]) -> str:
    names = {
        "grades": _("grades and dots"),
        "attendance": _("attendance"),
        "homework": _("homework and the timetable"),
        "digest": _("the daily digest"),
    }
    return ", ".join(names[s] for s in scopes if s in names)


def invitation(p: InvitationPush) -> tuple[str, Keyboard]:
    expires = datetime.fromisoformat(p["expires"].replace("Z", "+00:00"))
    text = "\n".join([
        _("🤝 {inviter} invites you ({surname}) to follow: {children}.").format(
            inviter=p["inviter"], surname=p["surname"], children=", ".join(p["children"])),
        _("You will see: {scopes}.").format(scopes=scope_names(p["scopes"])),
        _("The invitation is valid until {day}.").format(day=render.day(
            date.fromisoformat(p["expires_day"]) if p.get("expires_day") else expires.date())),
    ])
    markup = Keyboard.of([[
        Button(_("✅ Accept"), buttons.invite("yes", p["invitation_id"])),
        Button(_("✖️ Decline"), buttons.invite("no", p["invitation_id"])),
    ]])
    return text, markup


def trust_news(p: TrustNewsPush) -> str:
    children = ", ".join(p.get("children", []))
    event = p["event"]
    if event == "accepted":
        return _("🤝 {surname} accepted your invitation and now follows {children} ({scopes})."
                 ).format(surname=p["surname"], children=children,
                          scopes=scope_names(p.get("scopes", [])))
    if event == "declined":
        return _("{surname} declined your invitation.").format(surname=p["surname"])
    if event == "expired":
        return _("Your invitation for {surname} expired without an answer.").format(
            surname=p["surname"])
    if event == "revoked":
        return _("🔒 The parent has ended your access to {children}.").format(children=children)
    if event == "left":
        return _("{surname} no longer follows {children}.").format(surname=p["surname"],
                                                                   children=children)
    return _("🔒 Your access to {children} has ended: the person who invited you is no longer"
             " listed as the child's guardian.").format(children=children)


def digest(p: DigestPush) -> tuple[str, Keyboard | None]:
    day = date.fromisoformat(p["day"])
    lines = [_("📰 Digest for {day}").format(day=render.for_day(day))]
    signs: list[list[Button]] = []
    for c in p["children"]:
        lines.append("")
        head = c["name"] + (f", {c['class_name']}" if c["class_name"] else "")
        lines.append(f"👤 {head}")
        if c["grades"]:
            lines.append(_("Grades today:"))
            for g in c["grades"]:
                line = f"• {g['subject']}: {_value(g)}"
                extra = [_("weight {weight}").format(weight=g["weight"])]
                if g.get("work"):
                    extra.append(g["work"])
                if g.get("counted") is False:
                    extra.append(_("not counted in the average"))
                line += f" ({', '.join(extra)})"
                if g.get("avg_after") is not None:
                    line += " — " + (
                        _("average {average} (first mark)").format(
                            average=average(g["avg_after"]))
                        if g.get("avg_before") is None else
                        _("average {before} → {after}").format(
                            before=average(g.get("avg_before")), after=average(g["avg_after"])))
                lines.append(line)
        if c["marks"]:
            lines.append(_("Attendance today:"))
            for m in c["marks"]:
                what = _("late") if m["mark"] == "late" else _("absent")
                if m.get("excused"):
                    what += ", " + _("excused")
                lines.append(_("• lesson {number}, {subject} — {what}").format(
                    number=m["lesson"], subject=m["subject"], what=what))
        if c["dots"]:
            lines.append(_("Open dots:"))
            for d in c["dots"]:
                what = f"{d['subject']}" + (f" — {d['work']}" if d.get("work") else "")
                lines.append(_("• {what}: until {day}, {left}").format(
                    what=what, day=render.day(date.fromisoformat(d["expires"])),
                    left=render.days_left(d["days_left"])))
        if c.get("next_day") and (c["lessons"] or c["homework"]):
            lines.append(_("{day}:").format(
                day=render.capitalized(render.long_day(date.fromisoformat(c["next_day"])))))
            if c["lessons"]:
                lessons = []
                for x in c["lessons"]:
                    item = f"{x['number']}. {x['subject']} {x['start']}"
                    if x.get("group"):
                        item += f" ({x['group']})"
                    if x["cancelled"]:
                        item += " (" + _("cancelled") + ")"
                    lessons.append(item)
                lines.append(_("Lessons: {lessons}").format(lessons="; ".join(lessons)))
            for h in c["homework"]:
                optional = "" if h["required"] else " " + _("(optional)")
                lines.append(f"• {h['subject']}{optional}: {h['text']}")
        if all(not c[k] for k in ("grades", "marks", "dots", "lessons", "homework")):
            lines.append(_("Nothing new today."))
        if c.get("signoff_week"):
            if c.get("signed_at"):
                lines.append(_("✍️ You have signed this week's diary."))
            else:
                signs.append([Button(
                    _("✍️ Seen — {child}").format(child=c["name"].split()[0]),
                    buttons.sign(c["student_id"],
                                 date.fromisoformat(c["signoff_week"]).toordinal()))])
    if p.get("announcements"):
        lines += ["", _("📢 School announcements today:")]
        lines += [f"• {a['text']}" for a in p["announcements"]]
    if signs:
        lines += ["", _("The week is over: please confirm that you have seen the diary.")]
    markup = Keyboard.of(signs) if signs else None
    return "\n".join(lines), markup


def relink(_p: RelinkPush) -> str:
    """The roster gave the number or e-mail this account was linked by to another person."""
    return _("🔒 The school's records have changed: the phone number or e-mail this account was"
             " linked by now belongs to another person, so this account no longer shows any"
             " children. If you are a parent or a student of the school, link again: /start")


def render_blocks(items: tuple[OutboxItem, ...]) -> tuple[list[tuple[str, list[int]]], list[int]]:
    """Each push as a block of text with the rows it covers, and the rows that could not be
    rendered (an unknown kind, or a payload the renderer fails on: logged, then dropped).

    Absence marks of one child on one day make one block, where the first of them stands; so do
    new final marks of one child for one period."""
    # An item, or (kind, student, date or period) of a group.
    order: list[OutboxItem | tuple[str, str, str]] = []
    marks: dict[tuple[str, str, str], list[OutboxItem]] = {}
    unknown: list[int] = []
    for item in items:
        shape = _shape(item.kind)
        if shape is Shape.GROUPED:
            what = item.payload.get(KINDS[item.kind].group_by or "")
            key = (item.kind, str(item.student_id), str(what or ""))
            if key not in marks:
                marks[key] = []
                order.append(key)
            marks[key].append(item)
        elif shape is Shape.BLOCK:
            order.append(item)
        else:
            unknown.append(item.id)
    blocks = []
    for entry in order:
        group = marks[entry] if isinstance(entry, tuple) else [entry]
        try:
            render_one: Any = RENDERERS[group[0].kind]
            text = (render_one([i.payload for i in group]) if isinstance(entry, tuple)
                    else render_one(entry.payload))
        except Exception:
            log.exception("cannot render outbox rows %s", [i.id for i in group])
            unknown += [i.id for i in group]
            continue
        blocks.append((text, [i.id for i in group]))
    return blocks, unknown


def render_items(items: tuple[OutboxItem, ...]) -> tuple[str, list[int]]:
    """One text for a recipient's pending pushes, and the ids that could not be rendered."""
    blocks, unknown = render_blocks(items)
    return "\n\n".join(text for text, _ids in blocks), unknown


@dataclass(frozen=True)
class Outgoing:
    text: str
    markup: Keyboard | None
    ids: list[int]  # the rows this message settles (none for the first parts of a long one)
    photo: str | None = None  # a photo's file id: sent with ``text`` as its caption
    reply_to: int | None = None  # the message it answers in the recipient's chat
    note: int | None = None  # the conversation message whose delivered id is to be kept
    upload: bytes | None = None  # a new picture (PNG): sent with ``text`` as its caption


def _parts(text: str, markup: Keyboard | None, ids: list[int]) -> list[Outgoing]:
    """A text too long for one message becomes several; the rows go with the last part."""
    parts = split_message(text)
    return [Outgoing(part, markup if n == len(parts) - 1 else None,
                     ids if n == len(parts) - 1 else [])
            for n, part in enumerate(parts)]


def relation_name(relation: str) -> str:
    return {"mother": _("mother"), "father": _("father"),
            "guardian": _("guardian")}.get(relation, relation)


def _conversation_buttons(p: Mapping[str, Any], teacher: bool) -> Keyboard:
    rows = [[Button(_("↩️ Reply"), buttons.teacher("re", p["message"]))]]
    extra = [Button(_("📜 History"), buttons.teacher("hist", p["thread"]))]
    if teacher:
        extra.append(Button(_("🔕 Mute"), buttons.teacher("mute", p["thread"])))
    rows.append(extra)
    return Keyboard.of(rows)


def teacher_message(p: TeacherMessagePush) -> Outgoing:
    """A parent's message, as the class teacher receives it."""
    sender = p.get("from") or _("a parent")
    if p.get("relation"):
        sender += f" ({relation_name(p['relation'])})"
    head = _("✉️ Message from a parent · {child}, {class_name}").format(
        child=p["child"], class_name=p["class"])
    text = "\n".join([head, _("From: {sender}").format(sender=sender), "", p["text"]]).strip()
    return Outgoing(text, _conversation_buttons(p, teacher=True), [], p.get("photo"),
                    p.get("reply_to"), p["message"])


def teacher_answer(p: TeacherMessagePush) -> Outgoing:
    """The class teacher's answer, as the parent receives it."""
    head = _("✉️ Class teacher {teacher} · {child}, {class_name}").format(
        teacher=p["teacher"], child=p["child"], class_name=p["class"])
    text = "\n".join([head, "", p["text"]]).strip()
    return Outgoing(text, _conversation_buttons(p, teacher=False), [], p.get("photo"),
                    p.get("reply_to"), p["message"])


def week_chart(p: WeekChartPush) -> Outgoing:
    """A child's week as a picture, after Friday's digest."""
    caption = _("📈 Week {span} · {child}: {marks}").format(
        span=render.days(date.fromisoformat(p["start"]), date.fromisoformat(p["end"])),
        child=p["child"], marks=render.marks_count(p["marks"]))
    return Outgoing(caption, None, [], upload=base64.b64decode(p["png"], validate=True))


# -- one renderer per kind of core/pushes.py, of the kind's shape --------------------------------
# BLOCK: payload -> a block of text; GROUPED: the payloads of one group -> one block;
# INTERACTIVE: payload -> (text, buttons); OWN: payload -> a message of its own.
# (Each takes its kind's payload type; tests/bot/test_push_kinds.py checks the shapes.)
RENDERERS: dict[str, Callable[..., Any]] = {
    "grade_new": grade_new,
    "grade_changed": grade_changed,
    "grade_deleted": grade_deleted,
    "final_grade": final_grades,
    "final_grade_changed": final_grade_changed,
    "final_grade_deleted": final_grade_deleted,
    "dot_new": dot_new,
    "dot_reminder": dot_reminder,
    "dot_vanished": dot_vanished,
    "attendance": attendance,
    "homework": homework,
    "lesson_cancelled": lesson_cancelled,
    "lesson_replaced": lesson_replaced,
    "announcement": announcement,
    "trust_news": trust_news,
    "relink": relink,
    "invitation": invitation,
    "digest": digest,
    "week_chart": week_chart,
    "teacher_message": teacher_message,
    "teacher_answer": teacher_answer,
}


def _shape(kind: str) -> Shape | None:
    """How a kind is shown; None for a kind that cannot be (unknown, or without a renderer)."""
    known = KINDS.get(kind)
    return known.shape if known is not None and kind in RENDERERS else None


def render_batch(items: tuple[OutboxItem, ...]) -> tuple[list[Outgoing], list[int]]:
    """The messages for a recipient's pending pushes, and the ids that could not be rendered.

    Plain pushes share messages of up to Telegram's limit, whole blocks at a time, so a failure
    part-way never resends what already went out; a push with buttons goes on its own."""
    plain = tuple(i for i in items if _shape(i.kind) not in (Shape.INTERACTIVE, Shape.OWN))
    blocks, unknown = render_blocks(plain)
    messages: list[Outgoing] = []
    text, ids = "", list[int]()
    for block, block_ids in blocks:
        if text and width(text) + 2 + width(block) > TELEGRAM_LIMIT:
            messages += _parts(text, None, ids)
            text, ids = "", []
        text = f"{text}\n\n{block}" if text else block
        ids = ids + block_ids
    if text:
        messages += _parts(text, None, ids)
    for item in items:
        if _shape(item.kind) is Shape.INTERACTIVE:
            try:
                body, markup = RENDERERS[item.kind](item.payload)
            except Exception:
                log.exception("cannot render outbox row %s", item.id)
                unknown.append(item.id)
                continue
            messages += _parts(body, markup, [item.id])
    for item in items:
        if _shape(item.kind) is Shape.OWN:
            # Each on its own, whole: the service keeps texts and captions within the limits.
            try:
                out = RENDERERS[item.kind](item.payload)
            except Exception:
                log.exception("cannot render outbox row %s", item.id)
                unknown.append(item.id)
                continue
            messages.append(Outgoing(out.text, out.markup, [item.id], out.photo, out.reply_to,
                                     out.note, out.upload))
    return messages, unknown


def split_message(text: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Split at blank lines, then lines, then words, so every part fits Telegram's limit."""
    return split_text(text, html=False, limit=limit)
