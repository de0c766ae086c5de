from aiogram.fsm.state import State, StatesGroup


class LinkStates(StatesGroup):
    code = State()


class AbsenceStates(StatesGroup):
    child = State()
    mode = State()
    start = State()
    end = State()
    lessons = State()
    reason = State()
    comment = State()
    confirm = State()


class TrustStates(StatesGroup):
    kids = State()
    phone = State()
    surname = State()
    scopes = State()
    confirm = State()


class TeacherStates(StatesGroup):
    text = State()  # a message to the class teacher, or an answer
