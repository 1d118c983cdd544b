"""The command line: --version, the demo, and one-line errors with documented exit codes."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

import lifecycle as lc
from lifecycle.cli import main
from lifecycle.report import ClusterSection, ValueSection


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"lifecycle {lc.__version__}"


def test_python_dash_m_runs_the_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lifecycle", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert lc.__version__ in done.stdout


def test_no_command_prints_help_and_exits_2() -> None:
    code, text = run()
    assert code == 2
    assert "demo" in text


def test_the_demo_reports_funnel_health_and_ten_customers(tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    code, text = run("demo", "--customers", "300", "--db", str(db))
    assert code == 0, text
    assert db.exists()
    for stage in lc.Stage:
        assert f"{int(stage)} {stage.label_en}" in text
    for status in lc.Status:
        assert status.label_en in text
    assert "from previous" in text
    assert "Ten customers and why" in text
    for tier in ("Member", "Silver", "Gold", "Platinum"):
        assert tier in text
    assert "points outstanding" in text
    assert "RFM segments" in text
    assert "Pareto (all time): the top 20% of buyers bring" in text
    assert "key customers" in text
    assert "churn warning by P(alive)" in text
    assert "repeat rate" in text
    assert text.count("\n    - ") >= 10  # every example shows its reasons
    with lc.Lifecycle.open(db) as shop:
        assert len(list(shop.store.customer_ids())) == 300


def test_running_the_demo_again_records_nothing_twice(tmp_path: Path) -> None:
    db = str(tmp_path / "shop.db")
    assert run("demo", "--customers", "50", "--db", db)[0] == 0
    code, text = run("demo", "--customers", "50", "--db", db)
    assert code == 0
    assert "nothing recorded twice" in text


def test_the_demo_speaks_chinese(tmp_path: Path) -> None:
    code, text = run("demo", "--customers", "300", "--db", str(tmp_path / "d.db"), "--lang", "zh")
    assert code == 0
    assert "猜想客户" in text
    assert "流失预警" in text
    assert "十位客户" in text


def test_another_shop_in_the_same_file_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "shop.db")
    assert run("demo", "--customers", "50", "--db", db)[0] == 0
    capsys.readouterr()
    code, _ = run("demo", "--customers", "50", "--seed", "9", "--db", db)
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert "--fresh" in err
    assert "Traceback" not in err
    code, text = run("demo", "--customers", "50", "--seed", "9", "--db", db, "--fresh")
    assert code == 0, text


def test_fresh_refuses_to_delete_a_file_that_is_not_a_shop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me")
    code, _ = run("demo", "--customers", "10", "--db", str(notes), "--fresh")
    assert code == 2
    assert "refusing" in capsys.readouterr().err
    assert notes.read_text() == "keep me"


def test_a_directory_is_not_a_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run("demo", "--db", str(tmp_path))
    assert code == 2
    assert "directory" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [["demo", "--customers", "0"], ["demo", "--lang", "fr"], ["nope"]])
def test_usage_mistakes_exit_2_without_a_traceback(
    bad: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(*bad)[0] == 2
    err = capsys.readouterr().err
    assert "error" in err
    assert "Traceback" not in err


def test_import_an_order_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    export = tmp_path / "orders.csv"
    export.write_text(
        "order_id,customer_id,amount,placed_at,paid_at\n"
        "o1,c1,10.00,2026-01-01 10:00,2026-01-01 10:05\n"
        "o2,c1,12.00,2026-02-01 10:00,2026-02-01 10:05\n",
        encoding="utf-8",
    )
    db = str(tmp_path / "shop.db")
    code, text = run("import", str(export), "--db", db)
    assert code == 0, text
    assert "orders: 2 new, 0 updated, 0 unchanged, 0 refused; customers: 1 new" in text
    code, text = run("import", str(export), "--db", db)
    assert "orders: 0 new, 0 updated, 2 unchanged" in text
    assert "0 events recorded" in text
    with lc.Lifecycle.open(db) as shop:
        assert shop.assess("c1").stage is lc.Stage.REPEAT


def test_import_refuses_a_bad_file_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = tmp_path / "orders.csv"
    export.write_text(
        "order_id,customer_id,amount,placed_at\no1,c1,-5,2026-01-01\n", encoding="utf-8"
    )
    code, _ = run("import", str(export), "--db", str(tmp_path / "shop.db"))
    err = capsys.readouterr().err
    assert code == 1
    assert "row 2, column 'amount'" in err
    assert err.count("\n") == 1
    code, _ = run("import", str(tmp_path / "nope.csv"))
    assert code == 2


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    db = str(tmp_path_factory.mktemp("shop") / "demo.db")
    assert main(["demo", "--customers", "120", "--db", db], out=io.StringIO()) == 0
    return db


AT = "2026-11-01T00:00+08:00"


def test_assess_in_every_format(demo_db: str) -> None:
    code, text = run("assess", "c00010", "--db", demo_db, "--at", AT)
    assert code == 0
    assert text.startswith("c00010  ")
    code, text = run(
        "assess", "c00010", "--db", demo_db, "--at", AT, "--format", "json", "--lang", "zh"
    )
    with lc.Lifecycle.open(demo_db) as shop:
        expected = shop.assess("c00010", at=datetime.fromisoformat(AT)).to_dict()
    assert json.loads(text) == expected
    code, text = run("assess", "c00010", "--db", demo_db, "--at", AT, "--format", "csv")
    assert text.splitlines()[0].startswith("customer_id,as_of,stage")


@pytest.fixture(scope="module")
def shop_report(demo_db: str) -> lc.ShopReport:
    with lc.Lifecycle.open(demo_db) as shop:
        return shop.report(datetime.fromisoformat(AT))


def test_report_json_is_the_whole_shop_report(demo_db: str, shop_report: lc.ShopReport) -> None:
    code, text = run("report", "--db", demo_db, "--at", AT, "--format", "json")
    assert code == 0
    data = json.loads(text)
    assert data == json.loads(json.dumps(shop_report.to_dict()))
    assert data["customers"] == 120
    assert sum(s["customers"] for s in data["stages"]["steps"]) == 120
    for section in ("stages", "health", "loyalty", "segments", "pareto", "clusters", "value"):
        assert data[section]["available"] is True, section
    assert {p["window"]["en"] for p in data["kpis"]["periods"]} == {"all time", "last 365 days"}


def test_report_table_shows_every_section_of_the_json(
    demo_db: str, shop_report: lc.ShopReport
) -> None:
    code, text = run("report", "--db", demo_db, "--at", AT)
    assert code == 0
    for title in (
        "Stages (now)",
        "Health of the",
        "Loyalty tiers and points (now)",
        "RFM segments",
        "Pareto (all time)",
        "ABC classes (all time)",
        "Clusters (k-means on RFM, all time)",
        "Predicted value: ",
        "churn warning by P(alive)",
        "Top customers by predicted value (CLV, next 365 days)",
        "KPIs by window",
        "last 365 days",
    ):
        assert title in text, title
    assert isinstance(shop_report.value, ValueSection)
    for c in shop_report.value.top:
        assert c.customer_id in text
    assert isinstance(shop_report.clusters, ClusterSection)
    for cluster in shop_report.clusters.clusters:
        assert cluster.en in text
    code, zh = run("report", "--db", demo_db, "--at", AT, "--lang", "zh")
    assert "关键指标" in zh
    assert "近365天" in zh


def test_report_csv_has_every_figure_of_the_json(demo_db: str) -> None:
    code, text = run("report", "--db", demo_db, "--at", AT, "--format", "csv")
    assert code == 0
    lines = text.splitlines()
    assert lines[0] == "figure,value"
    figures = {line.split(",", 1)[0] for line in lines[1:]}
    assert {"customers", "value.model", "kpis.periods.1.kpis.repurchase_rate"} <= figures


def test_history_in_table_json_and_chinese(demo_db: str) -> None:
    with lc.Lifecycle.open(demo_db) as shop:
        changes = shop.stage_history("c00010", at=datetime.fromisoformat(AT))
    code, text = run("history", "c00010", "--db", demo_db, "--at", AT)
    assert code == 0
    assert text.startswith(f"c00010: {len(changes)} stage changes")
    for c in changes:
        assert f"{c.since:%Y-%m-%d}  {int(c.stage)} {c.stage.label_en}" in text
    code, text = run("history", "c00010", "--db", demo_db, "--at", AT, "--format", "json")
    assert json.loads(text) == [c.to_dict() for c in changes]
    code, text = run("history", "c00010", "--db", demo_db, "--at", AT, "--lang", "zh")
    assert changes[-1].stage.label_zh in text
    assert changes[-1].reasons[0].zh in text


def test_export_and_erase(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "d.db")
    assert run("demo", "--customers", "30", "--db", db)[0] == 0
    code, text = run("export", "c00005", "--db", db)
    assert json.loads(text)["customer_id"] == "c00005"
    assert run("erase", "c00005", "--db", db)[0] == 2  # needs --yes
    assert "--yes" in capsys.readouterr().err
    code, text = run("erase", "c00005", "--db", db, "--yes")
    assert code == 0
    assert "erased" in text


@pytest.mark.parametrize(
    "argv",
    [
        ["assess", "nobody", "--db", "{db}"],
        ["history", "nobody", "--db", "{db}"],
        ["history", "nobody", "--db", "{db}", "--format", "json", "--lang", "zh"],
        ["history", "--db", "{db}"],
        ["export", "nobody", "--db", "{db}"],
        ["erase", "nobody", "--db", "{db}", "--yes"],
        ["report", "--db", "{db}", "--format", "xml"],
        ["assess", "c00001", "--db", "{db}", "--at", "2026-11-01T00:00"],
        ["report", "--db", "/nonexistent/shop.db"],
        ["assess", "c00001", "--db", "{db}", "--policy", "/nonexistent/policy.toml"],
    ],
)
def test_shop_command_mistakes_are_one_line(
    demo_db: str, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = run(*(a.replace("{db}", demo_db) for a in argv))
    err = capsys.readouterr().err
    assert code in (1, 2)
    assert "Traceback" not in err
    assert sum(line.startswith("lifecycle") for line in err.splitlines()) == 1
    last = err.strip().splitlines()[-1]  # argparse prints its usage first
    assert last.startswith("lifecycle")
    assert "error:" in last


def test_an_unexpected_failure_is_one_line_too(
    demo_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(self: lc.Lifecycle, *args: object, **kwargs: object) -> lc.ShopReport:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(lc.Lifecycle, "report", broken)
    code, _ = run("report", "--db", demo_db)
    err = capsys.readouterr().err
    assert code == 1
    assert err == "lifecycle: error: unexpected RuntimeError: disk on fire\n"


def test_policy_defaults_and_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, text = run("policy", "--defaults")
    assert code == 0
    assert "[stage]" in text
    path = tmp_path / "policy.toml"
    path.write_text("[stage]\nrepeat_min_days = 3\n", encoding="utf-8")
    assert run("policy", "--check", str(path)) == (0, f"{path}: the policy loads\n")
    path.write_text("[stage]\nrepeat_min_days = -1\n", encoding="utf-8")
    assert run("policy", "--check", str(path))[0] == 1
    assert "line 2" in capsys.readouterr().err


def test_plan_in_every_format(demo_db: str) -> None:
    code, text = run("plan", "--db", demo_db, "--at", AT)
    assert code == 0
    assert "Follow-ups due by" in text
    code, text = run("plan", "--db", demo_db, "--at", AT, "--format", "json")
    rows = json.loads(text)
    assert {r["state"] for r in rows} >= {"due"}
    assert len({r["key"] for r in rows if r["state"] == "due"}) == sum(
        r["state"] == "due" for r in rows
    )
    code, text = run("plan", "--db", demo_db, "--at", AT, "--format", "csv")
    assert text.splitlines()[0].startswith("customer_id,rule,key")


def test_dispatch_dry_run_then_to_a_file(tmp_path: Path) -> None:
    db = str(tmp_path / "d.db")
    assert run("demo", "--customers", "200", "--db", db)[0] == 0
    # The demo dispatched what was due; a dry run now sends nothing and changes nothing.
    code, text = run("dispatch", "--db", db, "--at", AT, "--dry-run")
    assert code == 0
    assert "dry run" in text
    outbox = tmp_path / "out.jsonl"
    code, text = run("dispatch", "--db", db, "--at", "2026-11-03T12:00+08:00", "--to", str(outbox))
    assert code == 0
    assert "Dispatched" in text
    code, text = run(
        "dispatch",
        "--db",
        db,
        "--at",
        "2026-11-03T12:00+08:00",
        "--to",
        str(outbox),
        "--format",
        "json",
    )
    assert all(r["outcome"] != "sent" for r in json.loads(text))  # nothing is sent twice
    keys = [json.loads(line)["key"] for line in outbox.read_text(encoding="utf-8").splitlines()]
    assert keys  # the first dispatch sent something
    assert len(keys) == len(set(keys))


def test_report_and_demo_on_tiny_shops(tmp_path: Path) -> None:
    export = tmp_path / "orders.csv"
    export.write_text(
        "order_id,customer_id,amount,placed_at,paid_at\n"
        "o1,c1,10.00,2026-01-01 10:00,2026-01-01 10:05\n"
        "o2,c2,10.00,2026-02-01 10:00,2026-02-01 10:05\n",
        encoding="utf-8",
    )
    db = str(tmp_path / "tiny.db")
    assert run("import", str(export), "--db", db)[0] == 0
    code, text = run("report", "--db", db, "--at", "2026-03-01T00:00+00:00")
    assert code == 0, text
    assert "Too few" in text
    assert "Predicted value: The value model cannot be fitted" in text
    code, text = run("report", "--db", db, "--at", "2026-03-01T00:00+00:00", "--format", "json")
    data = json.loads(text)
    assert data["clusters"]["available"] is False
    assert data["value"]["available"] is False
    assert data["value"]["why"]["en"].startswith("The value model cannot be fitted")
    for n in ("1", "3"):
        code, text = run("demo", "--customers", n, "--db", str(tmp_path / f"d{n}.db"))
        assert code == 0, text


def test_a_negative_seed_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("demo", "--seed", "-1")[0] == 2
    assert "Traceback" not in capsys.readouterr().err


def test_import_with_a_policy_in_json_and_chinese(tmp_path: Path) -> None:
    export = tmp_path / "orders.csv"
    export.write_text(
        "order_id,customer_id,amount,placed_at,paid_at\no1,c1,10.00,2026-01-01 07:00,2026-01-01 07:05\n",
        encoding="utf-8",
    )
    policy = tmp_path / "policy.toml"
    policy.write_text('timezone = "Asia/Shanghai"\n', encoding="utf-8")
    db = str(tmp_path / "shop.db")
    code, text = run("import", str(export), "--db", db, "--policy", str(policy), "--format", "json")
    assert code == 0
    data = json.loads(text)
    assert (data["orders"]["new"], data["recorded"] > 0, data["refused"]) == (1, True, [])
    code, text = run("import", str(export), "--db", db, "--policy", str(policy), "--lang", "zh")
    assert "未变 1" in text
    with lc.Lifecycle.open(db) as shop:
        paid = next(e for e in shop.history("c1") if isinstance(e, lc.OrderPaid))
    assert paid.at.utcoffset() == timedelta(hours=8)  # the policy's zone read the file's times


def test_the_demo_takes_a_policy(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('timezone = "Asia/Shanghai"\n[status]\nlapsed_days = 200\n', encoding="utf-8")
    code, text = run(
        "demo", "--customers", "80", "--db", str(tmp_path / "d.db"), "--policy", str(policy)
    )
    assert code == 0, text


@pytest.mark.parametrize(
    "argv",
    [
        ["assess", "c00001", "--db", "{db}", "--policy", "/nonexistent/policy.toml"],
        ["plan", "--db", "{db}", "--policy", "/nonexistent/policy.toml"],
        ["whatif", "--db", "{db}", "--policy", "/nonexistent/policy.toml"],
        ["policy", "--check", "/nonexistent/policy.toml"],
    ],
)
def test_a_policy_file_that_is_not_there_is_a_usage_mistake(
    demo_db: str, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = run(*(a.replace("{db}", demo_db) for a in argv))
    assert code == 2
    assert (
        capsys.readouterr().err.strip()
        == "lifecycle: error: no such file: /nonexistent/policy.toml"
    )
