"""Run benchmarks: ``python -m bench`` (all) or ``python -m bench status close_idle``.

Each module ``bench/bench_NAME.py`` has a ``main() -> None`` that starts what it needs,
prints its table and cleans up.
"""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path


def available() -> list[str]:
    """Names of the benchmark modules."""
    here = Path(__file__).parent
    return sorted(
        m.name.removeprefix("bench_")
        for m in pkgutil.iter_modules([str(here)])
        if m.name.startswith("bench_")
    )


def main(argv: list[str]) -> int:
    """Run the named benchmarks (all when none is named), each in a process of its own.

    Django is configured once per process, against the server the benchmark starts, so two
    benchmarks never share a process.
    """
    names = argv or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; have: {', '.join(available())}")
        return 2
    if len(names) == 1:
        print(f"=== bench {names[0]}", flush=True)
        importlib.import_module(f"bench.bench_{names[0]}").main()
        return 0
    failed = [name for name in names if subprocess.call([sys.executable, "-m", "bench", name])]
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
