"""``--action=budget``: every service's connections against the server's usable slots."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from django.conf import settings
from django.core.management.base import CommandError

from dbconnmgr.app_settings import get_setting
from dbconnmgr.backends import capabilities_of, working_backend
from dbconnmgr.cli import Action, finite_number, whole_number
from dbconnmgr.cli.options import Options, option
from dbconnmgr.core.budget import (
    SERVICE_SYNTAX,
    Budget,
    Service,
    compute_budget,
    parse_service,
    pool_max_size_from_settings,
    services_from_setting,
    unique_services,
)
from dbconnmgr.core.documents import BudgetDoc
from dbconnmgr.core.pooler import PoolerUnavailable, pooler_service
from dbconnmgr.core.snapshot import Snapshot
from dbconnmgr.exceptions import InvalidSetting
from dbconnmgr.payloads import budget_payload
from dbconnmgr.pooler import read_pooler


def service_spec(value: str) -> str:
    """argparse type: validates the syntax now; the pool size is filled in later."""
    try:
        parse_service(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


#: The most slots --headroom takes: PostgreSQL's largest max_connections.
MAX_HEADROOM = 262_143

#: argparse type of --safety: a number in (0, 1].
safety_factor = finite_number(0, 1, above=True)


def effective_usable(snapshot: Snapshot, database: str | None) -> tuple[int, str]:
    """Usable slots, capped by the database's and the role's connection limits.

    Returns the number and where it comes from. Superusers are exempt from both caps
    where the engine exempts them (``ServerLimits.reader_exempt_from_limits``).
    """
    limits = snapshot.limits
    usable, source = limits.usable_connections, "max_connections - reserved"
    labels = {
        "database": f"CONNECTION LIMIT of database {database}",
        "role": f"{capabilities_of(snapshot.vendor).role_limit_name} {limits.current_user}",
    }
    for scope, cap in limits.binding_caps(database):  # the snapshot's headrooms use the same
        if cap < usable:
            usable, source = cap, labels[scope]
    return usable, source


@dataclass(frozen=True)
class BudgetOptions(Options):
    """``--action=budget``'s options."""

    service: list[str] | None = option(
        "--service",
        action="append",
        type=service_spec,
        metavar=SERVICE_SYNTAX,
        help="a service that connects (repeatable; default: DBCONNMGR['SERVICES'])",
    )
    headroom: int | None = option(
        "--headroom",
        type=whole_number(0, MAX_HEADROOM),
        help="slots kept free for people and one-off jobs "
        "(default: DBCONNMGR['BUDGET_HEADROOM'], 5)",
    )
    safety: float | None = option(
        "--safety",
        type=safety_factor,
        help="fraction of the usable slots the services may fill "
        "(default: DBCONNMGR['BUDGET_SAFETY'], 0.95)",
    )


class BudgetAction(Action[BudgetOptions]):
    """Compare the services' connections with the server's usable slots."""

    name = "budget"
    help = (
        "connections every service may open against the server's usable slots, and the "
        "largest safe DB_MAX_CONNS per process; exit 1 when over budget"
    )
    options_type = BudgetOptions

    def run(self) -> int:
        database = settings.DATABASES.get(self.alias, {})
        pool_max_size = pool_max_size_from_settings(database)
        try:
            if self.options.service:
                services = list(
                    unique_services(
                        parse_service(s, pool_max_size=pool_max_size) for s in self.options.service
                    )
                )
            else:
                services = services_from_setting(
                    get_setting("SERVICES"), pool_max_size=pool_max_size
                )
        except InvalidSetting:
            raise  # one line naming the key, exit 3 (the command)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        headroom = self.options.headroom
        if headroom is None:
            headroom = int(get_setting("BUDGET_HEADROOM"))
        safety = self.options.safety or float(get_setting("BUDGET_SAFETY"))

        # a private connection for a pooled alias: no slot of the app's pool, no pool timeout
        with working_backend(self.alias) as backend:
            snapshot = backend.snapshot()
        usable, source = effective_usable(snapshot, database.get("NAME"))
        pooler = read_pooler(self.alias)
        through: list[str] | None = None
        if isinstance(pooler, PoolerUnavailable):
            raise CommandError(pooler.message)
        if pooler is not None:
            # The server sees PgBouncer's pool sizes, not the services' threads.
            through = [s.name for s in services]
            services = [pooler_service(pooler)]
        try:
            budget = compute_budget(services, usable, headroom=headroom, safety=safety)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        payload = budget_payload(budget, snapshot, source, pool_max_size, through)
        if self.format == "json":
            self.write_json(payload)
        else:
            self._print(budget, payload)
        return 0 if budget.fits else 1

    def _print(self, budget: Budget, payload: BudgetDoc) -> None:
        table = self.renderer.table(
            "Connection budget",
            "service",
            "processes",
            "threads",
            "per process",
            "connections",
            "max safe pool",
        )
        for line in budget.services:
            s = line.service
            table.add_row(
                s.name,
                _processes(s),
                str(s.threads),
                f"pool {s.pool_max_size}" if s.pooled else f"{s.threads} (persistent)",
                str(s.demand),
                str(line.safe_pool_max_size),
            )
        table.add_row("headroom", "", "", "", str(budget.headroom), "")
        table.add_row("total", "", "", "", str(budget.demand_with_headroom), "")
        for column in table.columns[1:]:
            column.justify = "right"
        self.renderer.print(table)
        server = payload["server"]
        lines = [
            f"Server: max_connections {server['max_connections']}, reserved "
            f"{server['reserved_slots']} -> usable {budget.usable_connections} "
            f"({payload['usable_source']}); in use now {payload['total_connections']}",
            f"Demand {budget.demand} + headroom {budget.headroom} = "
            f"{budget.demand_with_headroom} of {budget.usable_connections} usable",
            f"Capacity floor(({budget.usable_connections} - {budget.headroom}) x "
            f"{budget.safety:g}) = {budget.capacity}; demand {budget.demand} -> "
            + (f"fits, {budget.spare} spare" if budget.fits else f"OVER BUDGET by {-budget.spare}"),
        ]
        through = payload["through_pgbouncer"]
        if through is None:
            lines.append(f"Largest safe DB_MAX_CONNS per process: {budget.safe_pool_max_size}")
        else:
            lines.append(
                f"Through PgBouncer ({', '.join(through) or 'no service given'}): the server "
                "sees its pool sizes plus reserve, not the services' threads; the sum of "
                f"pool sizes may reach {budget.safe_pool_max_size}"
            )
        if not budget.services:
            lines.append(
                "No services: describe them with --service NAME=PROCESSESxTHREADS or "
                "DBCONNMGR['SERVICES']"
            )
        for text in lines:
            self.renderer.print(text)


def _processes(service: Service) -> str:
    if service.instances == 1:
        return str(service.processes)
    return f"{service.instances} x {service.processes}"
