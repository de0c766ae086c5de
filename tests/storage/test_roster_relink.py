"""The account of a guardian whose number passed to another person hears it, in its language."""

from __future__ import annotations

from bot.i18n import create_i18n
from bot.notify import render_batch
from tests.support.school import EXAMPLE_ROSTER, SERGEY_PHONE, import_roster

ROWS = EXAMPLE_ROSTER.read_text(encoding="utf-8").splitlines()


async def test_the_old_account_is_asked_to_link_again_in_its_language(school):
    await school.linking.link_contact(1, 1, 1, SERGEY_PHONE)
    rows = [r.replace("Петров,Сергей,Иванович", "Сидоров,Пётр,Иванович") for r in ROWS]
    await import_roster(school, "\n".join(rows) + "\n")
    [batch] = await school.outbox.claim()
    assert batch.telegram_id == 1 and [i.kind for i in batch.items] == ["relink"]
    i18n = create_i18n("ru")
    texts = {}
    for locale in ("ru", "en"):
        with i18n.context(), i18n.use_locale(locale):
            [message], unknown = render_batch(batch.items)
            assert unknown == []
            texts[locale] = message.text
    assert texts["ru"].startswith("🔒 В данных школы произошли изменения")
    assert "/start" in texts["ru"] and texts["en"].startswith("🔒 The school's records")
