"""Bad input to the pool, owner report, experiment and what-if entry points: a clear
LifecycleError naming the argument, nothing written; on the command line one line, exit 2."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest

import lifecycle as lc
from lifecycle import owners as owners_module
from lifecycle import report as report_module
from lifecycle.adapters.channel_config import channels_from_toml
from lifecycle.adapters.webhook import WebhookChannel
from lifecycle.analytics.uplift import uplift
from lifecycle.cli import main
from lifecycle.errors import DataError, InvalidArgument, InvalidEvent, LifecycleError, UsageError
from lifecycle.ports import OutboxEntry

T = datetime(2026, 3, 1, 10, tzinfo=UTC)


@pytest.fixture
def shop() -> lc.Lifecycle:
    s = lc.Lifecycle.in_memory(clock=lc.FixedClock(T))
    s.record(
        [
            lc.CustomerRegistered(customer_id="c1", at=T - timedelta(days=3)),
            lc.CustomerRegistered(customer_id="c2", at=T - timedelta(days=3)),
        ]
    )
    s.assign_owners(["ann"], now=T)
    return s


def _events(shop: lc.Lifecycle) -> int:
    return sum(len(h) for h in shop.store.histories(list(shop.store.customer_ids())).values())


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda s: s.protect_customers("c1", "ann"), "customer_ids"),
        (lambda s: s.protect_customers(None, "ann"), "customer_ids"),
        (lambda s: s.protect_customers([1, 2], "ann"), "customer_ids"),
        (lambda s: s.protect_customers(["c1"], ""), "owner"),
        (lambda s: s.protect_customers(["c1"], None), "owner"),
        (lambda s: s.protect_customers(["c1"], 5), "owner"),
        (lambda s: s.transfer_owner("c2", "bo"), "customer_ids"),
        (lambda s: s.transfer_owner(["c2"], " "), "to"),
        (lambda s: s.transfer_owner(["c2"], "bo", kind="steal"), "kind"),
        (lambda s: s.assign_owners("ann"), "owners"),
        (lambda s: s.assign_owners(["ann", ""]), "owners"),
        (lambda s: s.assign_owners(["ann"], customer_ids="c1"), "customer_ids"),
        (lambda s: s.compare(None, None), "policy_b"),
        (lambda s: s.compare("policy.toml", s.policy), "policy_a"),
    ],
)
def test_bad_arguments_are_refused_by_name_and_nothing_is_written(
    shop: lc.Lifecycle, call: Any, argument: str
) -> None:
    before = _events(shop)
    with pytest.raises(InvalidArgument) as info:
        call(shop)
    assert info.value.argument == argument
    assert _events(shop) == before


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.protect_customers(["c1"], "ann", now=datetime(2026, 3, 1)),  # noqa: DTZ001 (naive on purpose)
        lambda s: s.owner_report(datetime(2026, 1, 1)),  # noqa: DTZ001
        lambda s: s.owner_report(T, T - timedelta(days=1)),
        lambda s: s.owner_report(T - timedelta(days=9), currency="xx"),
        lambda s: s.experiment("nope"),
        lambda s: s.experiment("welcome_repeat", since=T, until=T - timedelta(days=3)),
        lambda s: s.compare(None, s.policy, step=1),
        lambda s: s.compare(None, s.policy, step=timedelta(0)),
        lambda s: s.compare(None, s.policy, since=T, until=T - timedelta(days=1)),
    ],
)
def test_bad_windows_steps_and_rules_are_lifecycle_errors(shop: lc.Lifecycle, call: Any) -> None:
    before = _events(shop)
    with pytest.raises(LifecycleError):
        call(shop)
    assert _events(shop) == before


def test_a_step_that_is_not_a_timedelta_is_a_usage_error(shop: lc.Lifecycle) -> None:
    rules = tuple(
        attrs.evolve(r, holdout=0.5) if r.id == "welcome_repeat" else r
        for r in shop.policy.cadence.rules
    )
    policy = attrs.evolve(shop.policy, cadence=attrs.evolve(shop.policy.cadence, rules=rules))
    with pytest.raises(UsageError, match="timedelta"):
        lc.Lifecycle.in_memory(policy=policy, clock=lc.FixedClock(T)).experiment(
            "welcome_repeat",
            step=1,  # type: ignore[arg-type]
        )


def test_uplift_refuses_bad_arrays_and_alpha_as_lifecycle_errors() -> None:
    with pytest.raises(DataError):
        uplift([], [], [1], [1])
    with pytest.raises(DataError):
        uplift(["x"], [1], [1], [1])
    with pytest.raises(DataError):
        uplift([1], [float("nan")], [1], [1])
    with pytest.raises(InvalidArgument) as info:
        uplift(np.ones(3), np.ones(3), np.ones(3), np.ones(3), alpha=1.5)
    assert info.value.argument == "alpha"


def test_a_customer_the_owner_report_skips_does_not_stop_it_at_the_tasks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    histories = {
        cid: [
            lc.CustomerRegistered(customer_id=cid, at=T - timedelta(days=5)),
            lc.OwnerAssigned(customer_id=cid, at=T - timedelta(days=4), owner_id="ann"),
        ]
        for cid in ("good", "bad")
    }
    task = OutboxEntry(
        key="bad:r:1", customer_id="bad", channel="task", due_at=T - timedelta(days=1)
    )
    real_fold = report_module.fold
    real_ownership = owners_module.ownership

    def fold(history: Any, policy: Any, now: datetime) -> Any:
        if history and history[0].customer_id == "bad":
            raise InvalidEvent("unreadable", event_id="x")
        return real_fold(history, policy, now)

    def ownership(cid: str, history: Any, policy: Any, now: datetime) -> Any:
        if cid == "bad":
            raise InvalidEvent("unreadable", event_id="x")
        return real_ownership(cid, history, policy, now)

    monkeypatch.setattr(report_module, "fold", fold)
    monkeypatch.setattr(report_module, "ownership", ownership)
    result = report_module.owner_report(histories, [task], lc.Policy(), T - timedelta(days=7), T)
    assert [s.customer_id for s in result.skipped] == ["bad"]
    assert [(o.owner_id, o.held, o.tasks_due) for o in result.owners] == [("ann", 1, 0)]


# -- the command line ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("shop") / "d.db")
    assert main(["demo", "--customers", "60", "--db", path], out=io.StringIO()) == 0
    return path


@pytest.mark.parametrize(
    "argv",
    [
        ["report", "--by", "owner", "--since", "2100-01-01T00:00Z"],
        ["report", "--since", "2026-01-01T00:00Z"],
        ["experiment", "welcome_repeat", "--alpha", "2"],
        ["experiment", "welcome_repeat", "--alpha", "nan"],
        ["experiment", "nope"],
        ["whatif"],
        ["whatif", "--policy", "x.toml", "--step-days", "0"],
    ],
)
def test_bad_command_lines_are_one_line_and_exit_2(
    db: str, argv: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main([*argv, "--db", db], out=io.StringIO()) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(err)
    assert err[-1].startswith("lifecycle")
    assert "error" in err[-1]


# -- the webhook channel and the channels file --------------------------------------------------

ROBOT = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"preset": "wecom", "mention": None}, "mention"),
        ({"preset": "wecom", "mention": ["a\nb"]}, "mention"),
        ({"preset": "wecom", "mention": [" "]}, "mention"),
        ({"timeout": float("inf")}, "timeout"),
        ({"timeout": 1e9}, "timeout"),
        ({"deduplicates": "yes"}, "deduplicates"),
    ],
)
def test_bad_webhook_settings_name_their_argument(kwargs: dict[str, Any], argument: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        WebhookChannel(ROBOT, **kwargs)
    assert info.value.argument == argument


@pytest.mark.parametrize(
    ("text", "argument"),
    [
        ('[channels.""]\ntype = "console"', "channels."),
        ('[channels.t]\ntype = "smtp"\nhost = "h"\nsender = "a@b.c"\nport = -1', "channels.t.port"),
        (
            '[channels.t]\ntype = "smtp"\nhost = "h"\nsender = "a@b.c"\nport = 70000',
            "channels.t.port",
        ),
        (
            '[channels.t]\ntype = "webhook"\nurl = "https://x.example/h"\ntimeout_seconds = inf',
            "channels.t.timeout_seconds",
        ),
    ],
)
def test_bad_channel_files_name_their_key(text: str, argument: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        channels_from_toml(text)
    assert info.value.argument == argument
