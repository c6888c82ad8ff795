"""The node's own portal (交换前置系统门户): a smaller sibling of the hub's, served by the node's local app.

总览 (queues, latency, alerts, last contact, breakers, disk, charts of the last day), 退回记录 (rejects with
reasons, filters, xlsx export, local repair rate), 对账 (recent reconciliation results), 审计 (auditor
only) and 系统管理 (administrator only). Query services are in :mod:`ggzy.node.portal.queries`, routes
in :mod:`ggzy.node.portal.routes`; layout, macros, css, chart script and ECharts come from ``ggzy.web``.
"""

from ggzy.node.portal.routes import install

__all__ = ["install"]
