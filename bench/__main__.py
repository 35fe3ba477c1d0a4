"""Run the benchmarks and rewrite ``docs/benchmarks.md``.

Each ``bench/<name>.py`` exposes ``main() -> str`` returning a markdown section. Every benchmark runs in
its own subprocess (``python -m bench.<name>``) so one benchmark's imports (TensorFlow, say) never skew
another's timings. ``python -m bench NAME...`` runs only those and keeps the other sections of the file as
they were, each between ``<!-- bench:NAME -->`` markers, so a slow benchmark need not be re-run to refresh
a fast one.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPOSITORY = BENCH_DIR.parent
REPORT = REPOSITORY / "docs" / "benchmarks.md"
SECTION = re.compile(r"<!-- bench:(?P<name>[a-z0-9_]+) -->\n(?P<body>.*?)<!-- /bench:(?P=name) -->\n", re.S)


def available_benchmarks() -> list[str]:
    return sorted(path.stem for path in BENCH_DIR.glob("*.py") if not path.stem.startswith("_"))


def run_benchmark(name: str) -> str:
    """Run one benchmark in a fresh interpreter and return its markdown section."""
    environment = {**os.environ, "PYTHONHASHSEED": "0", "TF_CPP_MIN_LOG_LEVEL": "2"}
    completed = subprocess.run(
        [sys.executable, "-m", f"bench.{name}"],
        cwd=REPOSITORY,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        detail = completed.stderr[-4000:]
        raise SystemExit(f"benchmark {name} failed (exit {completed.returncode}):\n{detail}")
    return completed.stdout.strip() + "\n"


def machine_description() -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, {platform.system()}"


def existing_sections() -> dict[str, str]:
    if not REPORT.exists():
        return {}
    return {match["name"]: match["body"] for match in SECTION.finditer(REPORT.read_text())}


def render_report(sections: dict[str, str]) -> str:
    today = datetime.datetime.now(tz=datetime.UTC).date().isoformat()
    header = (
        "# Benchmarks\n\n"
        "Written by `make bench` (`python -m bench`); do not edit by hand. Each section says the command\n"
        "that measured it. Targets are ratios measured in one run against a baseline on the same\n"
        "machine, never timed assertions in tests.\n\n"
        f"Last run: {today} on {machine_description()}.\n\n"
    )
    body = "".join(
        f"<!-- bench:{name} -->\n{sections[name]}<!-- /bench:{name} -->\n\n" for name in sorted(sections)
    )
    return header + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    arguments = parser.parse_args(argv)
    known = available_benchmarks()
    unknown = sorted(set(arguments.names) - set(known))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(known)}")
    selected = arguments.names or known
    sections = existing_sections() if arguments.names else {}
    for name in selected:
        print(f"bench: running {name} ...", file=sys.stderr, flush=True)
        sections[name] = run_benchmark(name)
        print(sections[name])
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(render_report(sections))
    print(f"bench: wrote {REPORT.relative_to(REPOSITORY)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
