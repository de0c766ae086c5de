"""Parents and class teachers write to each other through the bot: /teacher, «Reply», working
hours, forged buttons, mute, history."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aiogram.methods import AnswerCallbackQuery, SendMessage, SendPhoto
from aiogram.types import Chat, Message, PhotoSize, Update

from bot.callbacks import TeacherCb
from bot.delivery import DeliveryWorker
from bot.i18n import create_i18n
from core.clock import to_db
from core.importers.teachers import parse_teachers
from tests.support import updates as up
from tests.support.delivery import virtual_sleep
from tests.support.recording import RecordingApi
from tests.support.school import ANNA_PHONE, EXAMPLE_ROOT, SERGEY_PHONE

ANNA, SERGEY, SOKOLOVA, ORLOV = 5001, 5003, 7001, 7002
SOKOLOVA_PHONE = "+7 903 200-00-01"
ORLOV_PHONE = "+7 903 200-00-02"
TEACHERS = EXAMPLE_ROOT / "teachers.csv"
NOTE = "Здравствуйте! Иван завтра уйдёт после 4-го урока к врачу."


def press(action: str, value: int = 0) -> str:
    return TeacherCb(a=action, i=value).pack()


def photo(user_id: int, file_id: str, caption: str) -> Update:
    msg = Message(message_id=900, date=up.MESSAGE_DATE, chat=Chat(id=user_id, type="private"),
                  from_user=up.user(user_id), caption=caption,
                  photo=[PhotoSize(file_id=file_id, file_unique_id="u" + file_id, width=800,
                                   height=600)])
    return Update(update_id=901, message=msg)


def native_reply(user_id: int, text: str, to: int) -> Update:
    """A message sent with Telegram's own «Reply» to message ``to`` of the user's chat."""
    update = up.message(user_id, text)
    replied = Message(message_id=to, date=up.MESSAGE_DATE, chat=Chat(id=user_id, type="private"),
                      text="…")
    return update.model_copy(update={"message": update.message.model_copy(
        update={"reply_to_message": replied})})


async def deliver(tg) -> None:
    s = tg.services
    await DeliveryWorker(RecordingApi(tg.bot), s.outbox, create_i18n("ru"),
                         sleep=virtual_sleep(s.clock)).run_until_empty()


def sent_to(tg, chat_id: int) -> list[SendMessage | SendPhoto]:
    return [c for c in tg.session.calls
            if isinstance(c, SendMessage | SendPhoto) and c.chat_id == chat_id]


def buttons(call) -> list[list[str]]:
    return [[b.text for b in row] for row in call.reply_markup.inline_keyboard]


async def student(s, external_id: str) -> int:
    return await s.db.scalar("SELECT id FROM students WHERE external_id = ?", (external_id,))


@pytest.fixture
async def classroom(tg):
    s = tg.services
    await s.teachers.apply(parse_teachers(TEACHERS.read_text(encoding="utf-8"), "teachers.csv"),
                           "teachers.csv")
    await s.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await s.linking.link_contact(SERGEY, SERGEY, SERGEY, SERGEY_PHONE)
    await tg.feed(up.contact(SOKOLOVA, SOKOLOVA_PHONE, SOKOLOVA))
    await tg.feed(up.contact(ORLOV, ORLOV_PHONE, ORLOV))
    tg.session.clear()
    return tg


async def anna_writes(tg, text: str = NOTE) -> Update:
    """Анна (two children) picks Иван and writes."""
    await tg.feed(up.message(ANNA, "/teacher"))
    await tg.feed(up.callback(ANNA, press("kid", await student(tg.services, "S-1001"))))
    update = up.message(ANNA, text)
    await tg.feed(update)
    return update


async def test_link_by_phone_then_parent_writes_and_the_teacher_answers_threaded(tg):
    s = tg.services
    await s.teachers.apply(parse_teachers(TEACHERS.read_text(encoding="utf-8"), "teachers.csv"),
                           "teachers.csv")
    await s.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    # The teacher links like a parent: the contact Telegram vouches for.
    await tg.feed(up.contact(SOKOLOVA, SOKOLOVA_PHONE, SOKOLOVA))
    assert tg.session.last_text() == (
        "Готово! Аккаунт привязан.\nВы классный руководитель 7Б: сюда будут приходить"
        " сообщения родителей, /teacher — список переписок.")
    await tg.feed(up.message(SOKOLOVA, "/start"))
    assert tg.session.last_text().endswith("Вы классный руководитель 7Б: сюда будут приходить"
                                           " сообщения родителей, /teacher — список переписок.")
    await tg.feed(up.message(SOKOLOVA, "/teacher"))
    assert tg.session.last_text() == (
        "📥 Сообщения от родителей 7Б.\nСообщений пока нет. Родители пишут командой /teacher,"
        " их сообщения приходят сюда.")

    # Анна has two children: she picks Иван.
    await tg.feed(up.message(ANNA, "/teacher"))
    assert tg.session.last_text() == "Классному руководителю какого ребёнка написать?"
    assert buttons(tg.session.last()) == [["Иван Петров, 7Б класс"], ["Мария Петрова, 5А класс"]]
    ivan = await student(s, "S-1001")
    await tg.feed(up.callback(ANNA, press("kid", ivan)))
    assert tg.session.last_text() == (
        "✉️ Сообщение классному руководителю — Соколова Мария Ивановна.\n"
        "Ребёнок: Иван Петров, 7Б класс.\n"
        "Напишите всё одним сообщением или пришлите фото с подписью (например, справку от"
        " врача). /cancel — отменить.")
    original = up.message(ANNA, NOTE)
    await tg.feed(original)
    assert tg.session.last_text() == "✅ Сообщение отправлено классному руководителю."

    await deliver(tg)
    [card] = sent_to(tg, SOKOLOVA)[-1:]
    assert card.text == ("✉️ Сообщение от родителя · Иван Петров, 7Б\n"
                         "От: Петрова Анна Викторовна (мама)\n\n" + NOTE)
    assert buttons(card) == [["↩️ Ответить"], ["📜 История", "🔕 Не беспокоить"]]
    assert "900" not in card.text and "@" not in card.text  # no phone, no username

    await tg.feed(up.callback(SOKOLOVA, card.reply_markup.inline_keyboard[0][0].callback_data))
    assert tg.session.last_text() == (
        "↩️ Ответ родителю — Петрова Анна Викторовна (мама).\nРебёнок: Иван Петров, 7Б.\n"
        "Напишите всё одним сообщением или пришлите фото с подписью. /cancel — отменить.")
    answer = up.message(SOKOLOVA, "Хорошо, предупрежу учителей-предметников.")
    await tg.feed(answer)
    assert tg.session.last_text() == "✅ Ответ отправлен."

    await deliver(tg)
    [reply] = sent_to(tg, ANNA)[-1:]
    assert reply.text == ("✉️ Классный руководитель Соколова Мария Ивановна · Иван Петров, 7Б"
                          "\n\nХорошо, предупрежу учителей-предметников.")
    # Threaded: a reply to Анна's own message in her chat.
    assert reply.reply_parameters.message_id == original.message.message_id
    assert buttons(reply) == [["↩️ Ответить"], ["📜 История"]]

    # Each message keeps its id on both sides.
    rows = await s.db.fetchall(
        "SELECT author, parent_message_id, teacher_message_id, reply_to FROM thread_messages"
        " ORDER BY id")
    assert [(r[0], r[1]) for r in rows] == [("parent", original.message.message_id),
                                            ("teacher", rows[1][1])]
    assert rows[0][2] is not None and rows[1][1] is not None
    assert rows[1][2] == answer.message.message_id and rows[1][3] is not None

    # Анна answers back with «Ответить»: it reaches the teacher as a reply to her answer.
    await tg.feed(up.callback(ANNA, reply.reply_markup.inline_keyboard[0][0].callback_data))
    assert tg.session.last_text().startswith(
        "↩️ Ответ классному руководителю — Соколова Мария Ивановна.\nРебёнок: Иван Петров.")
    await tg.feed(up.message(ANNA, "Спасибо!"))
    assert tg.session.last_text() == "✅ Сообщение отправлено классному руководителю."
    await deliver(tg)
    [thanks] = sent_to(tg, SOKOLOVA)[-1:]
    assert thanks.text.endswith("\n\nСпасибо!")
    assert thanks.reply_parameters.message_id == answer.message.message_id

    # Telegram's own «Reply» works as the button: the teacher replies to Анна's thanks.
    delivered = await s.db.scalar("SELECT teacher_message_id FROM thread_messages"
                                  " WHERE text = 'Спасибо!'")
    await tg.feed(native_reply(SOKOLOVA, "Пожалуйста!", delivered))
    assert tg.session.last_text() == "✅ Ответ отправлен."
    await deliver(tg)
    [welcome] = sent_to(tg, ANNA)[-1:]
    assert welcome.text.endswith("\n\nПожалуйста!")
    thanks_id = await s.db.scalar("SELECT parent_message_id FROM thread_messages"
                                  " WHERE text = 'Спасибо!'")
    assert welcome.reply_parameters.message_id == thanks_id
    # A reply to any other message is not taken for one.
    await tg.feed(native_reply(SOKOLOVA, "просто текст", 424242))
    assert tg.session.last_text() == (
        "Я не понял это сообщение. Сообщения родителей — в /teacher, ответить можно кнопкой"
        " «↩️ Ответить».")

    # Both sides see the history.
    thread = await s.db.scalar("SELECT id FROM threads")
    await tg.feed(up.callback(SOKOLOVA, press("hist", thread)))
    assert tg.session.last_text() == (
        "📜 Иван Петров, 7Б · классный руководитель Соколова Мария Ивановна\n"
        "Родитель: Петрова Анна Викторовна (мама)\n\n"
        f"23 нояб., 12:00 · Родитель: {NOTE}\n"
        "23 нояб., 12:00 · Учитель: Хорошо, предупрежу учителей-предметников.\n"
        "23 нояб., 12:00 · Родитель: Спасибо!\n"
        "23 нояб., 12:00 · Учитель: Пожалуйста!")
    assert buttons(tg.session.last()) == [["↩️ Ответить"], ["🔕 Не беспокоить"]]
    await tg.feed(up.callback(ANNA, press("hist", thread)))
    assert tg.session.last_text().startswith(
        "📜 Иван Петров, 7Б · классный руководитель Соколова Мария Ивановна\n\n23 нояб.")
    assert "Родитель: Петрова" not in tg.session.last_text()
    await tg.feed(up.message(SOKOLOVA, "/teacher"))
    assert tg.session.last_text() == "📥 Сообщения от родителей 7Б.\nПоследние переписки:"
    assert buttons(tg.session.last()) == [["Иван Петров, 7Б"]]


async def test_a_photo_with_a_caption_is_forwarded_by_file_id(classroom):
    tg, s = classroom, classroom.services
    await tg.feed(up.message(SERGEY, "/teacher"))  # one child: straight to the prompt
    assert tg.session.last_text().startswith("✉️ Сообщение классному руководителю — Соколова")
    await tg.feed(photo(SERGEY, "AgACdoctor", "Справка от врача, 23–27 ноября"))
    assert tg.session.last_text() == "✅ Сообщение отправлено классному руководителю."
    await deliver(tg)
    [card] = sent_to(tg, SOKOLOVA)
    assert isinstance(card, SendPhoto) and card.photo == "AgACdoctor"
    assert card.caption == ("✉️ Сообщение от родителя · Иван Петров, 7Б\n"
                            "От: Петров Сергей Иванович (папа)\n\nСправка от врача, 23–27 ноября")
    # A caption too long for Telegram is refused before anything is stored.
    await tg.feed(up.message(SERGEY, "/teacher"))
    await tg.feed(photo(SERGEY, "AgACdoctor", "я" * 801))
    assert tg.session.last_text() == (
        "В сообщении 801 символ, а можно не больше 800. Сократите его и отправьте снова или"
        " нажмите /cancel.")
    assert await s.db.scalar("SELECT COUNT(*) FROM thread_messages") == 1


@pytest.mark.parametrize(("moment", "told", "due"), [
    # Monday 19:30 in Moscow: tomorrow morning.
    (datetime(2026, 11, 23, 16, 30, tzinfo=UTC), "завтра в 08:00",
     datetime(2026, 11, 24, 5, 0, tzinfo=UTC)),
    # Friday 18:00: Monday morning.
    (datetime(2026, 11, 27, 15, 0, tzinfo=UTC), "в понедельник, 30 ноября, в 08:00",
     datetime(2026, 11, 30, 5, 0, tzinfo=UTC)),
    # Tuesday 06:10: this morning.
    (datetime(2026, 11, 24, 3, 10, tzinfo=UTC), "сегодня в 08:00",
     datetime(2026, 11, 24, 5, 0, tzinfo=UTC)),
])
async def test_outside_working_hours_the_message_waits_and_the_parent_is_told(
        classroom, moment, told, due):
    tg, s = classroom, classroom.services
    s.clock.moment = moment
    await tg.feed(up.message(SERGEY, "/teacher"))
    await tg.feed(up.message(SERGEY, "Можно ли перенести контрольную?"))
    assert tg.session.last_text() == (
        "✅ Сообщение сохранено. Сейчас у учителя нерабочее время — доставим его"
        f" {told}.")
    assert await s.db.scalar("SELECT not_before FROM outbox WHERE telegram_id = ?",
                             (SOKOLOVA,)) == to_db(due)
    await deliver(tg)
    assert sent_to(tg, SOKOLOVA) == []
    s.clock.moment = due
    await deliver(tg)
    [card] = sent_to(tg, SOKOLOVA)
    assert card.text.endswith("Можно ли перенести контрольную?")


async def test_forged_buttons_on_another_familys_or_teachers_thread_are_refused(classroom):
    tg, s = classroom, classroom.services
    await tg.feed(up.message(SERGEY, "/teacher"))
    await tg.feed(up.message(SERGEY, "Вопрос про экскурсию"))
    message = await s.db.scalar("SELECT id FROM thread_messages")
    thread = await s.db.scalar("SELECT id FROM threads")
    for who, data in ((ORLOV, press("re", message)),  # the teacher of another class
                      (ANNA, press("re", message)),  # another parent of the same child
                      (ORLOV, press("hist", thread)),
                      (ORLOV, press("mute", thread)),
                      (SERGEY, press("mute", thread)),  # the parent cannot mute
                      (SERGEY, press("kid", await student(s, "S-1002"))),  # not his child
                      (ORLOV, press("re", 10**9))):
        tg.session.clear()
        await tg.feed(up.callback(who, data))
        [refusal] = tg.session.of(AnswerCallbackQuery)
        assert (refusal.text, refusal.show_alert) == ("Это вам недоступно.", True), data
        assert not tg.session.of(SendMessage)
    # Nothing was set in motion: Орлов's next text is no answer.
    await tg.feed(up.message(ORLOV, "Ответ не туда"))
    assert await s.db.scalar("SELECT COUNT(*) FROM thread_messages") == 1
    assert not await s.db.scalar("SELECT muted FROM threads")


async def test_a_muted_thread_is_stored_without_a_push_until_unmuted(classroom):
    tg, s = classroom, classroom.services
    await tg.feed(up.message(SERGEY, "/teacher"))
    await tg.feed(up.message(SERGEY, "Первое"))
    await deliver(tg)
    [card] = sent_to(tg, SOKOLOVA)
    await tg.feed(up.callback(SOKOLOVA, card.reply_markup.inline_keyboard[1][1].callback_data))
    assert tg.session.of(AnswerCallbackQuery)[-1].text == (
        "🔕 Уведомления выключены: Иван Петров. Новые сообщения останутся в истории без"
        " оповещений.")
    await tg.feed(up.message(SERGEY, "/teacher"))
    await tg.feed(up.message(SERGEY, "Второе"))
    # The parent is not told that the teacher muted the thread.
    assert tg.session.last_text() == "✅ Сообщение отправлено классному руководителю."
    assert await s.db.scalar("SELECT COUNT(*) FROM outbox WHERE telegram_id = ?",
                             (SOKOLOVA,)) == 1
    assert await s.db.scalar("SELECT muted FROM thread_messages WHERE text = 'Второе'") == 1
    thread = await s.db.scalar("SELECT id FROM threads")
    await tg.feed(up.callback(SOKOLOVA, press("hist", thread)))
    history = tg.session.last_text()
    assert "🔕 Уведомления выключены: новые сообщения сохраняются здесь без оповещений." in history
    assert history.endswith("Родитель: Второе")
    assert buttons(tg.session.last())[-1] == ["🔔 Включить уведомления"]
    await tg.feed(up.callback(SOKOLOVA, press("unmute", thread)))
    assert tg.session.of(AnswerCallbackQuery)[-1].text == (
        "🔔 Уведомления снова включены: Иван Петров.")
    await tg.feed(up.message(SERGEY, "/teacher"))
    await tg.feed(up.message(SERGEY, "Третье"))
    await deliver(tg)
    assert sent_to(tg, SOKOLOVA)[-1].text.endswith("Третье")


async def test_who_may_write(classroom):
    tg, s = classroom, classroom.services
    # A student's own account and a stranger cannot.
    await s.linking.link_contact(5002, 5002, 5002, "+79161001001")
    await tg.feed(up.message(5002, "/teacher"))
    assert tg.session.last_text() == "Писать классному руководителю может только родитель."
    await tg.feed(up.message(9999, "/teacher"))
    assert tg.session.last_text() == "Аккаунт ещё не привязан. Отправьте /start, чтобы" \
        " привязать."
    # Nothing personal in a group chat.
    await tg.feed(up.message(ANNA, "/teacher", chat_type="group", chat_id=-100))
    assert tg.session.last_text().startswith("Я работаю только в личном чате")
    # A class whose teacher has not joined the bot yet: Мария in 5А (Орлов unlinks).
    await s.linking.unlink(ORLOV)
    await tg.feed(up.message(ANNA, "/teacher"))
    await tg.feed(up.callback(ANNA, press("kid", await student(s, "S-1002"))))
    assert tg.session.last_text() == (
        "Классный руководитель 5А ещё не подключился к боту. Попробуйте позже.")


async def test_a_teacher_dropped_from_teachers_csv_loses_access_at_once(classroom):
    tg, s = classroom, classroom.services
    await tg.feed(up.message(SERGEY, "/teacher"))
    s.clock.moment = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)  # waits for the morning
    await tg.feed(up.message(SERGEY, "Вечернее сообщение"))
    message = await s.db.scalar("SELECT id FROM thread_messages")
    lines = TEACHERS.read_text(encoding="utf-8").splitlines()
    only_orlov = "\n".join([lines[0], lines[2]]) + "\n"
    summary = await s.teachers.apply(parse_teachers(only_orlov, "teachers.csv"), "teachers.csv")
    assert (summary.teachers_removed, summary.links_ended, summary.pushes_dropped) == (1, 1, 1)
    await tg.feed(up.message(SOKOLOVA, "/teacher"))
    assert tg.session.last_text() == "Аккаунт ещё не привязан. Отправьте /start, чтобы" \
        " привязать."
    await tg.feed(up.callback(SOKOLOVA, press("re", message)))
    assert tg.session.of(AnswerCallbackQuery)[-1].text == "Это вам недоступно."
    s.clock.moment = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
    tg.session.clear()
    await deliver(tg)
    assert sent_to(tg, SOKOLOVA) == []
    assert await s.db.scalar("SELECT last_error FROM outbox WHERE telegram_id = ?",
                             (SOKOLOVA,)) == "no access"
    await tg.feed(up.message(SERGEY, "/teacher"))
    assert tg.session.last_text() == "Школа ещё не указала в боте классного руководителя 7Б."


async def test_a_teacher_who_is_a_parent_too(tg):
    s = tg.services
    text = TEACHERS.read_text(encoding="utf-8").replace("+7 903 200-00-02", "8 (900) 123-45-67")
    await s.teachers.apply(parse_teachers(text, "teachers.csv"), "teachers.csv")
    await s.linking.link_contact(SOKOLOVA, SOKOLOVA, SOKOLOVA, SOKOLOVA_PHONE)
    await tg.feed(up.contact(ANNA, ANNA_PHONE, ANNA))
    assert tg.session.last_text().startswith(
        "Готово! Аккаунт привязан.\nВы классный руководитель 5А: сюда будут приходить"
        " сообщения родителей, /teacher — список переписок.\nДети, за которыми")
    await tg.feed(up.message(ANNA, "/teacher"))
    assert tg.session.last_text() == (
        "📥 Сообщения от родителей 5А.\nСообщений пока нет. Родители пишут командой /teacher,"
        " их сообщения приходят сюда.")
    assert buttons(tg.session.last()) == [["✉️ Написать классному руководителю своего ребёнка"]]
    await tg.feed(up.callback(ANNA, press("kid")))
    assert tg.session.last_text() == "Классному руководителю какого ребёнка написать?"
    await tg.feed(up.callback(ANNA, press("kid", await student(s, "S-1001"))))
    await tg.feed(up.message(ANNA, NOTE))
    assert tg.session.last_text() == "✅ Сообщение отправлено классному руководителю."
    assert await s.db.scalar("SELECT telegram_id FROM outbox WHERE kind = 'teacher_message'"
                             ) == SOKOLOVA
