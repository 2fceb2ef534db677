"""Run benchmarks: ``python -m bench`` (all) or ``python -m bench status close_idle``.

Each module ``bench/bench_NAME.py`` has a ``main() -> None`` that starts what it needs,
prints its table and cleans up, and may name in ``NEEDS`` the modules it imports or runs
beyond the project's own dependencies. A benchmark whose ``NEEDS`` this interpreter lacks
runs in the bench's own environment (``.venv-bench/bench``, built on first need;
``python -m bench --setup`` builds every environment ahead, see bench/setup.py).
"""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

from bench import setup


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
    if argv == ["--setup"]:
        return setup.main()
    names = argv or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; have: {', '.join(available())}")
        return 2
    if len(names) == 1:
        module = importlib.import_module(f"bench.bench_{names[0]}")
        missing = setup.missing_modules(getattr(module, "NEEDS", ()))
        if missing and not setup.running_in("bench"):
            python = setup.ensure("bench")
            print(f"({', '.join(missing)} missing here: running in {python.parent.parent.name})")
            return subprocess.call([str(python), "-m", "bench", names[0]], cwd=setup.ROOT)
        if missing:
            print(f"bench {names[0]} needs {', '.join(missing)}, which did not install")
            return 2
        print(f"=== bench {names[0]}", flush=True)
        module.main()
        return 0
    failed = [name for name in names if subprocess.call([sys.executable, "-m", "bench", name])]
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
