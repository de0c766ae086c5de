"""The announcement event: text, classes, audience, links, pinned_until."""

from __future__ import annotations

import json

from core.importers.journal import AnnouncementEvent, Link, parse_journal


def parse(**fields):
    event = {"id": "a1", "type": "announcement", "announcement_id": "n-1",
             "text": "Родительское собрание в четверг в 18:00", **fields}
    return parse_journal([json.dumps(event, ensure_ascii=False)], "j.jsonl")


def problems(**fields) -> list[str]:
    return [str(p) for p in parse(**fields).problems]


def test_a_good_announcement_with_defaults():
    [event] = parse().events
    assert event == AnnouncementEvent("a1", 1, "n-1", "Родительское собрание в четверг в 18:00",
                                      (), "all")


def test_classes_are_spelt_as_the_roster_spells_them():
    [event] = parse(classes=["7 б", "8а", "7Б", "07-б", "10-а-2", "подготовительный"],
                    audience="Parents", pinned_until="2026-11-30").events
    assert event.classes == ("7Б", "8А", "10А-2", "ПОДГОТОВИТЕЛЬНЫЙ")
    assert event.audience == "parents"
    assert event.pinned_until.isoformat() == "2026-11-30"


def test_links_as_homework_reads_them():
    [event] = parse(links=["https://school.ru/a", {"url": "https://x.ru/b", "title": " План "}]
                    ).events
    assert event.links == (Link("https://school.ru/a"), Link("https://x.ru/b", "План"))
    assert problems(links=["ftp://x"]) == [
        "j.jsonl:1: links[0]: not an http or https address, e.g. https://example.ru/page"]


def test_a_bad_audience_and_bad_classes_are_named():
    assert problems(audience="teachers") == [
        "j.jsonl:1: audience: must be parents, students or all"]
    assert problems(classes="7Б") == [
        'j.jsonl:1: classes: must be a list of class names, e.g. ["7Б", "8А"]']
    assert problems(classes=["7Б", 7]) == [
        "j.jsonl:1: classes[1]: must be a class name (a non-empty string)"]


def test_text_is_required_and_at_most_4000_characters():
    assert problems(text=" ") == ["j.jsonl:1: text: required"]
    assert problems(text="я" * 4001) == ["j.jsonl:1: text: longer than 4000 characters"]
    assert len(parse(text="я" * 4000).events) == 1
    assert problems(pinned_until="30.11.2026") == [
        "j.jsonl:1: pinned_until: not a valid date (YYYY-MM-DD)"]
