"""The Channel conformance suite: subclass :class:`ChannelContract` and supply ``make_channel``.

::

    from lifecycle.testing.channel import ChannelContract

    class TestMySmsChannel(ChannelContract):
        def make_channel(self):
            return MySmsChannel(gateway=sandbox_url)

        def delivered(self, channel):          # optional: what the provider received
            return sandbox.keys()

        def make_failing_channel(self, kind):  # optional: a channel failing as told
            return MySmsChannel(gateway=failing_sandbox(kind))

pytest then checks the protocol, delivery, repeats under one key, failure kinds and a full
dispatch through the channel (sent once, ``Contacted`` recorded, a second run sends nothing).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Literal

import pytest

from lifecycle.adapters.memory import MemoryStore
from lifecycle.customer import ContactPoint, Profile
from lifecycle.dispatch import DispatchOutcome, dispatch
from lifecycle.errors import PermanentChannelError, TransientChannelError
from lifecycle.events import Contacted, CustomerRegistered
from lifecycle.policy import Policy
from lifecycle.ports import Channel, Message, OutboxEntry, OutboxState, SendResult
from lifecycle.vocabulary import Purpose

__all__ = ["ChannelContract"]

T0 = datetime(2026, 3, 1, 10, tzinfo=UTC)


class ChannelContract:
    """Contract tests every :class:`~lifecycle.ports.Channel` must pass.

    Override :meth:`make_channel`; override :meth:`delivered` when the test can see what
    arrived, :meth:`make_failing_channel` when it can make the channel fail, and
    :meth:`address` when the channel needs a particular kind of address.
    """

    def make_channel(self) -> Channel:
        """A fresh channel that delivers somewhere the test can look (or nowhere)."""
        raise NotImplementedError("override make_channel() to return a fresh channel")

    def delivered(self, channel: Channel) -> list[str] | None:
        """The idempotency keys that arrived so far, in order, or ``None`` when unknown."""
        return None

    def make_failing_channel(self, kind: Literal["transient", "permanent"]) -> Channel | None:
        """A channel whose every send fails with ``kind``, or ``None`` to skip those tests."""
        return None

    def address(self) -> str:
        """An address the channel accepts."""
        return "customer@example.com"

    def message(self, key: str = "c1:care:o1", customer_id: str = "c1") -> Message:
        return Message(
            key=key,
            customer_id=customer_id,
            channel="contract",
            text="Your order has shipped. 您的订单已发货。",
            address=self.address(),
            subject="Shipped",
            purpose=Purpose.TRANSACTIONAL.value,
            rule="shipping_notice",
            template="shipping_notice",
        )

    @pytest.fixture
    def channel(self) -> Iterator[Channel]:
        c = self.make_channel()
        try:
            yield c
        finally:
            c.close()

    # -- the protocol -------------------------------------------------------------------------

    def test_the_channel_keeps_the_protocol(self, channel: Channel) -> None:
        assert isinstance(channel, Channel)
        assert isinstance(channel.name, str)
        assert channel.name
        assert isinstance(channel.deduplicates, bool)

    def test_an_accepted_message_returns_nothing_or_a_send_result(self, channel: Channel) -> None:
        result = channel.send(self.message(), idempotency_key="c1:care:o1")
        assert result is None or isinstance(result, SendResult)
        keys = self.delivered(channel)
        if keys is not None:
            assert keys == ["c1:care:o1"]

    def test_a_repeated_key_arrives_once_when_the_channel_deduplicates(
        self, channel: Channel
    ) -> None:
        m = self.message()
        channel.send(m, idempotency_key=m.key)
        again = channel.send(m, idempotency_key=m.key)
        keys = self.delivered(channel)
        if channel.deduplicates:
            assert again is None or isinstance(again, SendResult)
            if keys is not None:
                assert keys.count(m.key) == 1
        elif keys is not None:
            assert keys.count(m.key) == 2

    def test_distinct_keys_all_arrive(self, channel: Channel) -> None:
        for i in range(5):
            m = self.message(key=f"c{i}:care:o{i}", customer_id=f"c{i}")
            channel.send(m, idempotency_key=m.key)
        keys = self.delivered(channel)
        if keys is not None:
            assert sorted(keys) == [f"c{i}:care:o{i}" for i in range(5)]

    def test_personal_data_stays_out_of_the_message_repr(self) -> None:
        text = repr(self.message())
        assert self.address() not in text
        assert "shipped" not in text

    @pytest.mark.parametrize("kind", ["transient", "permanent"])
    def test_failures_raise_their_kind(self, kind: Literal["transient", "permanent"]) -> None:
        c = self.make_failing_channel(kind)
        if c is None:
            pytest.skip("no failing channel supplied")
        expected = TransientChannelError if kind == "transient" else PermanentChannelError
        try:
            with pytest.raises(expected):
                c.send(self.message(), idempotency_key="c1:care:o1")
        finally:
            c.close()

    # -- through the dispatcher ---------------------------------------------------------------

    def _shop(self, channel: Channel) -> MemoryStore:
        store = MemoryStore()
        contact = ContactPoint(channel="email", address=self.address())
        store.append(
            [CustomerRegistered(customer_id="c1", at=T0, profile=Profile(contacts=(contact,)))],
            outbox=[
                OutboxEntry(
                    key="c1:order_update:o1",
                    customer_id="c1",
                    channel="email",
                    due_at=T0,
                    rule="order_update",
                    purpose="transactional",
                    template="order_update",
                    text_en="Your order has shipped.",
                    subject_en="Shipped",
                )
            ],
        )
        return store

    def test_dispatching_twice_sends_once_and_records_the_contact(self, channel: Channel) -> None:
        store = self._shop(channel)
        now = T0 + timedelta(minutes=1)
        first = dispatch(store, {"email": channel}, Policy(), now, worker="w1")
        assert first.sent == ("c1:order_update:o1",)
        second = dispatch(store, {"email": channel}, Policy(), now, worker="w2")
        assert len(second) == 0
        entry = store.outbox_entry("c1:order_update:o1")
        assert entry is not None
        assert entry.state is OutboxState.SENT
        contacts = [e for e in store.history("c1") if isinstance(e, Contacted)]
        assert [(c.key, c.channel, c.at) for c in contacts] == [
            ("c1:order_update:o1", "email", now)
        ]
        keys = self.delivered(channel)
        if keys is not None:
            assert keys == ["c1:order_update:o1"]

    @pytest.mark.parametrize("kind", ["transient", "permanent"])
    def test_a_failure_is_reported_with_its_kind(
        self, kind: Literal["transient", "permanent"]
    ) -> None:
        c = self.make_failing_channel(kind)
        if c is None:
            pytest.skip("no failing channel supplied")
        try:
            store = self._shop(c)
            report = dispatch(store, {"email": c}, Policy(), T0 + timedelta(minutes=1), worker="w1")
            (result,) = report.results
            if kind == "transient":
                assert result.outcome is DispatchOutcome.RETRY
                assert result.next_attempt_at is not None
                assert result.next_attempt_at > T0 + timedelta(minutes=1)
            else:
                assert result.outcome is DispatchOutcome.FAILED
            assert not [e for e in store.history("c1") if isinstance(e, Contacted)]
        finally:
            c.close()
