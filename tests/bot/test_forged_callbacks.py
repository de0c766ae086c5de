"""Forged callback data (out-of-range or malformed numbers) is refused silently, for every kind."""

from __future__ import annotations

import logging

import pytest
from aiogram.methods import AnswerCallbackQuery, EditMessageText, SendMessage

from bot.callbacks import AbsenceCb
from tests.support import updates as up
from tests.support.school import ANNA_PHONE

ANNA = 5001
HUGE = str(10**30)

FORGED = {
    "t": ["t:h:1:99999999:0", "t:h:0:-5:0", f"t:s:1:{HUGE}:0", f"t:h:{HUGE}:739000:0",
          "t:h:-1:739000:0", "t:h:0:1:0", "t:h:x:739000:0", "t:h:0:739000:-1"],
    "sg": ["sg:1:99999999", f"sg:{HUGE}:739000", "sg:-1:739000", "sg:1:-739000", "sg:1:1"],
    "g": [f"g:sub:{HUGE}:-1:x:0", "g:ov:1:99999999::0", "g:ov:1:-7::0", "g:sub:1:-1:k:-3",
          f"g:sub:1:-1:k:{HUGE}", "g:ov:-2:-1::0", f"g:gc:{HUGE}:-1:x:0", "g:gc:1:1000:k:0",
          "g:oc:1:-7::0", "g:oc:-1:0::0", "g:gc:1:0:" + "k" * 40 + ":0"],
    "ab": ["ab:day:99999999", f"ab:month:{HUGE}", f"ab:cancel:{HUGE}", "ab:child:-1",
           "ab:day:-739000", f"ab:lesson:{HUGE}", f"ab:child:{HUGE}"],
    "iv": [f"iv:yes:{HUGE}", "iv:no:-1", "iv:yes:0"],
    "tr": [f"tr:revoke:{HUGE}", "tr:leave:-3", f"tr:kid:{HUGE}", "tr:revoke:-1"],
    "st": [f"st:kid:{HUGE}", f"st:quiet:{HUGE}", "st:dtime:9999", "st:kid:-1"],
    "dm": ["dm:x" + "y" * 60],
    "tc": [f"tc:re:{HUGE}", "tc:hist:-1", f"tc:kid:{HUGE}", "tc:mute:x", "tc:" + "y" * 40 + ":1"],
}


@pytest.mark.parametrize("prefix", sorted(FORGED))
async def test_forged_numbers_are_refused_silently(tg, prefix, caplog):
    caplog.set_level(logging.DEBUG)
    await tg.services.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    # Mid-conversation, where a forged day would reach the calendar's handler.
    await tg.feed(up.message(ANNA, "/absence"))
    ivan = await tg.services.db.scalar("SELECT id FROM students WHERE external_id = 'S-1001'")
    await tg.feed(up.callback(ANNA, AbsenceCb(a="child", v=str(ivan)).pack()))
    await tg.feed(up.callback(ANNA, AbsenceCb(a="mode", v="days").pack()))
    tg.session.clear()
    caplog.clear()
    for data in FORGED[prefix]:
        await tg.feed(up.callback(ANNA, data))  # the fixture checks: answered exactly once
    answers = tg.session.of(AnswerCallbackQuery)
    assert [(a.text, a.show_alert) for a in answers] == [(None, None)] * len(FORGED[prefix])
    assert not tg.session.of(SendMessage) and not tg.session.of(EditMessageText)
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.WARNING]
    assert any("forged" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("arg", ["1999-01-01", "0001-01-01", "9999-12-31", "2199-12-31"])
async def test_a_day_beyond_the_buttons_range_still_answers(tg, arg):
    await tg.services.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await tg.feed(up.message(ANNA, f"/homework {arg}"))
    assert tg.session.last_text().startswith("📚 Домашнее задание на")
