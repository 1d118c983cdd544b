"""Owner tasks and escalations name their recipient (the owner, the owner's lead), and the
webhook robots @-mention that person from the channel's ``people`` table."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

import lifecycle as lc
from lifecycle.adapters.channel_config import channels_from_dict, channels_from_toml
from lifecycle.adapters.webhook import WebhookChannel
from lifecycle.errors import InvalidArgument
from lifecycle.ports import Message
from lifecycle.vocabulary import ESCALATION_TEMPLATE
from test_cadence import at
from test_owner_tasks import HISTORY, OWNED, _policy
from webhook_server import DINGTALK_SECRET, receiver

PEOPLE = {"ann": {"userid": "AnnWang", "mobile": "13800000001"}, "lee": {"userid": "LeeLi"}}
NOW = at(2025, 12, 4, 10)


def _shop(channel: Any) -> lc.Lifecycle:
    pol = _policy(escalate_after_days=3, leads={"ann": "lee"})
    shop = lc.Lifecycle.in_memory(policy=pol, clock=lc.FixedClock(NOW), channels={"task": channel})
    shop.record(HISTORY)
    shop.record(OWNED)
    return shop


def _message(recipient: str | None, **more: Any) -> Message:
    return Message(
        key="c1:r:1",
        customer_id="c1",
        channel="task",
        text="Call back",
        recipient=recipient,
        **more,
    )


def test_a_task_is_for_the_owner_and_an_escalation_for_the_lead() -> None:
    task = lc.MemoryChannel()
    _shop(task).dispatch(NOW)
    by_template = {m.template: m.recipient for m in task.sent}
    assert by_template[ESCALATION_TEMPLATE] == "lee"
    assert by_template["owner_follow_up"] == "ann"


def test_a_task_without_an_owner_and_a_message_to_the_customer_name_no_recipient() -> None:
    task = lc.MemoryChannel()
    shop = _shop(task)
    shop.record(lc.ReturnedToPool(customer_id="c1", at=NOW.replace(hour=9), owner_id="ann"))
    shop.dispatch(NOW)
    assert all(m.recipient is None for m in task.sent)
    assert _message(None).recipient is None  # the default for every other message


def test_wecom_text_mentions_the_recipients_user_id_and_mobile() -> None:
    with receiver("wecom") as rx:
        channel = WebhookChannel(rx.url(), preset="wecom", msgtype="text", people=PEOPLE)
        _shop(channel).dispatch(NOW)
        bodies = [r.json()["text"] for r in rx.received]
        assert len(rx.accepted) == len(rx.received) == 2  # the receiver checked each format
    mentioned = sorted((b["mentioned_list"], b.get("mentioned_mobile_list")) for b in bodies)
    assert mentioned == [(["AnnWang"], ["13800000001"]), (["LeeLi"], None)]


def test_wecom_markdown_tags_the_user_id() -> None:
    channel = WebhookChannel(
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k", preset="wecom", people=PEOPLE
    )
    content = channel.body(_message("lee"), "k1")["markdown"]["content"]
    assert content.endswith("<@LeeLi>")
    assert "<@" not in channel.body(_message("nobody"), "k1")["markdown"]["content"]


def test_dingtalk_puts_the_recipient_in_at_and_in_the_text() -> None:
    with receiver("dingtalk") as rx:
        channel = WebhookChannel(
            rx.url(),
            preset="dingtalk",
            secret=DINGTALK_SECRET,
            people=PEOPLE,
            mention=["boss"],
        )
        _shop(channel).dispatch(NOW)
        bodies = [r.json() for r in rx.received]
        assert len(rx.accepted) == len(rx.received) == 2
    ats = sorted((b["at"]["atUserIds"], b["at"].get("atMobiles")) for b in bodies)
    assert ats == [(["boss", "AnnWang"], ["13800000001"]), (["boss", "LeeLi"], None)]
    ann = next(b for b in bodies if "AnnWang" in b["at"]["atUserIds"])
    assert ann["markdown"]["text"].endswith(" @boss @AnnWang @13800000001")


def test_a_recipient_already_in_mention_is_mentioned_once() -> None:
    channel = WebhookChannel(
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
        preset="wecom",
        msgtype="text",
        mention=["LeeLi"],
        people=PEOPLE,
    )
    assert channel.body(_message("lee"), "k1")["text"]["mentioned_list"] == ["LeeLi"]


@pytest.mark.parametrize(
    ("people", "argument"),
    [
        (["ann"], "people"),
        ({"": {"userid": "x"}}, "people"),
        ({"ann": "AnnWang"}, "people.ann"),
        ({"ann": {}}, "people.ann"),
        ({"ann": {"email": "a@example.com"}}, "people.ann.email"),
        ({"ann": {"userid": ""}}, "people.ann.userid"),
        ({"ann": {"userid": 7}}, "people.ann.userid"),
        ({"ann": {"mobile": "call me"}}, "people.ann.mobile"),
        ({"ann": {"userid": "a\nb"}}, "people.ann.userid"),
    ],
)
def test_a_bad_people_table_names_its_key(people: Any, argument: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        WebhookChannel(
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k", preset="wecom", people=people
        )
    assert info.value.argument == argument
    assert "call me" not in str(info.value)


def test_the_json_preset_mentions_nobody() -> None:
    with pytest.raises(InvalidArgument) as info:
        WebhookChannel("https://x.example/h", people=PEOPLE)
    assert info.value.argument == "people"
    body = WebhookChannel("https://x.example/h").body(_message("ann"), "k1")
    assert body["recipient"] == "ann"  # the host's receiver reads it from the record


def test_people_come_from_the_channels_file() -> None:
    text = """
[channels.task]
type = "webhook"
preset = "dingtalk"
url = "https://oapi.dingtalk.com/robot/send?access_token=t"

[channels.task.people]
ann = {userid = "AnnWang", mobile = "+8613800000001"}
lee = {mobile = "13800000002"}
"""
    channel = channels_from_toml(text)["task"]
    assert isinstance(channel, WebhookChannel)
    assert channel.people == {
        "ann": {"mobile": "+8613800000001", "userid": "AnnWang"},
        "lee": {"mobile": "13800000002"},
    }
    bad = {"type": "webhook", "url": "https://x.example/h", "preset": "wecom"}
    for people, argument in (
        ({"ann": {"mobile": "13800000001x"}}, "channels.task.people.ann.mobile"),
        ({"ann": {"userid": "a", "team": "b"}}, "channels.task.people.ann.team"),
        ("ann", "channels.task.people"),
    ):
        with pytest.raises(InvalidArgument) as info:
            channels_from_dict({"channels": {"task": {**bad, "people": people}}})
        assert info.value.argument == argument
        assert "13800000001" not in str(info.value)


def test_the_recipient_shows_in_the_messages_repr_and_the_text_does_not() -> None:
    # An id, not personal data: it shows, the text does not.
    m = attrs.evolve(_message("ann"), text="secret words")
    assert "ann" in repr(m)
    assert "secret words" not in repr(m)
