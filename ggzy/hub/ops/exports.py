"""Exports for officials: the same report as an xlsx workbook (openpyxl) or a Chinese PDF (reportlab).

A :class:`Report` is a title and a list of tables; :func:`assessment_report`,
:func:`orders_report` and :func:`notice_report` build one, :func:`write_xlsx` and :func:`write_pdf`
write it. The PDF uses reportlab's built-in CID font ``STSong-Light`` (Adobe's Chinese simplified
font, referenced not embedded), so no font file is needed on the machine that writes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ggzy.hub.ops.assessment import Assessment

__all__ = [
    "Report",
    "Section",
    "assessment_report",
    "notice_report",
    "orders_report",
    "write_pdf",
    "write_xlsx",
]

CJK_FONT = "STSong-Light"


@dataclass(frozen=True, slots=True)
class Section:
    heading: str
    headers: list[str]
    rows: list[list[Any]]


@dataclass(frozen=True, slots=True)
class Report:
    title: str
    subtitle: str = ""
    sections: list[Section] = field(default_factory=list)


def _verdict(met: bool | None) -> str:
    return {True: "达标", False: "未达标", None: "无数据"}[met]


def _value(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.2%}" if 0 <= value <= 1 else f"{value:.2f}"
    return "—" if value is None else value


def assessment_report(assessments: Sequence[Assessment]) -> Report:
    period = assessments[0].period.label if assessments else ""
    overview = Section(
        "考核总览",
        ["省份", "名称", "得分", *[i.name_zh for i in assessments[0].indicators]]
        if assessments
        else ["省份"],
        [
            [a.province, a.name_zh or "", _value(a.score), *[_verdict(i.met) for i in a.indicators]]
            for a in assessments
        ],
    )
    details = [
        Section(
            f"{a.province} {a.name_zh or ''} 指标明细",
            ["指标", "数值", "目标", "结论", "说明", "依据"],
            [
                [i.name_zh, _value(i.value), _value(i.target), _verdict(i.met), i.note, i.evidence]
                for i in a.indicators
            ],
        )
        for a in assessments
    ]
    return Report(
        f"省级平台运行考核（{period}）", "权重默认相等，可在 hub.ops.weights 中配置", [overview, *details]
    )


_ORDER_HEADERS = ["编号", "省份", "第三十五条", "依据", "期间", "下达时间", "整改期限", "关闭时间", "状态"]


def _order_row(order: dict[str, Any]) -> list[Any]:
    return [
        order["id"],
        order["province"],
        f"({order['condition']}) {order['condition_zh']}",
        order["basis"],
        order["period"],
        order["issued_on"],
        order["deadline_date"],
        order["closed_on"] or "",
        order.get("notice_zh") or ("已关闭" if order["status"] == "closed" else "整改中"),
    ]


def orders_report(orders: Sequence[dict[str, Any]]) -> Report:
    return Report(
        "责令限期改正通知", "", [Section("整改通知", _ORDER_HEADERS, [_order_row(o) for o in orders])]
    )


def notice_report(orders: Sequence[dict[str, Any]]) -> Report:
    return Report(
        "拒不改正情况通报",
        "逾期未改正或逾期后才改正的整改通知（第三十五条）",
        [Section("通报名单", _ORDER_HEADERS, [_order_row(o) for o in orders])],
    )


def write_xlsx(report: Report, path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    from ggzy.interchange.spreadsheet import safe_row

    book = Workbook()
    book.remove(book.active)
    used: set[str] = set()
    for number, section in enumerate(report.sections, 1):
        # Excel sheet names: at most 31 characters, unique, none of []:*?/\
        name = "".join(c for c in section.heading if c not in "[]:*?/\\")[:28] or f"表{number}"
        if name in used:
            name = f"{name[:25]}-{number}"
        used.add(name)
        sheet = book.create_sheet(name)
        sheet.append([report.title])
        sheet.append([report.subtitle] if report.subtitle else [])
        sheet.append(section.headers)
        for cell in sheet[3]:
            cell.font = Font(bold=True)
        for row in section.rows:  # provinces' own text (findings, notes): never a formula
            sheet.append(safe_row(str(v) if isinstance(v, list | dict) else v for v in row))
    book.save(path)


def write_pdf(report: Report, path: Path) -> None:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    if CJK_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
    title = ParagraphStyle("title", fontName=CJK_FONT, fontSize=16, leading=22)
    heading = ParagraphStyle("heading", fontName=CJK_FONT, fontSize=12, leading=18)
    cell = ParagraphStyle("cell", fontName=CJK_FONT, fontSize=8, leading=10, wordWrap="CJK")
    story: list[Any] = [Paragraph(report.title, title)]
    if report.subtitle:
        story.append(Paragraph(report.subtitle, cell))
    for section in report.sections:
        story += [Spacer(1, 8), Paragraph(section.heading, heading)]
        data = [[Paragraph(str(h), cell) for h in section.headers]]
        data += [[Paragraph(_escape(str(v)), cell) for v in row] for row in section.rows]
        table = Table(data, repeatRows=1)
        table.setStyle(
            TableStyle(
                [
                    ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ]
            )
        )
        story.append(table)
    SimpleDocTemplate(str(path), pagesize=landscape(A4), title=report.title).build(story)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
