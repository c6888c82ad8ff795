"""Intake: push API, drop folder and database pull, all through :class:`Intake` into the outbox.

``ggzy node run`` plugs this package in with :func:`plug`: one :class:`Intake` (asking the disk
guard the service publishes as ``components["disk_guard"]``, and waking the uploader of each channel
that received records), the local push API on ``api_host:api_port``, the drop folder when
``drop_dir`` is set, and one polling task per database pull source.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ggzy.node.intake.service import DiskGuard, Intake, IntakeResult, IntakeSummary, Outcome

if TYPE_CHECKING:
    from ggzy.node.service import NodeService

__all__ = ["DiskGuard", "Intake", "IntakeResult", "IntakeSummary", "Outcome", "plug"]

DROP_SCAN_SECONDS = 1.0


def plug(service: NodeService) -> None:
    """Add intake to a node service (called by ``ggzy node run``)."""
    import uvicorn

    from ggzy.node.intake.dbpull import DatabasePull
    from ggzy.node.intake.dropdir import DropDirectory
    from ggzy.node.intake.push_api import create_intake_app
    from ggzy.security.tls import server_tls_options

    ctx = service.ctx
    settings = ctx.settings

    def wake_uploaders(results: list[IntakeResult]) -> None:
        for channel in sorted({r.channel for r in results if r.outcome == Outcome.ACCEPTED and r.channel}):
            service.notify(channel)

    intake = Intake(ctx, disk_guard=service.components.get("disk_guard"), on_stored=wake_uploaders)
    service.components["intake"] = intake
    app = create_intake_app(ctx, intake)
    app.state.node_service = service  # the portal's 总览 shows the uploaders' circuit breakers
    config = uvicorn.Config(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_level="warning",
        access_log=False,
        proxy_headers=False,  # only node.trusted_proxies, read by the app (ggzy.web.network)
        **server_tls_options(settings.api_tls_cert, settings.api_tls_key, settings.api_tls_client_ca),
    )
    service.add_server("intake-api", uvicorn.Server(config))
    if settings.drop_dir is not None:
        drop = DropDirectory(ctx, intake, settings.drop_dir)
        service.add_task("intake-drop", DROP_SCAN_SECONDS, drop.scan_once)
    for source in settings.pull:
        pull = DatabasePull(ctx, intake, source)

        def poll(pull: DatabasePull = pull) -> None:
            while pull.poll_once().more:  # a backlog: keep going until a poll comes back short
                if service.stopping:
                    return

        service.add_task(f"intake-pull-{source.name}", source.interval_seconds, poll)
