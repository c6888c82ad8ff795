"""``ggzy spec``: read the data specification in the terminal."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ggzy.cli.app import app
from ggzy.cli.console import err, out
from ggzy.security.permissions import OFFLINE_EXEMPTION, cli_exempt
from ggzy.spec import Domain, load_spec

spec_app = typer.Typer(help="数据规范：数据表、字段与代码集 (the data specification).", no_args_is_help=True)
app.add_typer(spec_app, name="spec")


@spec_app.command("list")
@cli_exempt(OFFLINE_EXEMPTION)
def list_tables(
    domain: Annotated[
        Domain | None, typer.Option("--domain", "-d", help="只看一个业务领域，如 construction")
    ] = None,
) -> None:
    """列出规范中的全部数据表（DATA_NO、表名、领域、信息类别、字段数）。"""
    spec = load_spec()
    table = Table(title=f"公共资源交易平台系统数据规范 V{spec.version}", title_justify="left")
    for column in ("DATA_NO", "表名 table", "中文名", "领域", "信息类别", "字段数", "业务主键"):
        table.add_column(column)
    rows = sorted(spec.tables.values(), key=lambda t: int(t.data_no))
    for t in rows:
        if domain and t.domain is not domain:
            continue
        table.add_row(
            t.data_no,
            t.name,
            t.name_zh,
            t.domain.label_zh,
            t.info_class.label_zh,
            str(len(t.fields)),
            "+".join(t.business_key),
        )
    out.print(table)


@spec_app.command("show")
@cli_exempt(OFFLINE_EXEMPTION)
def show_table(
    table_name: Annotated[str, typer.Argument(metavar="TABLE", help="表名或 DATA_NO，如 SECTION 或 502")],
) -> None:
    """显示一张数据表的全部字段：字段名、中文名、类型长度、必填、代码集、公开范围、隐私级别。"""
    spec = load_spec()
    table = spec.table(table_name)
    if table is None:
        err.print(
            f"[red]E-SPEC-TABLE[/] 规范中没有数据表“{table_name}”(no such table)；用 ggzy spec list 查看全部。"
        )
        raise typer.Exit(2)
    out.print(
        f"[bold]{table.data_no} {table.name} {table.name_zh}[/]  领域：{table.domain.label_zh}  "
        f"信息类别：{table.info_class.label_zh}  业务主键：{'+'.join(table.business_key)}"
    )
    if table.parents:
        out.print("上级记录：" + "；".join(f"{p.table}（{', '.join(p.fields)}）" for p in table.parents))
    if table.predecessors:
        out.print("前序环节：" + "；".join(f"{p.table}（{', '.join(p.fields)}）" for p in table.predecessors))
    grid = Table(show_lines=False)
    for column in ("字段 field", "中文名", "类型", "说明", "必填", "代码集", "公开范围", "隐私"):
        grid.add_column(column, overflow="fold")
    privacy_zh = {"none": "", "personal": "个人信息", "secret": "涉密"}
    for f in table.fields:
        grid.add_row(
            f.name,
            f.name_zh,
            f.type,
            f.field_type.describe_zh(),
            "是" if f.required else "否",
            f.codelist or "",
            f.scope.label_zh,
            privacy_zh[f.privacy.value],
        )
    out.print(grid)
