"""Chat admission, moderation state and delivery sampling for one room.

Admission (who may post, how fast) runs where the message arrives; delivery sampling runs once per
room tick. Every viewer of a room sees the same chat stream, so the per-viewer delivery cap
(about 20 messages/s) is applied once per room and the sampled batch is encoded once for all
viewers. Host and moderator messages bypass sampling and the room cap: they are never dropped.
"""

from __future__ import annotations

import random
import re
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any

from .protocol import Principal
from .ratelimit import KeyedBuckets, TokenBucket

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class ChatLimits:
    """Defaults follow research §4.2: 1 msg / 2 s per viewer with burst 3, 200/s per room."""

    viewer_rate: float = 0.5
    viewer_burst: int = 3
    staff_rate: float = 5.0
    staff_burst: int = 10
    room_rate: float = 200.0
    room_burst: int = 200
    delivery_rate: float = 20.0
    delivery_burst: int = 20
    max_text_chars: int = 300
    recent_size: int = 50
    idempotency_window: int = 32


@dataclass(frozen=True, slots=True)
class Rejection:
    code: str  # auth_required | muted | empty | too_long | banned_word | rate_limited
    message: str
    retry_after_s: float = 0.0
    scope: str = ""  # for rate_limited: "user" or "room"


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A retried ``chat.send`` with an id we already accepted: ack again, do not re-post."""

    message_id: str


def words_of(text: str) -> set[str]:
    return {word.casefold() for word in _WORD.findall(text)}


class ChatRoom:
    """Moderation state, rate limits, recent history and the pending delivery batch of a room."""

    def __init__(self, limits: ChatLimits, banned_words: set[str], now: float) -> None:
        self.limits = limits
        self.banned_words = {word.casefold() for word in banned_words}
        self.muted_until_ms: dict[str, float] = {}  # wall clock: comparable across processes
        self.recent: deque[dict[str, Any]] = deque(maxlen=limits.recent_size)
        self.sampled_out = 0
        self._pending_staff: list[dict[str, Any]] = []
        self._pending_regular: list[dict[str, Any]] = []
        self._viewer_buckets = KeyedBuckets(
            lambda t: TokenBucket(limits.viewer_rate, limits.viewer_burst, t)
        )
        self._staff_buckets = KeyedBuckets(
            lambda t: TokenBucket(limits.staff_rate, limits.staff_burst, t)
        )
        self._room_bucket = TokenBucket(limits.room_rate, limits.room_burst, now)
        self._delivery_bucket = TokenBucket(limits.delivery_rate, limits.delivery_burst, now)
        self._accepted_ids: dict[str, OrderedDict[str, str]] = {}

    # --- admission ----------------------------------------------------------------------------

    def is_muted(self, user_id: str) -> bool:
        until = self.muted_until_ms.get(user_id)
        if until is None:
            return False
        if until <= time.time() * 1000:
            del self.muted_until_ms[user_id]
            return False
        return True

    def admit(
        self, sender: Principal | None, text: str, request_id: str | None, now: float
    ) -> Rejection | Duplicate | str:
        """Decide on one ``chat.send``; returns the cleaned text when the message is accepted.

        Order matters: duplicates are recognised before rate limiting so a client retry never
        costs a token, and the room cap is checked before the user's bucket is charged.
        """
        if sender is None:
            return Rejection("auth_required", "sign in to chat")
        if request_id is not None:
            seen = self._accepted_ids.get(sender.user_id)
            if seen is not None and request_id in seen:
                return Duplicate(seen[request_id])
        if self.is_muted(sender.user_id):
            return Rejection("muted", "you are muted in this room")
        text = text.strip()
        if not text:
            return Rejection("empty", "message is empty")
        if len(text) > self.limits.max_text_chars:
            return Rejection("too_long", f"at most {self.limits.max_text_chars} characters")
        if self.banned_words and not self.banned_words.isdisjoint(words_of(text)):
            return Rejection("banned_word", "message contains a word not allowed in this room")
        if sender.is_staff:
            wait = self._staff_buckets.try_take(sender.user_id, now)
            if wait:
                return Rejection("rate_limited", "slow down", wait, "user")
            return text
        if self._room_bucket.available(now) < 1:
            wait = (1 - self._room_bucket.available(now)) / self.limits.room_rate
            return Rejection("rate_limited", "room chat is busy", wait, "room")
        wait = self._viewer_buckets.try_take(sender.user_id, now)
        if wait:
            return Rejection("rate_limited", "slow down", wait, "user")
        self._room_bucket.try_take(now)
        return text

    def remember_accepted(self, user_id: str, request_id: str | None, message_id: str) -> None:
        if request_id is None:
            return
        seen = self._accepted_ids.setdefault(user_id, OrderedDict())
        seen[request_id] = message_id
        while len(seen) > self.limits.idempotency_window:
            seen.popitem(last=False)

    # --- moderation ---------------------------------------------------------------------------

    def mute(self, user_id: str, until_ms: float) -> None:
        self.muted_until_ms[user_id] = until_ms

    def unmute(self, user_id: str) -> None:
        self.muted_until_ms.pop(user_id, None)

    def update_banned_words(self, add: list[str], remove: list[str]) -> None:
        self.banned_words.update(word.casefold() for word in add if word.strip())
        self.banned_words.difference_update(word.casefold() for word in remove)

    def remove(self, message_id: str) -> None:
        """Forget a deleted message everywhere a later viewer could still be shown it."""
        for store in (self.recent, self._pending_staff, self._pending_regular):
            for message in list(store):
                if message["id"] == message_id:
                    store.remove(message)

    # --- delivery -----------------------------------------------------------------------------

    def add_posted(self, message: dict[str, Any]) -> None:
        staff = message["role"] != "viewer"
        (self._pending_staff if staff else self._pending_regular).append(message)

    def take_delivery(self, now: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """This tick's (staff, sampled regular) messages; regular ones beyond the cap are dropped.

        Sampling is uniform over the tick's messages (not "first come") so a flood from a few
        fast clients does not crowd out everyone else, and the survivors keep their order.
        """
        staff, regular = self._pending_staff, self._pending_regular
        self._pending_staff, self._pending_regular = [], []
        if regular:
            keep = self._delivery_bucket.take_up_to(now, len(regular))
            if keep < len(regular):
                self.sampled_out += len(regular) - keep
                chosen = sorted(random.sample(range(len(regular)), keep))
                regular = [regular[i] for i in chosen]
        self.recent.extend(staff)
        self.recent.extend(regular)
        return staff, regular

    def prune(self, now: float) -> None:
        self._viewer_buckets.prune(now)
        self._staff_buckets.prune(now)
        for user_id in [u for u, until in self.muted_until_ms.items() if not self.is_muted(u)]:
            self.muted_until_ms.pop(user_id, None)
