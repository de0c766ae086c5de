from aiogram.fsm.state import State, StatesGroup


class LinkStates(StatesGroup):
    code = State()
