"""Sending the relay's notices to subscribed devices through their push services.

Theory of operation
-------------------
A shoot's actor hands each notice to :meth:`PushSender.offer` at the moment it fans the
notice out to the open sessions (once the notifier's memory of it is durable, so a
restart never pushes a lead twice). ``offer`` never blocks the actor: it puts the notice
in a bounded queue and, when the queue is full (push services far slower than the
shoots), drops it and counts it; the in-page notices are unaffected.

One task (:meth:`PushSender.run`) drains the queue in batches. For each shoot in a batch
it reads the shoot's subscriptions from Redis once, picks the devices each notice is for
(the same rule as the page's toasts, :func:`addressed_to`), and sends with at most
``concurrency`` requests in flight. Each request is encrypted (RFC 8291, ``aes128gcm``,
with a fresh ephemeral key) on a worker thread, carries a VAPID ``Authorization`` (RFC
8292; the signed token is reused per push service for an hour of its 12-hour life) and
is bounded by a timeout. Answers: 2xx delivered; 404 or 410 means the subscription is
gone (the browser unsubscribed, the app was uninstalled) and it is deleted from Redis;
anything else, a timeout or a network error is logged and counted, and the next notice
tries again.

The request goes only to an endpoint the allow-list admits (checked at subscribe time and
again here), never follows a redirect and ignores proxy settings from the environment.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from base64 import urlsafe_b64encode
from collections import deque
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

import http_ece
import httpx
import trio
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import VapidException

from sync.leaderboard import Leaderboard
from sync.models import Shoot
from sync.notifications import Notice

from ..store import RedisStore, StoreUnavailable
from .keys import KeyHolder, VapidKeys
from .services import EndpointRefused, PushServices
from .subscriptions import Subscription, SubscriptionStore

__all__ = ["PushSender", "PushStatistics", "addressed_to", "payload_for"]

log = logging.getLogger(__name__)

#: Notices waiting to be pushed; beyond this they are dropped (and counted).
QUEUE_SIZE: Final = 1024
#: Notices taken from the queue at once (one Redis read per shoot per batch).
BATCH: Final = 64
#: How long a push service may keep a notice for a phone that is off: a lead change an
#: hour old is no longer news.
TTL_S: Final = 3600
#: Life of a signed VAPID token (RFC 8292 allows at most 24 hours).
JWT_LIFE_S: Final = 12 * 3600
#: How long one signed token is reused for a push service before a new one is signed.
JWT_REUSE_S: Final = 3600
#: Push services whose tokens are cached; beyond this the cache starts afresh.
MAX_AUDIENCES: Final = 64


def addressed_to(notice: Notice, archer_id: str | None, archer_round: str | None) -> bool:
    """Whether a device should get ``notice``: the page's rule (``isForMe`` in the web
    client's ``views/notices.ts``), so push and toasts never disagree. An archer gets the
    lead changes of their own round and their own digest line; a viewer, lead changes."""
    if notice.kind == "lead":
        return archer_id is None or notice.round == archer_round
    return archer_id is not None and notice.archer_id == archer_id


def payload_for(shoot: Shoot, notice: Notice, archer_id: str | None) -> bytes:
    """What the service worker shows: the same title, text and tag as the page's own
    notification, so one replaces the other instead of showing twice."""
    screen = "shoot" if archer_id else "view"
    body = {
        "title": shoot.title or f"Shoot {shoot.code}",
        "body": notice.text,
        "tag": f"{shoot.code}:{notice.kind}:{notice.round}",
        "url": f"/{screen}/{shoot.code}",
    }
    return json.dumps(body, ensure_ascii=False).encode()


def _topic(tag: str) -> str:
    """RFC 8030 Topic (32 base64url characters at most): a newer notice with the same
    tag replaces one the push service still holds for a phone that is off."""
    return urlsafe_b64encode(hashlib.sha256(tag.encode()).digest()[:24]).decode()


@dataclass(slots=True)
class PushStatistics:
    """What the sender did, for ``/metrics``."""

    sent: int = 0
    failed: int = 0
    subscriptions_dropped: int = 0
    notices_dropped: int = 0

    def render(self) -> str:
        counters = {
            "fastshoot_push_sent_total": ("Notices a push service accepted", self.sent),
            "fastshoot_push_failed_total": (
                "Notices not pushed: refused, timed out or unreachable",
                self.failed,
            ),
            "fastshoot_push_subscriptions_dropped_total": (
                "Subscriptions deleted because their push service said they are gone",
                self.subscriptions_dropped,
            ),
            "fastshoot_push_notices_dropped_total": (
                "Notices dropped because the push queue was full",
                self.notices_dropped,
            ),
        }
        lines: list[str] = []
        for name, (help_text, value) in counters.items():
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter", f"{name} {value}"]
        return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class _Item:
    shoot: Shoot
    notice: Notice
    board: Leaderboard


@dataclass(frozen=True, slots=True)
class _Job:
    shoot: Shoot
    subscription: Subscription
    payload: bytes
    topic: str


class PushSender:
    """Delivers notices to the devices subscribed to them.

    Args:
        keys: The VAPID keys (loaded from Redis the first time they are needed).
        subject: The VAPID ``sub`` claim: a ``mailto:`` or ``https:`` contact for the push
            services' operators.
        timeout_s: The longest one request may take, connection included.
        concurrency: Requests in flight at once.
    """

    def __init__(
        self,
        store: RedisStore,
        subscriptions: SubscriptionStore,
        keys: KeyHolder,
        *,
        services: PushServices,
        subject: str,
        timeout_s: float = 10.0,
        concurrency: int = 8,
    ) -> None:
        self._store = store
        self._subscriptions = subscriptions
        self._keys = keys
        self._services = services
        self._subject = subject
        self._timeout_s = timeout_s
        self._concurrency = concurrency
        self._send, self._receive = trio.open_memory_channel[_Item](QUEUE_SIZE)
        self._tokens: dict[str, tuple[str, float]] = {}
        self.statistics = PushStatistics()

    def offer(self, shoot: Shoot, notice: Notice, board: Leaderboard) -> None:
        """Queue a notice for the shoot's subscribers; never blocks (see the module notes).

        ``board`` is the shoot's leaderboard now: it says which round each archer shoots.
        """
        try:
            self._send.send_nowait(_Item(shoot, notice, board))
        except trio.WouldBlock:
            self.statistics.notices_dropped += 1
            log.warning("push queue full: a notice for shoot %s is not pushed", shoot.code)

    async def run(self) -> None:
        """Send what is offered, until cancelled."""
        async with httpx.AsyncClient(
            follow_redirects=False, trust_env=False, timeout=self._timeout_s
        ) as client:
            while True:
                batch = [await self._receive.receive()]
                while len(batch) < BATCH:
                    try:
                        batch.append(self._receive.receive_nowait())
                    except trio.WouldBlock:
                        break
                try:
                    await self._deliver(client, batch)
                except Exception:
                    # The supervision boundary, as for shoots: a bug in pushing never
                    # takes the relay down; this batch is lost and logged, the next goes on.
                    log.exception("pushing %d notices failed", len(batch))
                    self.statistics.failed += len(batch)

    async def _deliver(self, client: httpx.AsyncClient, batch: list[_Item]) -> None:
        jobs: deque[_Job] = deque()
        by_shoot: dict[str, list[_Item]] = {}
        for item in batch:
            by_shoot.setdefault(item.shoot.shoot_id, []).append(item)
        for items in by_shoot.values():
            shoot = items[0].shoot
            try:
                subscriptions = await self._store.call(self._subscriptions.all, shoot)
            except StoreUnavailable as exc:
                self.statistics.failed += len(items)
                log.warning("shoot %s: notices not pushed, Redis is away (%s)", shoot.code, exc)
                continue
            for item in items:
                for subscription in subscriptions:
                    archer = subscription.archer_id
                    standing = item.board.standing(archer) if archer else None
                    archer_round = standing.round if standing else None
                    if addressed_to(item.notice, archer, archer_round):
                        payload = payload_for(shoot, item.notice, archer)
                        tag = f"{shoot.code}:{item.notice.kind}:{item.notice.round}"
                        jobs.append(_Job(shoot, subscription, payload, _topic(tag)))
        if not jobs:
            return
        try:
            keys = await self._keys.get()
        except StoreUnavailable as exc:
            self.statistics.failed += len(jobs)
            log.warning("notices not pushed: no VAPID key (%s)", exc)
            return
        async with trio.open_nursery() as nursery:
            for _ in range(min(self._concurrency, len(jobs))):
                nursery.start_soon(self._work, client, keys, jobs)

    async def _work(self, client: httpx.AsyncClient, keys: VapidKeys, jobs: deque[_Job]) -> None:
        while jobs:
            job = jobs.popleft()
            with trio.move_on_after(self._timeout_s) as scope:
                try:
                    status = await self._post(client, keys, job)
                except (VapidException, http_ece.ECEException, ValueError) as exc:
                    # Signing or encrypting for this one device failed: it alone misses
                    # the notice; the sender goes on for everyone else.
                    log.error("push to %s not sent: %s", job.shoot.code, exc)
                    status = None
            if scope.cancelled_caught:
                status = None
                log.info("push to %s timed out", urlsplit(job.subscription.endpoint).hostname)
            if status is not None and 200 <= status < 300:
                self.statistics.sent += 1
                continue
            self.statistics.failed += 1
            if status in (404, 410):
                await self._forget(job)

    async def _post(self, client: httpx.AsyncClient, keys: VapidKeys, job: _Job) -> int | None:
        """Send one message; the push service's status, or ``None`` when unreachable."""
        endpoint = job.subscription.endpoint
        try:
            self._services.check(endpoint)  # the allow-list may have changed since
        except EndpointRefused:
            return 410  # no longer allowed: as good as gone
        body = await trio.to_thread.run_sync(_encrypt, job.payload, job.subscription)
        headers = {
            "TTL": str(TTL_S),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "Topic": job.topic,
            "Urgency": "normal",
            "Authorization": self._authorization(keys, endpoint),
        }
        try:
            async with client.stream("POST", endpoint, content=body, headers=headers) as answer:
                status = answer.status_code  # the body is never read: nothing in it is needed
        except httpx.HTTPError as exc:
            log.info("push to %s failed: %s", urlsplit(endpoint).hostname, exc)
            return None
        if not 200 <= status < 300 and status not in (404, 410):
            log.info("push to %s answered %d", urlsplit(endpoint).hostname, status)
        return status

    def _authorization(self, keys: VapidKeys, endpoint: str) -> str:
        parts = urlsplit(endpoint)
        audience = f"{parts.scheme}://{parts.netloc}"
        now = time.time()
        cached = self._tokens.get(audience)
        if cached is not None and now - cached[1] < JWT_REUSE_S:
            return cached[0]
        claims = {"aud": audience, "exp": int(now) + JWT_LIFE_S, "sub": self._subject}
        header = str(keys.signer().sign(claims)["Authorization"])
        if len(self._tokens) >= MAX_AUDIENCES:
            self._tokens.clear()
        self._tokens[audience] = (header, now)
        return header

    async def _forget(self, job: _Job) -> None:
        try:
            await self._store.call(self._subscriptions.remove, job.shoot, job.subscription.endpoint)
        except StoreUnavailable:
            return  # the next notice finds it gone again and tries once more
        self.statistics.subscriptions_dropped += 1


def _encrypt(payload: bytes, subscription: Subscription) -> bytes:
    """RFC 8291 message encryption, with a new ephemeral key for every message."""
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    sealed: bytes = http_ece.encrypt(
        payload,
        private_key=ephemeral,
        dh=subscription.p256dh,
        auth_secret=subscription.auth,
        version="aes128gcm",
    )
    return sealed
