"""Errors: the tree drawn in ``errors.py`` holds, and messages name the field, the event, the
customer or the key."""

from __future__ import annotations

import builtins
import importlib
import pickle
import re
import types
from pathlib import Path

import pytest

import lifecycle as lc
from lifecycle import errors
from lifecycle.analytics import Transactions


def drawn_tree() -> list[tuple[str, str | None, str | None]]:
    """(class, parent, builtin base) for each line of the tree in the module docstring."""
    assert errors.__doc__ is not None
    out: list[tuple[str, str | None, str | None]] = []
    parents: list[str] = []
    for line in errors.__doc__.splitlines():
        m = re.match(r"^(?P<lead>[ │├└─]*)(?P<name>[A-Z]\w+)(?: \((?P<base>\w+)\))?(?:\s|$)", line)
        if m is None or (not m["lead"].strip() and m["name"] != "LifecycleError"):
            continue
        depth = len(m["lead"]) // 4  # the tree is indented once: the root is at depth 1
        parents = parents[: depth - 1]
        out.append((m["name"], parents[-1] if parents else None, m["base"]))
        parents.append(m["name"])
    return out


TREE = drawn_tree()


def test_the_drawn_tree_names_every_error_in_the_module() -> None:
    assert TREE[0][0] == "LifecycleError"
    assert {name for name, _, _ in TREE} == set(errors.__all__)


@pytest.mark.parametrize(("name", "parent", "base"), TREE, ids=[n for n, _, _ in TREE])
def test_each_error_subclasses_its_parent_and_builtin_as_drawn(
    name: str, parent: str | None, base: str | None
) -> None:
    cls = getattr(errors, name)
    assert issubclass(cls, lc.LifecycleError)
    if parent is not None:
        assert issubclass(cls, getattr(errors, parent))
    if base is not None:
        assert issubclass(cls, getattr(builtins, base))


@pytest.mark.parametrize(
    ("cls", "base"),
    [
        (lc.InvalidEvent, ValueError),
        (lc.ConflictingEvent, lc.InvalidEvent),
        (lc.ConflictingEvent, ValueError),
        (lc.PolicyError, ValueError),
        (lc.ConcurrencyError, lc.StoreError),
        (lc.TransientChannelError, lc.ChannelError),
        (lc.PermanentChannelError, lc.ChannelError),
        (lc.NotFound, LookupError),
        (lc.LifecycleError, Exception),
    ],
)
def test_errors_are_also_the_builtin_they_resemble(cls: type, base: type) -> None:
    assert issubclass(cls, base)


def test_transient_and_permanent_channel_errors_are_distinct_kinds() -> None:
    assert not issubclass(lc.TransientChannelError, lc.PermanentChannelError)
    assert not issubclass(lc.PermanentChannelError, lc.TransientChannelError)


# -- messages and attributes --------------------------------------------------------------------


def test_invalid_event_names_the_event_and_the_field() -> None:
    error = lc.InvalidEvent("must not be negative", field="amount", event_id="order_paid:o1")
    assert (error.field, error.event_id) == ("amount", "order_paid:o1")
    assert "'amount'" in str(error)
    assert "'order_paid:o1'" in str(error)
    assert "must not be negative" in str(error)


def test_invalid_event_without_a_field_is_just_its_message() -> None:
    error = lc.InvalidEvent("not valid JSON")
    assert (error.field, error.event_id) == (None, None)
    assert str(error) == "not valid JSON"


def test_conflicting_event_names_the_event_id() -> None:
    error = lc.ConflictingEvent("order_paid:o1")
    assert error.event_id == "order_paid:o1"
    assert error.field is None
    assert "'order_paid:o1'" in str(error)


def test_policy_error_names_the_key() -> None:
    error = lc.PolicyError("must be a whole number >= 1", key="stage.repeat_min_days")
    assert error.key == "stage.repeat_min_days"
    assert "'stage.repeat_min_days'" in str(error)
    assert str(lc.PolicyError("plain")) == "plain"


def test_concurrency_error_names_the_customer() -> None:
    error = lc.ConcurrencyError("c42")
    assert error.customer_id == "c42"
    assert "'c42'" in str(error)


def test_not_found_names_the_customer() -> None:
    error = lc.NotFound("c42")
    assert error.customer_id == "c42"
    assert str(error) == "no customer 'c42'"


def test_errors_raised_by_events_name_the_field() -> None:
    with pytest.raises(lc.InvalidEvent, match="'score'") as info:
        lc.FeedbackGiven(customer_id="c1", at=lc.SystemClock().now(), score=11)
    assert info.value.field == "score"


def test_an_error_message_holds_no_personal_data() -> None:
    secret = "Zhang Wei, 12 Secret Lane"
    with pytest.raises(lc.InvalidEvent) as info:
        lc.Profile(name=secret, timezone="Mars/Olympus")
    assert secret not in str(info.value)
    with pytest.raises(lc.InvalidEvent) as info:
        lc.ContactPoint(channel="fax", address=secret)
    assert secret not in str(info.value)


PICKLED = [
    pytest.param(lc.InvalidEvent("bad", field="amount", event_id="e1"), id="InvalidEvent"),
    pytest.param(lc.PolicyError("bad", key="stage.repeat_min_days"), id="PolicyError"),
    pytest.param(lc.TransientChannelError("timeout"), id="TransientChannelError"),
] + [
    pytest.param(error, id=type(error).__name__)
    for error in (
        lc.ConflictingEvent("e1"),
        lc.ConcurrencyError("c1"),
        lc.NotFound("c1"),
        lc.DataError("no repeat buyer", column="frequency"),
        lc.ConvergenceError("BG/NBD", "gradient 1e-3"),
        lc.InsufficientPoints(event_id="rd-1", balance=10, requested=50),
        lc.UsageError("--db is a directory"),
    )
]


@pytest.mark.parametrize("error", PICKLED)
def test_errors_survive_pickling_with_their_message_and_attributes(
    error: lc.LifecycleError,
) -> None:
    # Errors cross process boundaries: worker pools, Dask and Spark pickle them.
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error)
    assert str(back) == str(error)
    assert vars(back) == vars(error)


# -- one home, one name per failure -------------------------------------------------------------


def package_modules() -> list[types.ModuleType]:
    root = Path(lc.__file__).parent
    names = sorted(
        ".".join(p.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__")
        for p in root.rglob("*.py")
        if p.name != "__main__.py"
    )
    return [importlib.import_module(name) for name in names]


def test_every_exception_of_the_package_is_defined_in_errors() -> None:
    elsewhere = sorted(
        f"{obj.__module__}.{obj.__name__}"
        for module in package_modules()
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, BaseException)
        and not issubclass(obj, Warning)  # warnings are not raised as errors
        and obj.__module__.startswith("lifecycle")
        and obj.__module__ != "lifecycle.errors"
    )
    assert elsewhere == []


def test_every_error_is_a_lifecycle_error() -> None:
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), lc.LifecycleError), name


def test_the_value_models_raise_data_error_for_data_that_cannot_identify_them() -> None:
    clv = pytest.importorskip("lifecycle.clv")
    assert not hasattr(clv, "InvalidData")
    assert not {"InvalidData", "ModelError", "ConvergenceError", "DataError"} & set(clv.__all__)
    with pytest.raises(lc.DataError) as info:
        clv.BetaGeo().fit([1.0, 2.0], [5.0, 4.0], [3.0, 6.0])  # recency beyond T
    assert info.value.column is not None
    assert f"column {info.value.column!r}" in str(info.value)
    assert isinstance(info.value, ValueError)
    assert not isinstance(info.value, lc.ModelError)


def test_analytics_and_the_value_models_raise_the_same_data_error() -> None:
    clv = pytest.importorskip("lifecycle.clv")
    kinds = set()
    for bad in (
        lambda: Transactions.from_arrays(["c1"], [None], [1.0], timezone="Mars/Olympus"),
        lambda: clv.GammaGamma().fit([1, 2], [10.0, 0.0]),
    ):
        with pytest.raises(lc.LifecycleError) as info:
            bad()
        kinds.add(type(info.value))
    assert kinds == {lc.DataError}
