"""Django signals dbconnmgr sends.

``connection_alert`` is sent for every alert :func:`dbconnmgr.alerts.dispatch` delivers
(firing and resolved), after the handlers, with ``sender=Alert`` and ``alert=<Alert>``::

    from django.dispatch import receiver
    from dbconnmgr.signals import connection_alert

    @receiver(connection_alert)
    def page_someone(sender, alert, **kwargs):
        ...

Receivers that raise are logged on ``dbconnmgr.alerts`` and never reach the caller.
"""

from __future__ import annotations

from django.dispatch import Signal

connection_alert = Signal()
