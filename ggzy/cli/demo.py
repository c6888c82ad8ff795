"""``ggzy demo``: what ``make run`` shows until the hub and node exist — a sample province, validated."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer

from ggzy.cli.app import app
from ggzy.cli.console import err, out
from ggzy.cli.validate import _render_table
from ggzy.interchange import read_path
from ggzy.simulate import simulate
from ggzy.spec import load_regions
from ggzy.validation import Validator
from ggzy.validation.report import Report


@app.command("demo")
def demo_command(
    province: Annotated[
        str, typer.Option("--province", help="省份代码（GB/T 2260 前两位），如 35 福建")
    ] = "35",
    transactions: Annotated[int, typer.Option("--transactions", help="模拟交易数")] = 200,
    errors: Annotated[float, typer.Option("--errors", help="注入缺陷的比例")] = 0.05,
    workdir: Annotated[Path, typer.Option("--workdir", help="样例数据目录")] = Path("var/demo"),
) -> None:
    """生成一个模拟省份的交易数据并按数据规范校验，打印中文报告。"""
    provinces = load_regions().provinces()
    if province not in provinces:
        err.print(f"[red]E-CLI-PROVINCE[/] 未知的省份代码“{province}”(unknown province prefix)")
        raise typer.Exit(2)
    workdir.mkdir(parents=True, exist_ok=True)
    sample = workdir / f"sample-{province}.jsonl"
    start = dt.datetime.combine(dt.date.today() - dt.timedelta(days=30), dt.time(8, 0))
    with sample.open("w", encoding="utf-8") as handle:
        count = 0
        for item in simulate(province, seed=2026, transactions=transactions, start=start, error_rate=errors):
            handle.write(json.dumps(item.record, ensure_ascii=False) + "\n")
            count += 1
    out.print(
        f"[bold]模拟省份[/]：{provinces[province]}（{province}），{transactions} 笔交易，共 {count} 条记录 → {sample}"
    )
    report = Report()
    for verdict in Validator().validate_items(read_path(sample)):
        report.add(verdict)
    _render_table(report)
    out.print(
        f"\n逐条结果：ggzy validate {sample} --format json；Excel：ggzy validate {sample} --format xlsx"
    )
