"""CPU per monitoring sample at 1,000 connections, rendering included; memory over samples.

Targets (issue 5): <= 20 ms of CPU per sample, live view rendering included; memory flat
over 1,000 samples (2,000 are taken: rich's bounded caches fill during the first ~1,000).
CPU is the monitor process's own (``time.process_time``): the server's work is not counted.
Baselines in the same run: reading the snapshot alone (``take_snapshot``, the core of every
action) and ``status``'s rendering of it.
"""

from __future__ import annotations

import gc
import io
import json
import os
import statistics
import time
from collections.abc import Callable

from bench.common import bench_server, idle_connections, print_table, setup_django

CONNECTIONS = 1000
CPU_REPEAT = 31
MEMORY_SAMPLES = 2000  # rich's bounded caches fill during the first ~1,000
TARGET_CPU_MS = 20.0


def _point_default_at(url: str) -> None:
    """Set Django up against ``url`` (or re-point "default" when an earlier bench set it up)."""
    from django.apps import apps

    if not apps.ready:
        setup_django(url)
        return
    import environ
    from django.db import connections

    connections["default"].close()
    connections.settings["default"].update(environ.Env.db_url_config(url))


def _tty_sink() -> io.StringIO:
    sink = io.StringIO()
    sink.isatty = lambda: True  # type: ignore[method-assign]
    return sink


def _cpu_medians(fns: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Median CPU seconds of each callable, measured in alternation."""
    for fn in fns.values():
        fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.process_time()
            fn()
            samples[name].append(time.process_time() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    """Run the monitor benchmark and print its tables."""
    with bench_server(max_connections=CONNECTIONS + 100) as server:
        _point_default_at(server.url)
        from rich.cells import cached_cell_len
        from rich.live import Live
        from rich.segment import Segment

        from dbconnmgr import Monitor, take_snapshot
        from dbconnmgr.live_view import MonitorView
        from dbconnmgr.payloads import sample_payload
        from dbconnmgr.render import Renderer, make_console

        with idle_connections(server.dsn(), CONNECTIONS, "bench-monitor"):
            monitor = Monitor("default", interval=1)
            view = MonitorView(interval=1, count=None)
            live_console = make_console(_tty_sink())
            live = Live(console=live_console, auto_refresh=False, redirect_stdout=False,
                        redirect_stderr=False)  # fmt: skip
            live.start()
            status_sink = _tty_sink()
            json_sink = io.StringIO()

            def status() -> None:
                Renderer(status_sink).status(take_snapshot("default"), 10)
                status_sink.seek(0)
                status_sink.truncate()

            def monitor_live() -> None:
                live.update(view.update(monitor.sample()), refresh=True)
                live_console.file.seek(0)
                live_console.file.truncate()

            def monitor_json() -> None:
                json_sink.write(json.dumps(sample_payload(monitor.sample())) + "\n")
                json_sink.seek(0)
                json_sink.truncate()

            medians = _cpu_medians(
                {
                    "take_snapshot() (baseline)": lambda: take_snapshot("default"),
                    "status, rendered (baseline)": status,
                    "monitor sample, no output": monitor.sample,
                    "monitor sample + live view": monitor_live,
                    "monitor sample + JSON line": monitor_json,
                },
                CPU_REPEAT,
            )
            base = medians["take_snapshot() (baseline)"]
            rows: list[tuple[str, ...]] = [
                (name, f"{cpu * 1000:.2f}", f"{cpu / base:.2f}x",
                 "" if name.endswith("(baseline)") else
                 ("ok" if cpu * 1000 <= TARGET_CPU_MS else "OVER"))
                for name, cpu in medians.items()
            ]  # fmt: skip
            print_table(
                f"CPU per sample at {CONNECTIONS} idle connections "
                f"(median of {CPU_REPEAT}, process CPU; target <= {TARGET_CPU_MS:.0f} ms)",
                rows,
                ("what", "CPU ms", "vs snapshot", "target"),
            )

            # Memory: one monitor, live view and JSON line for every sample, like --watch.
            monitor = Monitor("default", interval=0.001)
            view = MonitorView(interval=0.001, count=MEMORY_SAMPLES)
            checkpoints = {100, 500, 1000, 1500, MEMORY_SAMPLES}
            mem_rows: list[tuple[str, ...]] = []
            first_rss = first_objects = 0.0
            started = time.perf_counter()
            for sample in monitor.samples(MEMORY_SAMPLES):
                live.update(view.update(sample), refresh=True)
                live_console.file.seek(0)
                live_console.file.truncate()
                json_sink.write(json.dumps(sample_payload(sample)) + "\n")
                json_sink.seek(0)
                json_sink.truncate()
                if sample.sequence in checkpoints:
                    gc.collect()
                    rss, objects = _rss_mib(), float(len(gc.get_objects()))
                    if not first_rss:
                        first_rss, first_objects = rss, objects
                    mem_rows.append(
                        (str(sample.sequence), f"{rss:.1f}", f"{rss - first_rss:+.1f}",
                         str(int(objects)), f"{objects - first_objects:+.0f}",
                         str(cached_cell_len.cache_info().currsize),
                         str(Segment._split_cells.cache_info().currsize),
                         str(sample.aas_samples))
                    )  # fmt: skip
                del sample
            elapsed = time.perf_counter() - started
            live.stop()
            print_table(
                f"Memory over {MEMORY_SAMPLES} samples at {CONNECTIONS} connections "
                f"(live view + JSON line each; baseline: sample 100; {elapsed:.1f} s wall)",
                mem_rows,
                (
                    "sample",
                    "RSS MiB",
                    "vs sample 100",
                    "gc objects",
                    "vs sample 100",
                    "rich cell_len cache (max 4096)",
                    "rich split cache (max 16384)",
                    "AAS window samples",
                ),
            )
        from django.db import connections

        connections["default"].close()


if __name__ == "__main__":
    main()
