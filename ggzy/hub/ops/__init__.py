"""Operations management at the hub (Art. 12, 13, 18, 20, 25–35 of the operation management measures).

Availability from heartbeats, planned outage notices, automatic incidents and their notification,
fault reports, emergency plans and drills, the duty roster, the information register, inspections,
the assessment of each province and the rectification orders of Art. 35. Everything lives in the
hub's database (tables from :func:`ggzy.hub.ops.models.define_ops_tables`) and every change is written
to the hub's audit chain in the same transaction (:class:`ggzy.hub.ops.session.OpsSession`).

The node never imports this package; its own pieces (the link control of a drill, ``ggzy node
doctor``) live in ``ggzy.node`` and talk to the hub through the signed protocol.
"""
