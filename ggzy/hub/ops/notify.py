"""Telling the people on duty about an incident: email over SMTP and a webhook (Art. 25–26).

Recipients are the national duty addresses of the settings plus the province's 运行负责人,
技术负责人 and 值班人员 from its roster. Both channels are optional (no ``smtp_host`` / no
``webhook_url``: that channel is skipped). Each attempt, sent or failed, is recorded in
``ops_notifications``; a failure never stops detection (the incident is already stored).
Sending happens outside any database transaction, so a slow mail server holds no lock.
"""

from __future__ import annotations

import datetime as dt
import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import httpx
from sqlalchemy import Connection, insert

from ggzy.hub.models import ops_tables
from ggzy.hub.ops.incidents import Incident
from ggzy.hub.ops.roster import roster_of
from ggzy.settings import OpsSettings

__all__ = ["Delivery", "Notifier", "incident_message", "recipients"]

NOTIFY_POSTS = ("lead_ops", "lead_tech", "duty")


@dataclass(frozen=True, slots=True)
class Delivery:
    channel: str  # email | webhook
    target: str
    ok: bool
    error: str | None = None


def recipients(
    connection: Connection, settings: OpsSettings, province: str, *, national: bool = True
) -> list[str]:
    """National duty addresses first (unless ``national`` is off), then the province's responsible
    and duty people; no repeats."""
    found = list(settings.national_duty_emails) if national else []
    found += [e.email for e in roster_of(connection, province) if e.post in NOTIFY_POSTS and e.email]
    return list(dict.fromkeys(found))


def incident_message(incident: Incident) -> tuple[str, str]:
    subject = f"【ggzy 运行事件 #{incident.id}】省份 {incident.province}：{incident.title}"
    lines = [
        f"事件编号：{incident.id}",
        f"省份：{incident.province}" + (f"  节点：{incident.node_id}" if incident.node_id else ""),
        f"类型：{incident.to_dict()['trigger_zh'] or '故障报告'}",
        f"开始时间：{incident.started_at.isoformat()}",
        f"内容：{incident.title}",
        "",
        "请值班人员及时处置；省级平台请在规定时限内提交故障报告（ggzy ops incident report）。",
    ]
    return subject, "\n".join(lines)


class Notifier:
    def __init__(
        self,
        settings: OpsSettings,
        *,
        smtp_factory: Callable[..., smtplib.SMTP] = smtplib.SMTP,
        http: httpx.Client | None = None,
    ) -> None:
        self.settings = settings
        self.smtp_factory = smtp_factory
        self.http = http

    def send(self, incident: Incident, to: list[str]) -> list[Delivery]:
        subject, body = incident_message(incident)
        payload = {"event": "ops.incident", "incident": incident.to_dict()}
        return self.send_message(subject, body, to, payload)

    def send_message(self, subject: str, body: str, to: list[str], payload: dict[str, Any]) -> list[Delivery]:
        """Mail ``to`` and post the webhook (each channel when configured); what happened on each."""
        deliveries: list[Delivery] = []
        if self.settings.smtp_host and to:
            deliveries.append(self._email(subject, body, to))
        if self.settings.webhook_url:
            deliveries.append(self._webhook(subject, body, to, payload))
        return deliveries

    def _email(self, subject: str, body: str, to: list[str]) -> Delivery:
        settings = self.settings
        message = EmailMessage()
        message["From"] = settings.smtp_from
        message["To"] = ", ".join(to)
        message["Subject"] = subject
        message.set_content(body)
        target = f"smtp://{settings.smtp_host}:{settings.smtp_port} → {', '.join(to)}"
        try:
            assert settings.smtp_host is not None
            with self.smtp_factory(
                settings.smtp_host, settings.smtp_port, timeout=settings.notify_timeout_seconds
            ) as smtp:
                if settings.smtp_starttls:
                    smtp.starttls()
                if settings.smtp_user:
                    smtp.login(settings.smtp_user, settings.smtp_password or "")
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            return Delivery("email", target[:500], False, f"{type(exc).__name__}: {exc}"[:1000])
        return Delivery("email", target[:500], True)

    def _webhook(self, subject: str, body: str, to: list[str], extra: dict[str, Any]) -> Delivery:
        url = self.settings.webhook_url or ""
        payload: dict[str, Any] = {"subject": subject, "text": body, "recipients": to, **extra}
        try:
            if self.http is not None:
                response = self.http.post(url, json=payload, timeout=self.settings.notify_timeout_seconds)
            else:
                response = httpx.post(url, json=payload, timeout=self.settings.notify_timeout_seconds)
        except httpx.HTTPError as exc:
            return Delivery("webhook", url[:500], False, f"{type(exc).__name__}: {exc}"[:1000])
        if response.status_code >= 400:
            return Delivery("webhook", url[:500], False, f"HTTP {response.status_code}")
        return Delivery("webhook", url[:500], True)


def record_deliveries(
    connection: Connection, incident_id: int, deliveries: list[Delivery], at: dt.datetime
) -> None:
    rows = [
        {
            "incident_id": incident_id,
            "channel": d.channel,
            "target": d.target,
            "at": at,
            "ok": d.ok,
            "error": d.error,
        }
        for d in deliveries
    ]
    if rows:
        connection.execute(insert(ops_tables.notifications), rows)
