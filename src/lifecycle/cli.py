"""The ``lifecycle`` command (also ``python -m lifecycle``): it parses arguments, calls the
facade and formats what it returns.

Exit codes: 0 success; 1 the library refused the data (a :class:`LifecycleError`) or failed
unexpectedly, or (with ``--strict``) customers were skipped; 2 a usage mistake (bad arguments,
a file that cannot be used). Mistakes print one line on stderr, never a traceback (``--debug``
prints one for an unexpected failure).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import time
import traceback
import unicodedata
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO
from zoneinfo import ZoneInfo

from lifecycle._time import require_aware, zone
from lifecycle._version import __version__
from lifecycle.adapters.channel_config import load_channels
from lifecycle.adapters.channels import ConsoleChannel, JsonLinesChannel
from lifecycle.clock import FixedClock
from lifecycle.config import load_policy, policy_to_toml
from lifecycle.datasets import experiment_shop, synthetic_shop
from lifecycle.errors import ConflictingEvent, InvalidEvent, LifecycleError, NotFound, UsageError
from lifecycle.io import (
    PRESETS,
    ImportPreview,
    load_mapping,
    parse_mapping,
    preview_orders,
    write_csv,
)
from lifecycle.policy import Policy
from lifecycle.reasons import Skipped
from lifecycle.report import (
    ClusterSection,
    HealthSection,
    KpiSection,
    LoyaltySection,
    Missing,
    OwnerReport,
    ParetoSection,
    SegmentSection,
    ShopReport,
    StageSection,
    ValueSection,
)
from lifecycle.service import Lifecycle
from lifecycle.vocabulary import Job, Stage, Status

if TYPE_CHECKING:
    from lifecycle.analytics.uplift import Uplift
    from lifecycle.cadence.planner import Plan
    from lifecycle.dispatch import DispatchReport
    from lifecycle.events import Event
    from lifecycle.ports import Channel

__all__ = ["main"]

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    out = out if out is not None else sys.stdout
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse has printed its message already
        return int(e.code) if isinstance(e.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help(out)
        return EXIT_USAGE
    try:
        return int(args.run(args, out))
    except UsageError as e:
        print(f"lifecycle: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except LifecycleError as e:
        print(f"lifecycle: error: {e}", file=sys.stderr)
        return EXIT_REFUSED
    except KeyboardInterrupt:
        print("lifecycle: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`lifecycle demo | head`): stop quietly, as Unix tools do.
        if out is sys.stdout:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except Exception as e:  # a bug or an unforeseen failure: still one line, no traceback
        if getattr(args, "debug", False):
            traceback.print_exc(file=sys.stderr)
        print(f"lifecycle: error: unexpected {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_REFUSED


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _alpha(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < 1:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lifecycle",
        description="The customer side of an online shop: stages, health and reasons.",
        epilog="Exit codes: 0 success, 1 data refused, 2 usage mistake.",
    )
    parser.add_argument("--version", action="version", version=f"lifecycle {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="print the traceback of an unexpected failure (before the command)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="generate a synthetic shop, record it into SQLite and report on it",
        description=(
            "Generate a seeded synthetic shop, record every event into an SQLite file, fit "
            "the value model and print the shop report, the follow-ups due and ten customers "
            "with reasons. Running it again on the same file records nothing new."
        ),
    )
    demo.add_argument("--customers", type=_positive, default=5000, help="default 5000")
    demo.add_argument("--seed", type=_non_negative, default=0, help="default 0")
    demo.add_argument("--db", type=Path, default=Path("demo.db"), help="default demo.db")
    demo.add_argument(
        "--fresh", action="store_true", help="delete the --db file first if it holds a shop"
    )
    demo.add_argument("--lang", choices=("en", "zh"), default="en", help="default en")
    demo.add_argument(
        "--policy", type=Path, help="a policy TOML file for the demo shop (default: the defaults)"
    )
    demo.set_defaults(run=_demo)

    imp = commands.add_parser(
        "import",
        help="import an order export (CSV or Excel) into a shop file",
        description=(
            "Read an order export and record what is new into an SQLite shop file: new orders, "
            "and known orders' newer states (paid, refunded, cancelled, shipped, delivered). "
            "Importing the same file again records nothing. One bad row refuses the whole "
            "file unless --skip-bad is given. The first import records the preset's time "
            "zone and language as the shop's; later commands use them."
        ),
    )
    imp.add_argument("file", type=Path, help="the export: .csv (UTF-8, GB18030/GBK, ...) or .xlsx")
    imp.add_argument("--db", type=Path, default=Path("shop.db"), help="default shop.db")
    imp.add_argument("--preset", choices=sorted(PRESETS), default="generic", help="default generic")
    imp.add_argument("--map", metavar="FIELD=COLUMN,...", help="columns on top of the preset")
    imp.add_argument("--mapping", type=Path, metavar="FILE.toml", help="a mapping file")
    imp.add_argument(
        "--customer-key",
        metavar="COLUMN,...",
        help="columns that name the customer when the export has no buyer column",
    )
    imp.add_argument(
        "--hash-customer-key", action="store_true", help="store a keyed hash of the customer key"
    )
    imp.add_argument("--tz", help="the zone the file's times are in (default by preset)")
    imp.add_argument("--currency", help="the amounts' currency (default: the policy's, else CNY)")
    imp.add_argument("--encoding", help="the file's encoding when guessing is not enough")
    imp.add_argument(
        "--skip-bad",
        action="store_true",
        help="import the good rows and write the bad ones to FILE.rejected.csv",
    )
    imp.add_argument(
        "--preview",
        action="store_true",
        help="show the first orders as the import reads them, and the columns used; record nothing",
    )
    imp.add_argument(
        "--policy", type=Path, help="a policy TOML file (its zone is the default --tz)"
    )
    imp.add_argument("--format", choices=("table", "json"), default="table")
    imp.add_argument(
        "--lang",
        choices=("en", "zh"),
        help="the output language; at the first import also the shop's (default by preset)",
    )
    imp.set_defaults(run=_import)

    def shop_command(name: str, help_text: str, run: Any, customer: bool = False) -> Any:
        cmd = commands.add_parser(name, help=help_text, description=help_text)
        if customer:
            cmd.add_argument("customer", help="the customer id")
        cmd.add_argument("--db", type=Path, default=Path("shop.db"), help="default shop.db")
        cmd.add_argument("--policy", type=Path, help="a policy TOML file (default: the defaults)")
        cmd.add_argument(
            "--at", type=_instant, help="assess at this ISO 8601 instant with offset (default: now)"
        )
        cmd.add_argument(
            "--lang", choices=("en", "zh"), help="default: the shop's language, else en"
        )
        cmd.set_defaults(run=run)
        return cmd

    assess = shop_command(
        "assess", "a customer's stage, status, tier and points, with why", _assess, True
    )
    assess.add_argument("--format", choices=("table", "json", "csv"), default="table")
    report = shop_command(
        "report",
        "the shop report: stages, health, loyalty, value segments, the value model and KPIs",
        _report,
    )
    report.add_argument("--format", choices=("table", "json", "csv"), default="table")
    report.add_argument(
        "--currency",
        type=_currency,
        help="count money in this currency (default: the policy's); others are listed apart",
    )
    report.add_argument("--strict", action="store_true", help=_STRICT)
    report.add_argument(
        "--by",
        choices=("shop", "owner"),
        default="shop",
        help="the whole shop (default), or each owner's results over a window",
    )
    report.add_argument(
        "--since",
        type=_instant,
        help="with --by owner: where the window starts (default: --days before now)",
    )
    report.add_argument(
        "--days", type=_positive, default=30, help="with --by owner: the window, default 30"
    )
    history = shop_command(
        "history", "a customer's stage history: each stage, since when, and why", _history, True
    )
    history.add_argument("--format", choices=("table", "json"), default="table")
    send = shop_command(
        "dispatch", "send the follow-ups due now, each once (to the console or a file)", _dispatch
    )
    send.add_argument("--dry-run", action="store_true", help="show what would go out; send nothing")
    send.add_argument("--to", type=Path, help="a JSON-lines file to send to (default: the console)")
    send.add_argument(
        "--channels",
        type=Path,
        metavar="FILE",
        help="a TOML file routing channels elsewhere (a webhook, SMTP): [channels.task] ...",
    )
    send.add_argument("--format", choices=("table", "json"), default="table")
    send.add_argument("--strict", action="store_true", help=_STRICT)
    plan = shop_command("plan", "the follow-ups due now, and those held back with why", _plan)
    plan.add_argument("--format", choices=("table", "json", "csv"), default="table")
    plan.add_argument("--strict", action="store_true", help=_STRICT)
    exp = shop_command(
        "experiment",
        "what a rule's follow-ups changed: its treated customers against its held-out control "
        "group (conversion, orders, revenue per customer, with intervals and p-values)",
        _experiment,
    )
    exp.add_argument("rule", help="the rule's id (it needs a holdout in the policy)")
    _window_arguments(exp)
    exp.add_argument(
        "--alpha", type=_alpha, default=0.05, help="one minus the intervals' level (default 0.05)"
    )
    exp.add_argument("--format", choices=("table", "json", "csv"), default="table")
    exp.add_argument("--strict", action="store_true", help=_STRICT)
    whatif = shop_command(
        "whatif",
        "replay the stored history under a new policy and show what would have differed",
        _whatif,
    )
    whatif.add_argument(
        "--base", type=Path, help="the policy to compare against (default: the shop's)"
    )
    _window_arguments(whatif)
    whatif.add_argument("--format", choices=("table", "json"), default="table")
    whatif.add_argument("--strict", action="store_true", help=_STRICT)
    shop_command("export", "everything held about a customer, as JSON", _export, True)
    erase = shop_command("erase", "erase a customer's personal data (needs --yes)", _erase, True)
    erase.add_argument("--yes", action="store_true", help="confirm the erasure")
    erase.add_argument(
        "--log",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="a JSON-lines file dispatch --to wrote: drop the customer's personal data from it "
        "too (repeat for several)",
    )

    pol = commands.add_parser(
        "policy",
        help="print the default policy as commented TOML, or check a policy file",
        description="Print every setting with its default and documentation (--defaults), "
        "or check that a policy file loads (--check FILE).",
    )
    what = pol.add_mutually_exclusive_group(required=True)
    what.add_argument("--defaults", action="store_true", help="print the default policy")
    what.add_argument("--check", type=Path, metavar="FILE", help="check a policy file")
    pol.set_defaults(run=_policy)
    return parser


def _load_policy(path: str | Path) -> Policy:
    """The policy file named on the command line; a file that is not there is a usage mistake
    (exit 2), a file that does not hold a valid policy is refused (exit 1)."""
    if not Path(path).is_file():
        raise UsageError(f"no such file: {path}")
    return load_policy(path)


def _policy(args: argparse.Namespace, out: TextIO) -> int:

    if args.defaults:
        out.write(policy_to_toml())
        return EXIT_OK
    _load_policy(args.check)
    out.write(f"{args.check}: the policy loads\n")
    return EXIT_OK


_STRICT = "exit 1 when customers had to be skipped (default: report them and exit 0)"


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 instant: {text!r}") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no offset; write e.g. 2026-11-11T20:00+08:00"
        )
    try:
        return require_aware(value, "at")
    except InvalidEvent as e:
        raise argparse.ArgumentTypeError(f"{text!r}: {e.detail}") from None


def _currency(text: str) -> str:
    if len(text) != 3 or not text.isascii() or not text.isalpha():
        raise argparse.ArgumentTypeError(f"not a three-letter currency code: {text!r}")
    return text.upper()


def _skipped(args: argparse.Namespace, skipped: Sequence[Skipped]) -> int:
    """Say in one line which customers a run skipped; the exit code ``--strict`` asks for."""
    if not skipped:
        return EXIT_OK
    customers = sorted({s.customer_id for s in skipped})
    shown = "; ".join(str(s) for s in skipped[:3])
    more = f" (and {len(skipped) - 3} more)" if len(skipped) > 3 else ""
    print(
        f"lifecycle: {len(customers):,} customer(s) skipped, the rest done: {shown}{more}",
        file=sys.stderr,
    )
    return EXIT_REFUSED if args.strict else EXIT_OK


def _open_shop(args: argparse.Namespace, *, must_exist: bool = True) -> Lifecycle:

    db: Path = args.db
    if must_exist and not db.is_file():
        raise UsageError(f"no shop file {db}; give --db or import orders first")
    policy = _load_policy(args.policy) if args.policy is not None else None
    clock = FixedClock(args.at) if args.at is not None else None
    shop = Lifecycle.open(db, policy=policy, clock=clock)
    if getattr(args, "lang", None) is None:
        args.lang = shop.policy.language
    return shop


@contextmanager
def _known_customer(args: argparse.Namespace) -> Iterator[None]:
    """Turn "no such customer" into a usage mistake naming the customer and the file."""
    try:
        yield
    except NotFound:
        raise UsageError(f"no customer {args.customer!r} in {args.db}") from None


def _assess(args: argparse.Namespace, out: TextIO) -> int:
    with _open_shop(args) as shop, _known_customer(args):
        a = shop.assess(args.customer)
    row = a.to_dict()
    if args.format == "json":
        out.write(json.dumps(row, ensure_ascii=False, indent=2) + "\n")
    elif args.format == "csv":
        header = [k for k in row if k != "reasons"] + ["reasons"]
        reasons = " | ".join(r.text(args.lang) for r in a.reasons)
        write_csv(out, header, [[row[k] for k in header[:-1]] + [reasons]])
    else:
        out.write(f"{a.customer_id}  {a.explain(args.lang)}\n")
    return EXIT_OK


def _history(args: argparse.Namespace, out: TextIO) -> int:
    with _open_shop(args) as shop, _known_customer(args):
        changes = shop.stage_history(args.customer)
    if args.format == "json":
        rows = [c.to_dict() for c in changes]
        out.write(json.dumps(rows, ensure_ascii=False, indent=2) + "\n")
        return EXIT_OK
    _say(
        out,
        args.lang,
        f"{args.customer}: {len(changes)} stage changes",
        f"{args.customer}：{len(changes)} 次阶段变化",
    )
    for c in changes:
        out.write(f"  {c.since:%Y-%m-%d}  {int(c.stage)} {c.stage.label(args.lang)}\n")
        for r in c.reasons:
            out.write(f"    - {r.text('zh' if args.lang == 'zh' else 'en')}\n")
    return EXIT_OK


def _report(args: argparse.Namespace, out: TextIO) -> int:
    if args.by == "owner":
        return _report_by_owner(args, out)
    if args.since is not None:
        raise UsageError("--since goes with --by owner (the shop's report is as of --at)")
    with _open_shop(args) as shop:
        report = shop.report(currency=args.currency)
    if args.format == "json":
        out.write(json.dumps(report.to_dict(), ensure_ascii=False, indent=2) + "\n")
    elif args.format == "csv":
        write_csv(out, ["figure", "value"], [[k, v] for k, v in _flat(report.to_dict())])
    else:
        as_of = report.as_of.astimezone(ZoneInfo(report.timezone))
        _say(
            out,
            args.lang,
            f"{report.customers:,} customers as of {as_of:%Y-%m-%d %H:%M} {report.timezone}",
            f"截至 {as_of:%Y-%m-%d %H:%M} {report.timezone}，共 {report.customers:,} 位客户",
        )
        out.write("\n")
        _shop_report(out, args.lang, report)
    return _skipped(args, report.skipped)


def _report_by_owner(args: argparse.Namespace, out: TextIO) -> int:
    with _open_shop(args) as shop:
        now = shop.clock.now()
        since = args.since if args.since is not None else now - timedelta(days=args.days)
        if since >= now:
            raise UsageError(
                f"--since ({since.isoformat()}) must be before the window's end ({now.isoformat()})"
            )
        report = shop.owner_report(since, now, currency=args.currency)
    if args.format == "json":
        out.write(json.dumps(report.to_dict(), ensure_ascii=False, indent=2) + "\n")
    elif args.format == "csv":
        write_csv(
            out,
            list(report.rows()[0]) if report.owners else ["owner_id"],
            [list(r.values()) for r in report.rows()],
        )
    else:
        _owner_table(out, args.lang, report)
    return _skipped(args, report.skipped)


def _owner_table(out: TextIO, lang: str, report: OwnerReport) -> None:
    """Each owner's results as a text table, titled with the window."""
    _say(
        out,
        lang,
        f"Owners' results from {report.since:%Y-%m-%d} to {report.until:%Y-%m-%d} (UTC), "
        f"revenue in {report.currency}:",
        f"负责人业绩（{report.since:%Y-%m-%d} 至 {report.until:%Y-%m-%d}，UTC），"
        f"销售额币种 {report.currency}：",
    )
    if not report.owners:
        _say(out, lang, "  no owner held a customer in the window", "  该时段内无负责人持有客户")
        return
    rows = [
        [
            str(r["owner_id"]),
            *(f"{r[k]:,}" for k in _OWNER_COUNTS),
            f"{Decimal(r['revenue']):,.2f}",
            f"{r['returned']:,}",
        ]
        for r in report.rows()
    ]
    head = report.headers(lang)
    _table(out, head, rows, right=range(1, len(head)))


#: The count columns of the owners' table between the owner and the revenue.
_OWNER_COUNTS = (
    "held",
    "taken",
    "tasks_due",
    "done_on_time",
    "overdue",
    "escalated",
    "first_purchases",
    "repeat_purchases",
)


def _flat(value: object, path: str = "") -> Iterator[tuple[str, object]]:
    """Every leaf of a JSON-ready document with its dotted path: one CSV row per figure."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _flat(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _flat(v, f"{path}.{i}")
    else:
        yield path, value


def _dispatch(args: argparse.Namespace, out: TextIO) -> int:
    with _open_shop(args) as shop:
        if args.dry_run:
            plan = shop.plan()
            if args.format == "json":
                rows = [r for r in plan.rows(args.lang) if r["state"] == "due"]
                out.write(json.dumps(rows, ensure_ascii=False, indent=2) + "\n")
            else:
                _say(
                    out,
                    args.lang,
                    f"dry run: {len(plan.due):,} follow-ups would be sent; nothing was sent",
                    f"演练：将发送 {len(plan.due):,} 条跟进，实际未发送",
                )
                _plan_report(out, args.lang, plan, shop.policy.timezone)
            return _skipped(args, plan.skipped)
        channels = _file_channels(args.to) if args.to is not None else _console_channels(out)
        if args.channels is not None:
            channels.update(load_channels(args.channels))
        shop.channels.update(channels)
        report = shop.dispatch()
    if args.format == "json":
        rows = [
            {
                "key": r.key,
                "customer_id": r.customer_id,
                "channel": r.channel,
                "outcome": r.outcome.value,
                "attempt": r.attempt,
                "why": r.reason.text("zh" if args.lang == "zh" else "en"),
            }
            for r in report.results
        ]
        out.write(json.dumps(rows, ensure_ascii=False, indent=2) + "\n")
    else:
        _dispatch_report(out, args.lang, report, args.to)
    return _skipped(args, report.skipped)


def _plan(args: argparse.Namespace, out: TextIO) -> int:
    with _open_shop(args) as shop:
        plan = shop.plan()
    rows = plan.rows(args.lang)
    if args.format == "json":
        out.write(json.dumps(rows, ensure_ascii=False, indent=2) + "\n")
    elif args.format == "csv":
        header = list(rows[0]) if rows else ["customer_id", "rule", "key"]
        write_csv(out, header, [[r[h] for h in header] for r in rows])
    else:
        _plan_report(out, args.lang, plan, shop.policy.timezone)
    return _skipped(args, plan.skipped)


def _window_arguments(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--since",
        type=_instant,
        help="the window's start, ISO 8601 with offset (default: 30 days before --until)",
    )
    cmd.add_argument(
        "--until",
        type=_instant,
        help="the window's end, ISO 8601 with offset (default: --at, else now)",
    )
    cmd.add_argument(
        "--step-days", type=_positive, default=1, help="replay every this many days (default 1)"
    )


def _experiment(args: argparse.Namespace, out: TextIO) -> int:
    with _open_shop(args) as shop:
        result = shop.experiment(
            args.rule,
            args.since,
            args.until,
            step=timedelta(days=args.step_days),
            alpha=args.alpha,
        )
    if args.format == "json":
        out.write(json.dumps(result.to_dict(), ensure_ascii=False, indent=2) + "\n")
    elif args.format == "csv":
        rows = result.rows()
        write_csv(out, list(rows[0]), [list(r.values()) for r in rows])
    else:
        _uplift_report(out, args.lang, result, shop.policy.timezone)
    return _skipped(args, result.skipped)


def _uplift_report(out: TextIO, lang: str, result: Uplift, timezone: str) -> None:
    """An experiment's result: the groups, each metric's difference, interval and p-value."""
    level = f"{1 - result.alpha:.0%}"
    since, until = (
        f"{datetime.fromisoformat(t).astimezone(zone(timezone)):%Y-%m-%d %H:%M}"
        for t in (result.since, result.until)
    )
    _say(
        out,
        lang,
        f"Experiment on {result.rule}, {since} to {until} {timezone}: "
        f"{result.treated:,} treated, {result.control:,} held out as control",
        f"规则 {result.rule} 的实验（{since} 至 {until} {timezone}）："
        f"处理组 {result.treated:,} 人，对照组 {result.control:,} 人",
    )
    names = {
        "conversion": ("conversion", "转化率"),
        "orders": ("orders per customer", "人均订单"),
        "revenue": (f"revenue per customer ({result.currency})", f"人均收入（{result.currency}）"),
    }
    rows = []
    for m in result.metrics:
        label = names[m.name][1 if lang == "zh" else 0]
        if m.name == "conversion":
            cells = [f"{m.treated:.2%}", f"{m.control:.2%}", f"{m.difference:+.2%}"]
            ci = f"[{m.low:+.2%}, {m.high:+.2%}]"
        else:
            cells = [f"{m.treated:,.3f}", f"{m.control:,.3f}", f"{m.difference:+,.3f}"]
            ci = f"[{m.low:+,.3f}, {m.high:+,.3f}]"
        rows.append([label, *cells, ci, f"{m.p_value:.3g}", m.test])
    head = (
        ["指标", "处理组", "对照组", "差异", f"{level} 区间", "p 值", "检验"]
        if lang == "zh"
        else ["metric", "treated", "control", "difference", f"{level} interval", "p", "test"]
    )
    _table(out, head, rows, right=(1, 2, 3, 5))
    _say(
        out,
        lang,
        f"  the groups detect a conversion difference of {result.detectable:.1%} with 80% power",
        f"  以 80% 的检验功效，可检测到的最小转化率差异为 {result.detectable:.1%}",
    )
    for w in result.warnings:
        out.write(f"  ! {w.text('zh' if lang == 'zh' else 'en')}\n")


def _whatif(args: argparse.Namespace, out: TextIO) -> int:
    if args.policy is None:
        raise UsageError("give --policy FILE: the policy to replay the history under")
    new = _load_policy(args.policy)
    base = argparse.Namespace(**{**vars(args), "policy": args.base})
    with _open_shop(base) as shop:
        args.lang = base.lang
        result = shop.compare(
            None, new, since=args.since, until=args.until, step=timedelta(days=args.step_days)
        )
    lang: Literal["en", "zh"] = "zh" if args.lang == "zh" else "en"
    tz = shop.policy.timezone
    since, until = result.since.astimezone(zone(tz)), result.until.astimezone(zone(tz))
    if args.format == "json":
        out.write(json.dumps(result.to_dict(lang), ensure_ascii=False, indent=2) + "\n")
        return _skipped(args, result.skipped)
    _say(
        out,
        lang,
        f"{result.customers:,} customers replayed from {since:%Y-%m-%d %H:%M} to "
        f"{until:%Y-%m-%d %H:%M} {tz}: the shop's policy (A) against {args.policy} (B)",
        f"重放 {result.customers:,} 位客户（{since:%Y-%m-%d %H:%M} 至 {until:%Y-%m-%d %H:%M} {tz}）："
        f"店铺现行策略（A）对比 {args.policy}（B）",
    )
    if result.same:
        _say(out, lang, "  the two policies decide alike", "  两种策略的决定完全相同")
        return _skipped(args, result.skipped)
    rows = [
        [r["what"], str(r["value"]), f"{r['a']:,}", f"{r['b']:,}", f"{r['b'] - r['a']:+,}"]
        for r in result.rows()
        if r["a"] != r["b"]
    ]
    head = (
        ["项目", "取值", "A", "B", "变化"]
        if lang == "zh"
        else ["what", "value", "A", "B", "change"]
    )
    _table(out, head, rows, right=(2, 3, 4))
    if result.differences:
        _say(
            out,
            lang,
            f"  {len(result.differences):,} judged differently, for example:",
            f"  {len(result.differences):,} 处判断不同，例如：",
        )
        for d in result.differences[:10]:
            why = d.reasons[0].text(lang) if d.reasons else ""
            out.write(f"  - {d.customer_id} {d.what}: {d.before} -> {d.after}  {why}\n")
    return _skipped(args, result.skipped)


def _export(args: argparse.Namespace, out: TextIO) -> int:
    with _open_shop(args) as shop, _known_customer(args):
        out.write(shop.export(args.customer) + "\n")
    return EXIT_OK


def _erase(args: argparse.Namespace, out: TextIO) -> int:
    if not args.yes:
        raise UsageError(f"erasing {args.customer!r} cannot be undone; add --yes to confirm")
    logs = [log for log in args.log if log.exists()]
    with _open_shop(args) as shop, _known_customer(args):
        shop.channels.update({f"log{i}": JsonLinesChannel(log) for i, log in enumerate(logs)})
        count = shop.erase(args.customer)
    lines = f"; scrubbed {len(logs)} log file(s)" if logs else ""
    out.write(f"erased the personal data of {args.customer} ({count} events redacted{lines})\n")
    return EXIT_OK


def _import(args: argparse.Namespace, out: TextIO) -> int:

    file: Path = args.file
    if not file.is_file():
        raise UsageError(f"no such file: {file}")
    mapping: dict[str, Any] = {}
    if args.mapping is not None:
        mapping.update(load_mapping(args.mapping))
    if args.map is not None:
        mapping.update(parse_mapping(args.map))
    options: dict[str, Any] = {
        "preset": args.preset,
        "mapping": mapping or None,
        "currency": args.currency,
        "encoding": args.encoding,
        "customer_key": args.customer_key,
        "hash_customer_key": True if args.hash_customer_key else None,
    }
    policy = _load_policy(args.policy) if args.policy is not None else None
    tz = args.tz or (policy.timezone if policy is not None else None)
    if options["currency"] is None:  # the shop's: the policy's, else the import's default
        if policy is not None:
            options["currency"] = policy.currency
        else:
            del options["currency"]
    if args.preview:
        preview = preview_orders(file, tz=tz, **options)
        _preview(out, args.lang or "en", preview, args.format)
        return EXIT_OK
    rejected = file.with_name(file.name + ".rejected.csv") if args.skip_bad else None
    with Lifecycle.open(args.db, policy=policy) as shop:
        summary = shop.import_orders(
            file,
            tz=tz,
            language=args.lang,
            skip_bad=args.skip_bad,
            rejected_to=rejected,
            **options,
        )
        lang = args.lang or shop.policy.language
    if args.format == "json":
        out.write(json.dumps(summary.to_dict(), ensure_ascii=False, indent=2) + "\n")
        return EXIT_OK
    _say(
        out,
        lang,
        f"{file} into {args.db}: {summary.line('en')}",
        f"{file} 导入 {args.db}：{summary.line('zh')}",
    )
    if summary.fresh_histories:
        _say(
            out,
            lang,
            f"{summary.fresh_histories:,} orders of erased customers started fresh histories",
            f"{summary.fresh_histories:,} 笔已删除客户的订单开始了新的记录",
        )
    if summary.defaults is not None:
        d = summary.defaults
        _say(
            out,
            lang,
            f"the shop's time zone is now {d.timezone or '(unchanged)'}, its language "
            f"{d.language or '(unchanged)'}; later commands use them",
            f"店铺时区已设为 {d.timezone or '（未变）'}，语言 {d.language or '（未变）'}；"
            "之后的命令将使用它们",
        )
    if summary.refused:
        _say(
            out,
            lang,
            f"{len(summary.refused):,} bad rows left out, listed in {rejected}",
            f"{len(summary.refused):,} 行有误未导入，见 {rejected}",
        )
    return EXIT_OK


def _preview(out: TextIO, lang: str, preview: ImportPreview, form: str) -> None:
    """The columns the import reads, those it ignores, and its first orders."""
    rows = [
        {
            "row": o.row,
            "order_id": o.order_id,
            "customer_id": o.customer_id,
            "placed_at": o.placed_at.isoformat(),
            "amount": str(o.amount),
            "currency": o.currency,
            "paid_at": None if o.paid_at is None else o.paid_at.isoformat(),
            "paid": None if o.paid is None else str(o.paid),
            "refunded": str(o.refunded),
            "closed": o.closed,
            "items": list(o.items),
        }
        for o in preview.orders
    ]
    if form == "json":
        document = {
            "columns": dict(preview.columns),
            "ignored": list(preview.ignored),
            "orders": rows,
            "problems": [str(p) for p in preview.problems],
        }
        out.write(json.dumps(document, ensure_ascii=False, indent=2) + "\n")
        return
    _say(out, lang, "Columns recognised:", "识别的列：")
    _table(out, ("field", "column"), sorted(preview.columns.items()))
    ignored = ", ".join(preview.ignored) or "-"
    _say(out, lang, f"Columns ignored: {ignored}", f"忽略的列：{ignored}")
    _say(out, lang, f"The first {len(rows)} orders as read:", f"前 {len(rows)} 笔订单：")
    head = ("row", "order", "customer", "placed", "amount", "paid", "refunded", "closed")
    _table(
        out,
        head,
        [
            (
                str(o.row),
                o.order_id,
                o.customer_id,
                f"{o.placed_at:%Y-%m-%d %H:%M %z}",
                f"{o.currency} {o.amount}",
                "-" if o.paid is None else str(o.paid),
                str(o.refunded),
                "yes" if o.closed else "",
            )
            for o in preview.orders
        ],
        right=(4, 5, 6),
    )
    for p in preview.problems[:10]:
        out.write(f"  ! {p}\n")


# -- demo -------------------------------------------------------------------------------------


def _demo(args: argparse.Namespace, out: TextIO) -> int:

    lang: str = args.lang
    db: Path = args.db
    if db.is_dir():
        raise UsageError(f"{db} is a directory; give a file for --db")
    if args.fresh and db.exists():
        _remove_shop_file(db)
    started = time.perf_counter()
    data = synthetic_shop(args.customers, seed=args.seed)
    generated = time.perf_counter() - started
    clock = FixedClock(data.as_of)
    policy = _load_policy(args.policy) if args.policy is not None else _demo_policy(data.timezone)
    _say(
        out,
        lang,
        f"lifecycle {__version__} demo: a synthetic shop of {args.customers:,} customers "
        f"(seed {args.seed}), as of {data.as_of:%Y-%m-%d %H:%M} {data.timezone}",
        f"lifecycle {__version__} 演示：{args.customers:,} 位客户的模拟店铺（种子 {args.seed}），"
        f"截至 {data.as_of:%Y-%m-%d %H:%M} {data.timezone}",
    )
    with Lifecycle.open(db, policy=policy, clock=clock, synchronous="NORMAL") as shop:
        started = time.perf_counter()
        try:
            result = shop.record(data.events)
        except ConflictingEvent as e:
            raise UsageError(
                f"{db} already holds a different shop ({e}); pass --fresh or another --db"
            ) from None
        recorded = time.perf_counter() - started
        if result.recorded:
            rate = result.recorded / recorded if recorded > 0 else float("inf")
            _say(
                out,
                lang,
                f"generated {len(data.events):,} events in {generated:.1f} s; recorded "
                f"{result.recorded:,} new into {db} in {recorded:.1f} s ({rate:,.0f} events/s, "
                f"snapshots included); {result.duplicates:,} were already there",
                f"生成 {len(data.events):,} 条事件用时 {generated:.1f} 秒；新写入 {db} "
                f"{result.recorded:,} 条，用时 {recorded:.1f} 秒（每秒 {rate:,.0f} 条，含快照）；"
                f"已存在 {result.duplicates:,} 条",
            )
        else:
            _say(
                out,
                lang,
                f"generated {len(data.events):,} events in {generated:.1f} s; all were already "
                f"in {db}, nothing recorded twice (checked in {recorded:.1f} s)",
                f"生成 {len(data.events):,} 条事件用时 {generated:.1f} 秒；{db} 中已全部存在，"
                f"未重复写入（核对用时 {recorded:.1f} 秒）",
            )
        ids = set(data.customer_ids)
        started = time.perf_counter()
        stages = {s: [c for c in shop.customers(stage=s) if c in ids] for s in Stage}
        queried = time.perf_counter() - started
        started = time.perf_counter()
        with suppress(ImportError, LifecycleError):  # the report's value section says why
            shop.fit_value_model()
        fitted = time.perf_counter() - started
        started = time.perf_counter()
        report = shop.report()
        reported = time.perf_counter() - started
        out.write("\n")
        _shop_report(out, lang, report, fitted_in=fitted if shop.model is not None else None)
        out.write("\n")
        team_since = _demo_team(out, lang, shop, data.events, data.as_of)
        out.write("\n")
        started = time.perf_counter()
        plan = shop.plan()
        _plan_report(out, lang, plan, data.timezone, time.perf_counter() - started)
        out.write("\n")
        outbox = Path(f"{db}.outbox.jsonl")
        shop.channels.update(_file_channels(outbox))
        dispatched = shop.dispatch()
        _dispatch_report(out, lang, dispatched, outbox)
        out.write("\n")
        _demo_experiment(out, lang, args.seed)
        _owner_table(out, lang, shop.owner_report(team_since, data.as_of + _INCLUSIVE))
        out.write("\n")
        examples = _examples(stages)
        started = time.perf_counter()
        assessments = [shop.assess(c) for c in examples]
        assessed = time.perf_counter() - started
        _say(out, lang, "Ten customers and why:", "十位客户及其原因：")
        for a in assessments:
            text = a.explain(lang).splitlines()
            out.write(f"\n  {a.customer_id}  {text[0]}\n")
            for line in text[1:]:
                out.write(f"    {line}\n")
        out.write("\n")
        per = assessed / max(1, len(assessments)) * 1e3
        _say(
            out,
            lang,
            f"stage queries for {len(ids):,} customers: {queried * 1e3:.0f} ms (from stored "
            f"snapshots); the shop report: {reported:.1f} s; one explained assessment: "
            f"{per:.2f} ms",
            f"{len(ids):,} 位客户的阶段查询：{queried * 1e3:.0f} 毫秒（读取快照）；"
            f"店铺报告：{reported:.1f} 秒；单个客户带原因的评估：{per:.2f} 毫秒",
        )
    return EXIT_OK


def _demo_experiment(out: TextIO, lang: str, seed: int) -> None:
    """One experiment's result, on a shop simulated with a known effect: the demo shop's story
    sends no follow-ups, so it has none to measure."""
    started = time.perf_counter()
    data = experiment_shop(2000, seed=seed)
    with Lifecycle.in_memory(policy=data.policy, clock=FixedClock(data.until)) as shop:
        shop.record(data.events)
        result = shop.experiment(data.rule, data.since, step=data.until - data.since)
    took = time.perf_counter() - started
    _say(
        out,
        lang,
        f"One experiment (a second, simulated shop of 2,000 past buyers: a campaign holds out "
        f"20% as control; the true lift is {data.conversion_lift * 100:+.1f} points of "
        f"conversion, "
        f"{data.revenue_lift:+.0f} in revenue per customer; simulated and measured in "
        f"{took:.1f} s):",
        f"一个实验（另一家模拟店铺，2,000 位老客户：活动留出 20% 作为对照组；真实提升为转化率 "
        f"{data.conversion_lift:+.1%}、人均收入 {data.revenue_lift:+.0f}；模拟与测量用时 {took:.1f} 秒）：",
    )
    _uplift_report(out, lang, result, data.policy.timezone)


def _demo_policy(timezone: str) -> Policy:
    """The defaults in the demo shop's zone, with a lead over the demo team for escalations."""
    return Policy.from_dict(
        {"timezone": timezone, "owners": {"leads": dict.fromkeys(_DEMO_OWNERS, "lee")}}
    )


#: The demo's sales team, and how long before the demo's end it took its customers.
_DEMO_OWNERS = ("ann", "bo", "chen")
_DEMO_OWNED_DAYS = 90


#: The owners' report in the demo runs to its instant, inclusive.
_INCLUSIVE = timedelta(microseconds=1)


def _demo_team(
    out: TextIO, lang: str, shop: Lifecycle, events: Sequence[Event], as_of: datetime
) -> datetime:
    """Give the demo team customers who were known 90 days ago and let the pool reclaim
    those nobody followed up; returns when the team started (the owners' report's window)."""
    start = as_of - timedelta(days=_DEMO_OWNED_DAYS)
    known = sorted({e.customer_id for e in events if e.at < start})
    capacity = shop.policy.owners.capacity
    wanted = known[: capacity * len(_DEMO_OWNERS) * 3 // 4]
    assigned = shop.assign_owners(_DEMO_OWNERS, start, customer_ids=wanted)
    reclaimed = shop.sweep_pool(start + timedelta(days=_DEMO_OWNED_DAYS // 2))
    _say(
        out,
        lang,
        f"Sales team {', '.join(_DEMO_OWNERS)}: {len(assigned.events):,} customers assigned "
        f"{_DEMO_OWNED_DAYS} days ago; {len(reclaimed.events):,} returned to the shared pool "
        "for want of a follow-up or a deal",
        f"销售团队 {'、'.join(_DEMO_OWNERS)}：{_DEMO_OWNED_DAYS} 天前分配 "
        f"{len(assigned.events):,} 位客户；{len(reclaimed.events):,} 位因未跟进或未成交退回公海",
    )
    return start


# -- the shop report ----------------------------------------------------------------------------


def _shop_report(
    out: TextIO, lang: str, report: ShopReport, fitted_in: float | None = None
) -> None:
    """Every section of ``report`` as text tables, each titled with its window."""
    _funnel(out, lang, report.stages)
    out.write("\n")
    _health(out, lang, report.health)
    out.write("\n")
    _loyalty(out, lang, report.loyalty)
    out.write("\n")
    _segments(out, lang, report.segments)
    _pareto(out, lang, report.pareto)
    _clusters(out, lang, report.clusters)
    out.write("\n")
    _predicted(out, lang, report.value, report.health, fitted_in)
    out.write("\n")
    _kpis(out, lang, report.kpis)
    _currencies(out, lang, report)


def _currencies(out: TextIO, lang: str, report: ShopReport) -> None:
    """The report's currency, and the orders in other currencies it left out."""
    if not report.other_currencies:
        _say(out, lang, f"Money in {report.currency}.", f"金额单位：{report.currency}。")
        return
    others = ", ".join(
        f"{o.currency} {o.orders:,} orders ({o.revenue:,.2f})" for o in report.other_currencies
    )
    others_zh = "，".join(
        f"{o.currency} {o.orders:,} 笔（{o.revenue:,.2f}）" for o in report.other_currencies
    )
    _say(
        out,
        lang,
        f"Money in {report.currency}; left out, in other currencies: {others} "
        "(--currency to count one of them)",
        f"金额单位：{report.currency}；其他币种的订单未计入：{others_zh}（用 --currency 指定币种）",
    )


def _missing(out: TextIO, lang: str, en: str, zh: str, section: Missing) -> None:
    r = section.reason
    _say(out, lang, f"{en}: {r.en}", f"{zh}：{r.zh}")


def _funnel(out: TextIO, lang: str, section: StageSection) -> None:
    w = section.window.label(lang)
    _say(
        out,
        lang,
        f"Stages ({w}): customers, and the share who got at least that far",
        f"阶段（{w}）：客户数，以及至少达到该阶段的比例",
    )
    head = (
        ("job", "stage", "customers", "share", "reached", "from previous")
        if lang == "en"
        else ("职能", "阶段", "客户数", "占比", "达到", "上一阶段转化")
    )
    rows: list[tuple[str, ...]] = []
    job: Job | None = None
    for step in section.steps:
        rows.append(
            (
                step.job.label(lang) if step.job is not job else "",
                f"{int(step.stage)} {step.stage.label(lang)}",
                f"{step.customers:,}",
                _pct(step.customers, section.customers),
                f"{step.reached:,}",
                "" if step.conversion is None else f"{step.conversion:.1%}",
            )
        )
        job = step.job
    _table(out, head, rows, right=(2, 3, 4, 5))


def _health(out: TextIO, lang: str, section: HealthSection) -> None:
    buyers, w = section.buyers, section.window.label(lang)
    _say(
        out,
        lang,
        f"Health of the {buyers:,} buying relationships ({w}, by the purchase rhythm)",
        f"{buyers:,} 个购买关系的健康状况（{w}，按购买节奏）",
    )
    head = ("status", "customers", "share") if lang == "en" else ("状态", "客户数", "占比")
    rows = [(s.label(lang), f"{n:,}", _pct(n, buyers)) for s, n in section.counts.items()]
    _table(out, head, rows, right=(1, 2))


def _loyalty(out: TextIO, lang: str, section: LoyaltySection) -> None:
    w, soon = section.window.label(lang), section.expiring_window.label(lang)
    total = sum(t.customers for t in section.tiers)
    _say(out, lang, f"Loyalty tiers and points ({w})", f"会员等级与积分（{w}）")
    head = ("tier", "customers", "share") if lang == "en" else ("等级", "客户数", "占比")
    rows = [(t.label(lang), f"{t.customers:,}", _pct(t.customers, total)) for t in section.tiers]
    _table(out, head, rows, right=(1, 2))
    _say(
        out,
        lang,
        f"  points outstanding: {section.points_outstanding:,}; expiring in the {soon}: "
        f"{section.points_expiring:,}",
        f"  未使用积分：{section.points_outstanding:,}；{soon}内到期：{section.points_expiring:,}",
    )


def _segments(out: TextIO, lang: str, segments: SegmentSection | Missing) -> None:
    if isinstance(segments, Missing):
        _missing(out, lang, "RFM segments", "RFM 分群", segments)
    else:
        w = segments.window.label(lang)
        _say(
            out,
            lang,
            f"Value of the {segments.buyers:,} buyers ({w}): RFM segments",
            f"{segments.buyers:,} 位购买客户的价值（{w}）：RFM 分群",
        )
        head = ("segment", "customers", "share") if lang == "en" else ("分群", "客户数", "占比")
        ranked = sorted(segments.counts.items(), key=lambda kv: -kv[1])
        rows = [(s.label(lang), f"{n:,}", _pct(n, segments.buyers)) for s, n in ranked if n]
        _table(out, head, rows, right=(1, 2))


def _pareto(out: TextIO, lang: str, p: ParetoSection | Missing) -> None:
    """The 80/20 figures and the ABC classes."""
    if isinstance(p, Missing):
        _missing(out, lang, "  Pareto", "  二八法则", p)
    else:
        w = p.window.label(lang)
        _say(
            out,
            lang,
            f"  Pareto ({w}): the top {p.top_fraction:.0%} of buyers bring "
            f"{p.value_share_of_top:.1%} of revenue; {p.customers_for_value:,} buyers "
            f"({p.customer_share_for_value:.1%}) make {p.value_fraction:.0%}; Gini {p.gini:.2f}",
            f"  二八法则（{w}）：前{p.top_fraction:.0%}的客户贡献{p.value_share_of_top:.1%}的收入；"
            f"{p.customers_for_value:,}位客户（{p.customer_share_for_value:.1%}）贡献"
            f"{p.value_fraction:.0%}；基尼系数 {p.gini:.2f}",
        )
        _say(
            out,
            lang,
            f"  ABC classes ({w}): "
            + ", ".join(
                f"{c.label(lang)} {n:,} ({p.abc_value_shares[c]:.0%} of revenue)"
                for c, n in p.abc_counts.items()
            ),
            f"  ABC 分类（{w}）："
            + "，".join(
                f"{c.label(lang)} {n:,}（收入占{p.abc_value_shares[c]:.0%}）"
                for c, n in p.abc_counts.items()
            ),
        )


def _clusters(out: TextIO, lang: str, clusters: ClusterSection | Missing) -> None:
    if isinstance(clusters, Missing):
        _missing(out, lang, "  Clusters", "  聚类", clusters)
        return
    w = clusters.window.label(lang)
    _say(out, lang, f"  Clusters (k-means on RFM, {w}):", f"  聚类（基于 RFM 的 k-means，{w}）：")
    head = (
        ("cluster", "customers", "orders", "days since", "spend")
        if lang == "en"
        else ("类别", "客户数", "订单数", "距上次天数", "消费额")
    )
    rows = [
        (
            c.label(lang),
            f"{c.customers:,}",
            f"{c.orders:.1f}",
            f"{c.days_since_last:.0f}",
            f"{c.spend:,.0f}",
        )
        for c in clusters.clusters
    ]
    _table(out, head, rows, right=(1, 2, 3, 4))


def _predicted(
    out: TextIO,
    lang: str,
    value: ValueSection | Missing,
    health: HealthSection,
    fitted_in: float | None,
) -> None:
    """The value model: which, its parameters, the churn warning by P(alive), the top customers."""
    if isinstance(value, Missing):
        _missing(out, lang, "Predicted value", "预测价值", value)
        return
    w, ahead = value.window.label(lang), value.clv_window.label(lang)
    took_en = "" if fitted_in is None else f" in {fitted_in:.1f} s"
    took_zh = "" if fitted_in is None else f"，用时 {fitted_in:.1f} 秒"
    params = ", ".join(f"{k} {v:.3g}" for k, v in value.params.items())
    _say(
        out,
        lang,
        f"Predicted value: {value.model} fitted on {value.customers:,} buyers ({w}){took_en} "
        f"({params})",
        f"预测价值：{value.model} 模型，基于 {value.customers:,} 位购买客户（{w}）{took_zh}"
        f"（{params}）",
    )
    if lang == "zh":
        tried = "，".join(
            f"{name} {'未能拟合' if ll is None else f'{ll:,.1f}'}"
            for name, ll in value.candidates.items()
        )
        held = "；最大似然落在参数边界，已用弱先验拟合" if value.boundary else ""
        out.write(f"  按对数似然选择模型（{tried}）{held}\n")
    else:
        out.write(f"  {value.reason}\n")
        if value.spend_note:
            out.write(f"  {value.spend_note[0].upper()}{value.spend_note[1:]}.\n")
    at_risk, rhythm = value.statuses[Status.AT_RISK], health.counts[Status.AT_RISK]
    _say(
        out,
        lang,
        f"  churn warning by P(alive) < {value.at_risk_p_alive:.0%}: {at_risk:,} at risk "
        f"(the rhythm rule alone: {rhythm:,})",
        f"  按存活概率低于{value.at_risk_p_alive:.0%}预警：{at_risk:,} 位流失预警"
        f"（仅按购买节奏：{rhythm:,} 位）",
    )
    if value.clv_missing is not None:
        out.write(f"  {value.clv_missing.text('zh' if lang == 'zh' else 'en')}\n")
        return
    head = (
        ("customer", "orders", "P(alive)", "CLV")
        if lang == "en"
        else ("客户", "订单数", "存活概率", "CLV")
    )
    rows = [(c.customer_id, f"{c.orders}", f"{c.p_alive:.0%}", f"{c.clv:,.0f}") for c in value.top]
    _say(
        out,
        lang,
        f"  Top customers by predicted value (CLV, {ahead}):",
        f"  预测价值最高的客户（CLV，{ahead}）：",
    )
    _table(out, head, rows, right=(1, 2, 3))
    _say(
        out,
        lang,
        f"  value of the whole base in the {ahead}: {value.clv_total or 0:,.0f}",
        f"  全部客户{ahead}预测价值：{value.clv_total or 0:,.0f}",
    )


#: The KPIs shown, with their English and Chinese names and how each is written.
_KPIS = (
    ("buyers", "buyers", "购买客户", "{:,}"),
    ("orders", "orders", "订单数", "{:,}"),
    ("revenue", "revenue", "收入", "{:,.2f}"),
    ("average_order_value", "average order value", "客单价", "{:,.2f}"),
    ("orders_per_customer", "orders per buyer", "人均订单数", "{:.2f}"),
    ("repurchase_rate", "repeat rate", "复购率", "{:.1%}"),
    ("retention_rate", "retention rate", "留存率", "{:.1%}"),
    ("churn_rate", "churn rate", "流失率", "{:.1%}"),
    ("returning_revenue_share", "revenue from returning buyers", "老客户收入占比", "{:.1%}"),
    ("discount_share", "orders at a discount", "折扣订单占比", "{:.1%}"),
    ("complaint_rate", "complaints per order", "投诉率", "{:.1%}"),
    ("nps", "NPS", "NPS", "{:.0f}"),
    ("csat", "CSAT", "满意度", "{:.1%}"),
    ("referrals", "referrals", "推荐客户", "{:,}"),
    ("referrals_converted", "referrals who bought", "推荐成交", "{:,}"),
)


def _kpis(out: TextIO, lang: str, section: KpiSection | Missing) -> None:
    if isinstance(section, Missing):
        _missing(out, lang, "KPIs", "关键指标", section)
        return
    _say(out, lang, "KPIs by window", "关键指标（按时间窗口）")
    head = ("KPI" if lang == "en" else "指标", *(p.window.label(lang) for p in section.periods))
    rows = []
    for key, en, zh, form in _KPIS:
        values = [getattr(p.kpis, key) for p in section.periods]
        rows.append(
            (zh if lang == "zh" else en, *("-" if v is None else form.format(v) for v in values))
        )
    _table(out, head, rows, right=tuple(range(1, len(head))))


def _plan_report(
    out: TextIO, lang: str, plan: Plan, timezone: str, seconds: float | None = None
) -> None:
    """Today's follow-ups: counts by rule, channel and purpose; held back by reason; examples."""

    as_of = plan.as_of.astimezone(zone(timezone))

    took = "" if seconds is None else f" (planned in {seconds:.1f} s)"
    _say(
        out,
        lang,
        f"Follow-ups due by {as_of:%Y-%m-%d %H:%M} {timezone}: {len(plan.due):,} to send, "
        f"{len(plan.held):,} held back{took}",
        f"截至 {as_of:%Y-%m-%d %H:%M} {timezone} 的跟进：待发送 {len(plan.due):,} 条，"
        f"暂缓 {len(plan.held):,} 条",
    )
    for title, counts in (
        (("by rule", "按规则"), Counter(f.rule for f in plan.due)),
        (("by channel", "按渠道"), Counter(f.channel or "-" for f in plan.due)),
        (("by purpose", "按目的"), Counter(f.purpose.value for f in plan.due)),
        (("held back, by reason", "暂缓原因"), Counter(h.hold.value for h in plan.held)),
    ):
        if counts:
            line = ", ".join(f"{k} {n:,}" for k, n in counts.most_common(8))
            _say(out, lang, f"  {title[0]}: {line}", f"  {title[1]}：{line}")
    examples = list(plan.due[:3]) + [h.follow_up for h in plan.held[:2]]
    reasons = [f.reason for f in plan.due[:3]] + [h.reason for h in plan.held[:2]]
    for f, reason in zip(examples, reasons, strict=True):
        when = f.due_at.strftime("%Y-%m-%d %H:%M")
        out.write(
            f"  - {f.customer_id} {f.rule} via {f.channel or '-'} at {when}: {reason.text('zh' if lang == 'zh' else 'en')}\n"
        )


#: Channel names a plan may use; the command line sends them all to one place.
_CHANNEL_NAMES = ("sms", "email", "wechat", "app_push", "phone", "post", "task", "visit")


def _file_channels(path: Path) -> dict[str, Channel]:

    return {name: JsonLinesChannel(path, name=name, deduplicate=True) for name in _CHANNEL_NAMES}


def _console_channels(out: TextIO) -> dict[str, Channel]:

    return {name: ConsoleChannel(name, stream=out) for name in _CHANNEL_NAMES}


def _dispatch_report(out: TextIO, lang: str, report: DispatchReport, where: Path | None) -> None:
    counts = ", ".join(f"{k} {n:,}" for k, n in sorted(report.counts().items())) or "nothing due"
    place = f" to {where}" if where is not None else ""
    _say(
        out,
        lang,
        f"Dispatched{place}: {counts}",
        f"已发送{('至 ' + str(where)) if where is not None else ''}：{counts}",
    )
    for r in report.results[:10]:
        out.write(f"  - {r.key} via {r.channel}: {r.outcome.value}\n")
    if len(report.results) > 10:
        _say(
            out,
            lang,
            f"  ... and {len(report.results) - 10:,} more (lifecycle dispatch --format json lists all)",
            f"  ……另有 {len(report.results) - 10:,} 条",
        )


def _remove_shop_file(db: Path) -> None:
    """Delete ``db`` and its WAL files, but only when it is a lifecycle SQLite file."""

    try:
        with db.open("rb") as f:
            header = f.read(16)
    except OSError as e:
        raise UsageError(f"cannot read {db}: {e.strerror}") from None
    if header and header != b"SQLite format 3\x00":
        raise UsageError(f"{db} is not an SQLite file; refusing to delete it")
    if header:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        except sqlite3.DatabaseError:
            tables = set()
        finally:
            conn.close()
        if "lifecycle_meta" not in tables:
            raise UsageError(f"{db} is not a lifecycle shop; refusing to delete it")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


def _examples(stages: dict[Stage, list[str]]) -> list[str]:
    """Ten customers: the first of each stage, then more from the higher stages."""
    chosen = [ids[0] for ids in stages.values() if ids]
    for stage in reversed(Stage):
        for cid in stages[stage][1:]:
            if len(chosen) >= 10:
                return chosen
            chosen.append(cid)
            break
    return chosen[:10]


def _pct(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "-"


def _width(text: str) -> int:
    """Columns ``text`` takes on a terminal: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _table(
    out: TextIO, head: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()
) -> None:
    widths = [max(_width(r[i]) for r in (head, *rows)) for i in range(len(head))]
    for row in (head, *rows):
        cells = []
        for i, cell in enumerate(row):
            pad = " " * (widths[i] - _width(cell))
            cells.append(pad + cell if i in right else cell + pad)
        out.write("  " + "  ".join(cells).rstrip() + "\n")


def _say(out: TextIO, lang: str, en: str, zh: str) -> None:
    out.write((zh if lang == "zh" else en) + "\n")
