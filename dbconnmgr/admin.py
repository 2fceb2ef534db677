"""The staff page in Django's admin: live connections, health, history; cancel and terminate.

Listed on the admin index as "Connections" under the app. Staff only (``admin_view``), and:

- ``dbconnmgr.view_connections`` to see the page;
- ``dbconnmgr.view_query_text`` to also see each session's query;
- ``dbconnmgr.terminate_connections`` to cancel queries and terminate sessions.

Only what the alias's backend declares (``backend.capabilities``) is offered.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.contrib import admin
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone

from dbconnmgr.core.capabilities import Capabilities
from dbconnmgr.core.dashboard import (
    SORT_KEYS,
    ConnectionFilter,
    filter_connections,
    lock_waits,
    sort_connections,
    utilization_bar,
)
from dbconnmgr.core.figures import Figures
from dbconnmgr.core.health import Severity
from dbconnmgr.core.termination import WOULD, Signal, TerminationReport
from dbconnmgr.exceptions import (
    DbConnMgrError,
    ServerUnavailable,
    UnknownDatabaseAlias,
    UnsupportedDatabase,
)
from dbconnmgr.models import Connections

logger = logging.getLogger("dbconnmgr")

VIEW = "dbconnmgr.view_connections"
VIEW_QUERY_TEXT = "dbconnmgr.view_query_text"
TERMINATE = "dbconnmgr.terminate_connections"

#: Periods of the utilization chart: name -> (seconds, bucket seconds).
PERIODS: dict[str, tuple[int, int]] = {
    "hour": (3600, 60),
    "day": (86400, 15 * 60),
    "week": (7 * 86400, 3600),
}
#: The second load chart splits by one of these (``?load_by=``); the first by wait class.
LOAD_BY: dict[str, str] = {"application": "application", "code": "code label"}
#: Seconds between refreshes of the live part.
REFRESH_SECONDS = 10
#: Seconds the 30-day heatmap is kept in Django's cache: it reads the hourly rollup (720
#: hour rows, with the samples of the hours not rolled up yet grouped by the database) and
#: changes little in minutes, so a page refreshed every REFRESH_SECONDS need not re-read it.
HEATMAP_CACHE_SECONDS = 300
#: Rows of the connection list shown at most (the counts above cover every session).
LIST_LIMIT = 500


def monitored_aliases() -> list[str]:
    """The aliases the page offers: :func:`dbconnmgr.health.readable_aliases` (an alias whose
    ENGINE cannot be loaded is listed: its page shows the ``configuration_error``)."""
    from dbconnmgr.health import readable_aliases

    return readable_aliases()


@admin.register(Connections)
class ConnectionsAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """No rows to edit: the changelist is the connections page."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm(VIEW))

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.has_perm(VIEW))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("", wrap(self.changelist_view), name="dbconnmgr_connections_changelist"),
            path("<str:alias>/", wrap(self.page_view), name="dbconnmgr_connections_alias"),
            path("<str:alias>/live/", wrap(self.live_view), name="dbconnmgr_connections_live"),
            path("<str:alias>/act/", wrap(self.act_view), name="dbconnmgr_connections_act"),
        ]

    # -- views -------------------------------------------------------------------------------
    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """The first monitored alias's page."""
        self._require(request, VIEW)
        aliases = monitored_aliases()
        if not aliases:
            context = {**self.admin_site.each_context(request), "title": "Connections"}
            context["error"] = "No database alias uses an engine dbconnmgr supports."
            return TemplateResponse(request, "admin/dbconnmgr/connections.html", context)
        return redirect("admin:dbconnmgr_connections_alias", alias=aliases[0])

    def page_view(self, request: HttpRequest, alias: str) -> HttpResponse:
        """The whole page of ``alias``: live part and history."""
        self._require(request, VIEW)
        context = self._context(request, alias)
        context.update(self._history(request, alias))
        return TemplateResponse(request, "admin/dbconnmgr/connections.html", context)

    def live_view(self, request: HttpRequest, alias: str) -> HttpResponse:
        """The live part alone, fetched by the page's refresh script."""
        self._require(request, VIEW)
        context = self._context(request, alias)
        return TemplateResponse(request, "admin/dbconnmgr/connections_live.html", context)

    def act_view(self, request: HttpRequest, alias: str) -> HttpResponse:
        """Cancel or terminate the picked sessions: a confirmation page, then the result.

        POST only (CSRF-protected by Django's middleware). ``signal`` is ``cancel`` or
        ``terminate``; ``pid`` is repeated; ``confirm`` set means the person confirmed.
        """
        from dbconnmgr.actions import signal_backends

        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        self._require(request, VIEW)
        self._require(request, TERMINATE)
        caps = self._capabilities(alias)
        asked = request.POST.get("signal", "")
        allowed: dict[str, tuple[Signal, bool]] = {
            "cancel": ("cancel", caps.can_cancel),
            "terminate": ("terminate", caps.can_terminate),
        }
        signal, able = allowed.get(asked, ("terminate", False))
        if not able:
            raise PermissionDenied(f"{caps.display_name} backends cannot {asked or 'do that'}")
        pids = _pids(request.POST.getlist("pid"))
        back = reverse("admin:dbconnmgr_connections_alias", args=[alias])
        context = {
            **self.admin_site.each_context(request),
            "alias": alias,
            "signal": signal,
            "back": back,
            "opts": self.model._meta,
            "title": f"{'Cancel queries' if signal == 'cancel' else 'Terminate sessions'}: {alias}",
        }
        if not pids:
            context["error"] = "No session was picked."
            return TemplateResponse(request, "admin/dbconnmgr/act.html", context, status=400)
        confirmed = request.POST.get("confirm") == "yes"
        # The confirmation names each session by pid and start: a pid reused since is spared.
        starts = _starts(request.POST, pids) if confirmed else None
        who = f"Django user {request.user.get_username()}"
        try:
            report = signal_backends(
                alias,
                pids,
                signal=signal,
                requested_by=who,
                dry_run=not confirmed,
                backend_starts=starts,
            )
        except DbConnMgrError as exc:
            done = getattr(exc, "report", None)  # TerminationIncomplete: signals were sent
            if done is not None:
                _log_entry(request, alias, done)
            context["error"] = str(exc)
            return TemplateResponse(request, "admin/dbconnmgr/act.html", context, status=503)
        if confirmed:
            _log_entry(request, alias, report)
        context.update(
            report=report, rows=_report_rows(report), confirmed=confirmed, would=WOULD[signal]
        )
        return TemplateResponse(request, "admin/dbconnmgr/act.html", context)

    # -- helpers -----------------------------------------------------------------------------
    def _require(self, request: HttpRequest, permission: str) -> None:
        if not request.user.has_perm(permission):
            raise PermissionDenied(f"needs the {permission} permission")

    def _capabilities(self, alias: str) -> Capabilities:
        from django.http import Http404

        from dbconnmgr.backends import get_backend

        try:
            return get_backend(alias).capabilities
        except (UnknownDatabaseAlias, UnsupportedDatabase) as exc:
            raise Http404(str(exc)) from None
        except ServerUnavailable:  # an ENGINE that cannot be loaded: nothing to offer
            return Capabilities(display_name=alias, can_terminate=False)

    def _context(self, request: HttpRequest, alias: str) -> dict[str, Any]:
        from dbconnmgr.health import check_health, project_thresholds

        caps = self._capabilities(alias)
        limits = project_thresholds()
        report = check_health(alias, limits)
        snapshot = report.snapshot
        wanted, errors = ConnectionFilter.from_params(request.GET)
        sort = request.GET.get("sort", "age")
        if sort not in SORT_KEYS:
            errors.append(f"sort: unknown column {sort!r}")
            sort = "age"
        descending = request.GET.get("order", "desc") != "asc"
        user = request.user
        can_act = user.has_perm(TERMINATE) and (caps.can_cancel or caps.can_terminate)
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Connections: {alias}",
            "alias": alias,
            "aliases": monitored_aliases(),
            "capabilities": caps,
            "report": report,
            "status": report.status.label,
            "problems": [f for f in report.findings if f.severity is not Severity.OK],
            "findings": report.findings,
            "filter": wanted,
            "filter_errors": errors,
            "sort": sort,
            "descending": descending,
            "sort_keys": SORT_KEYS,
            "show_query": user.has_perm(VIEW_QUERY_TEXT),
            "can_act": can_act,
            "can_cancel": can_act and caps.can_cancel,
            "can_terminate": can_act and caps.can_terminate,
            "refresh_seconds": REFRESH_SECONDS,
            "live_url": reverse("admin:dbconnmgr_connections_live", args=[alias]),
            "act_url": reverse("admin:dbconnmgr_connections_act", args=[alias]),
            "query_string": request.GET.urlencode(),
        }
        if snapshot is None:
            return context
        shown = sort_connections(
            filter_connections(snapshot.others(), wanted), sort, descending=descending
        )
        figures = Figures.of(snapshot)
        context.update(
            snapshot=snapshot,
            figures=figures,
            figure_rows=figures.shown("admin"),
            bar=utilization_bar(snapshot, limits),
            by_state=[(s, n) for s, n in snapshot.by_state().items() if n],
            by_application=snapshot.by_application(),
            by_user=snapshot.by_user(),
            by_database=snapshot.by_database(),
            by_code=[g for g in snapshot.by_code() if g.name != "unknown"],
            lock_waits=lock_waits(snapshot) if caps.reports_lock_waits else None,
            connections=shown[:LIST_LIMIT],
            matching=len(shown),
            list_limit=LIST_LIMIT,
            states=sorted({c.state for c in snapshot.others()}),
        )
        return context

    def _history(self, request: HttpRequest, alias: str) -> dict[str, Any]:
        from dbconnmgr.core.charts import Heatmap, heatmap_svg, line_chart_svg, load_chart_svg
        from dbconnmgr.history import hourly_heatmap, load_charts, utilization_series

        period = request.GET.get("period", "day")
        if period not in PERIODS:
            period = "day"
        seconds, bucket = PERIODS[period]
        load_by = request.GET.get("load_by", "application")
        if load_by not in LOAD_BY:
            load_by = "application"
        try:
            series = utilization_series(alias, seconds=seconds, bucket_seconds=bucket)
            load = load_charts(
                alias, ("wait_class", load_by), seconds=seconds, bucket_seconds=bucket
            )
            by_wait_class, by_who = load["wait_class"], load[load_by]
            heat = cache.get_or_set(
                f"dbconnmgr:heatmap:{alias}:30:{timezone.get_current_timezone_name()}",
                lambda: hourly_heatmap(alias, days=30),
                HEATMAP_CACHE_SECONDS,
            )
            if not isinstance(heat, Heatmap):  # a cache that failed to store it
                heat = hourly_heatmap(alias, days=30)
        except DatabaseError as exc:  # samples table missing (migrate), store unreachable
            logger.warning("dbconnmgr admin page: samples not readable: %s", exc)
            return {"history_error": f"recorded samples could not be read: {exc}"}
        return {
            "period": period,
            "periods": list(PERIODS),
            "series_points": len(series.points),
            "utilization_svg": line_chart_svg(series),
            "load_by": load_by,
            "load_by_choices": LOAD_BY,
            "load_aas_max": round(by_wait_class.max_aas, 2),
            "load_wait_class_svg": load_chart_svg(by_wait_class),
            "load_by_svg": load_chart_svg(by_who),
            "heatmap_svg": heatmap_svg(heat),
            "heatmap_samples": heat.samples,
        }


def _log_entry(request: HttpRequest, alias: str, report: TerminationReport) -> None:
    """An admin ``LogEntry`` for a confirmed cancel or terminate: "Recent actions" lists it.

    The ``dbconnmgr`` audit lines are INFO, below a default project's logging level; the
    admin's own history is the trail every project has. One entry per confirmed action,
    naming each pid and what happened to it; none when nothing matched.
    """
    from django.contrib.admin.models import CHANGE, LogEntry
    from django.contrib.contenttypes.models import ContentType

    if not report.results:  # nothing matched (a pid reused since the confirmation page)
        return
    outcomes = ", ".join(f"pid {r.pid} {r.outcome}" for r in report.results)
    verb = "Cancel queries" if report.signal == "cancel" else "Terminate sessions"
    # object_repr is 200 characters at most; the change message holds the whole list.
    summary = f"{verb} on {alias}: {outcomes}"
    user_id = request.user.pk
    if user_id is None:  # admin_view lets only logged-in staff here
        return
    LogEntry.objects.create(
        user_id=user_id,
        content_type=ContentType.objects.get_for_model(Connections, for_concrete_model=False),
        object_id=alias,
        object_repr=summary if len(summary) <= 200 else summary[:199] + "…",
        action_flag=CHANGE,
        change_message=summary,
    )


def _pids(values: list[str]) -> list[int]:
    pids = []
    for value in values:
        if value.isascii() and value.isdigit() and len(value) < 10:
            pids.append(int(value))
    return pids


def _starts(post: Any, pids: list[int]) -> dict[int, datetime]:
    """``start_<pid>`` fields of the confirmation form (ISO 8601); bad ones are left out."""
    starts = {}
    for pid in pids:
        try:
            starts[pid] = datetime.fromisoformat(post.get(f"start_{pid}", ""))
        except ValueError:
            continue
    return starts


def _report_rows(report: Any) -> list[dict[str, Any]]:
    by_pid = {r.pid: r for r in report.results}
    return [{"candidate": c, "result": by_pid[c.pid]} for c in report.selected]
