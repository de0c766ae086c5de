"""Reusable fakes of external services for tests and benchmarks."""

from tests.fakes.botapi import ApiCall, FakeBotAPI, SentMessage

__all__ = ["ApiCall", "FakeBotAPI", "SentMessage"]
