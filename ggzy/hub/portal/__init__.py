"""The hub's web portal (运行监测与管理门户): pages and their query services for people.

Each page reads from a query service that takes the caller's :class:`~ggzy.hub.portal.scope.Scope`
(national, or one province) and answers plain dicts; the routes render them as HTML or JSON.
"""
