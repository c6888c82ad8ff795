"""What a newcomer meets on the command line: help with examples, brackets that survive Rich,
``--config`` on every command, ``validate`` on a directory, ``hub migrate`` saying what it did."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

from ggzy.cli import app
from ggzy.simulate import simulate

runner = CliRunner()


def test_every_command_takes_config_the_same_way() -> None:
    pending: list[tuple[str, Any]] = [("ggzy", typer.main.get_command(app))]
    seen = 0
    while pending:
        name, command = pending.pop()
        pending += [(f"{name} {sub}", child) for sub, child in getattr(command, "commands", {}).items()]
        if command.callback is None:
            continue
        seen += 1
        options = {p.name: p for p in command.params}
        assert "config" in options, f"ggzy {name} has no --config"
        assert options["config"].opts == ["--config", "-c"], name
    assert seen > 60


def test_top_level_help_shows_examples_in_chinese() -> None:
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    assert "示例" in result.output and "ggzy validate" in result.output and "--config" in result.output


def test_square_brackets_in_help_are_shown_not_swallowed_as_markup() -> None:
    result = runner.invoke(app, ["node", "run", "--help"], env={"COLUMNS": "200"})
    assert "[node]" in result.output and "[hub]" in result.output


def test_an_unknown_config_file_is_a_clear_error_for_any_command(tmp_path: Path) -> None:
    result = runner.invoke(app, ["spec", "list", "--config", str(tmp_path / "none.toml")])
    assert result.exit_code == 2 and "E-CONFIG-MISSING" in result.output


def test_config_is_read_by_a_command_that_never_declared_it(tmp_path: Path) -> None:
    """``validate`` reads [validation] from the file given with --config, as with GGZY_CONFIG."""
    records = [item.record for item in simulate("35", seed=3, transactions=2, start=dt.datetime(2026, 11, 1))]
    tender = next(r for r in records if r["table"] == "TENDER_PROJECT")
    code = tender["data"]["UNIFIED_DEAL_CODE"]
    tender["data"] = {**tender["data"], "UNIFIED_DEAL_CODE": code[:-1] + ("0" if code[-1] != "0" else "1")}
    data = tmp_path / "a.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    strict = tmp_path / "strict.toml"
    strict.write_text('[validation]\ndeal_code_check = "strict"\n', encoding="utf-8")
    plain = runner.invoke(app, ["validate", str(data), "-q"])
    configured = runner.invoke(app, ["validate", str(data), "-q", "--config", str(strict)])
    assert plain.exit_code == 0, plain.output  # a wrong check character only warns by default
    assert configured.exit_code == 1 and "E-DEAL-CODE-CHECK" in configured.output


def test_validate_takes_a_directory(tmp_path: Path) -> None:
    records = [item.record for item in simulate("35", seed=3, transactions=3, start=dt.datetime(2026, 11, 1))]
    folder = tmp_path / "uploads"
    folder.mkdir()
    half = len(records) // 2
    for name, part in (("1.jsonl", records[:half]), ("2.jsonl", records[half:])):
        (folder / name).write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part), encoding="utf-8"
        )
    (folder / "readme.txt").write_text("not data", encoding="utf-8")
    result = runner.invoke(app, ["validate", str(folder), "-q"])
    assert result.exit_code == 0, result.output
    assert f"共 {len(records)} 条记录" in result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = runner.invoke(app, ["validate", str(empty)])
    assert nothing.exit_code == 2 and "E-INPUT-EMPTY" in nothing.output


def test_hub_migrate_says_it_created_a_new_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    first = runner.invoke(app, ["hub", "migrate", "--db", url])
    assert first.exit_code == 0, first.output
    assert "创建" in first.output and "已是最新" not in first.output
    again = runner.invoke(app, ["hub", "migrate", "--db", url])
    assert "已是最新结构" in again.output and "未作改动" in again.output
