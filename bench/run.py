"""``make bench``: run every benchmark for both sides and write ``bench/RESULTS.md``.

Ours runs in the project's venv; the official provider (apache-airflow-providers-airbyte,
pinned in ``bench/requirements-official.txt``) in ``bench/.venv-official``: an overlay venv
that sees the project's venv (same Airflow and dependencies, exactly ``constraints.txt``) and
adds only the provider and its SDK, so the project's venv stays as pinned. Benchmarks that
measure CPU or time run one process at a time; the ones that mostly sleep run side by side.
Everything talks only to stand-ins on 127.0.0.1.

One run writes the whole report from its own results (nothing is merged from an earlier
run). A benchmark that fails is named in the report and the run exits 1.

``python -m bench.run --quick --out FILE`` runs our side only in the reduced mode (the smoke
test) and still renders the report.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import compile_ours
from bench.report import render

BENCH = Path(__file__).resolve().parent
REPO_ROOT = BENCH.parent
OFFICIAL_VENV = BENCH / ".venv-official"
REQUIREMENTS = BENCH / "requirements-official.txt"
TRIGGER_COUNTS = (100, 500, 1000)
#: The official trigger's intervals in the triggerer bench: 5 s (a request rate like ours)
#: and the 60 s its operator and sensor hand it (``trigger_poll_interval = 60``).
OFFICIAL_TRIGGER_POLLS = (5, 60)

#: (module, side, extra arguments): one script run. ``module`` is ``bench.<module>`` unless
#: dotted. Side ``both`` runs in the official venv, which also sees our code.
Job = tuple[str, str, tuple[str, ...]]
#: Phases run one after another; a phase's lanes side by side, a lane's jobs in order.
Plan = list[list[list[Job]]]


def official_python() -> Path:
    """Create or refresh the overlay venv with the official provider; its interpreter."""
    python = OFFICIAL_VENV / "bin" / "python"
    stamp = OFFICIAL_VENV / ".installed"
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(OFFICIAL_VENV)], check=True)
    purelib = sysconfig.get_paths()["purelib"]  # the project's venv
    target = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(target, "_project_venv.pth").write_text(f"import site; site.addsitedir({purelib!r})\n")
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "--quiet"]
    constraints = str(REPO_ROOT / "constraints.txt")
    subprocess.run(
        [*pip, "install", "--no-deps", "-r", str(REQUIREMENTS), "-c", constraints], check=True
    )
    subprocess.run([*pip, "check"], check=True)
    stamp.write_text(wanted)
    return python


def plan(sides: Sequence[str], quick: bool) -> Plan:
    """What ``make bench`` runs, in order (``--quick``: our side, reduced sizes)."""
    one_by_one: list[Job] = []
    for n in (20,) if quick else TRIGGER_COUNTS:
        for side in sides:
            polls = OFFICIAL_TRIGGER_POLLS if side == "official" else (None,)
            for poll in polls:
                extra = ("--n", str(n)) + (("--poll", str(poll)) if poll else ())
                one_by_one.append(("triggerer", side, extra))
    one_by_one += [("parse_cost", side, ()) for side in sides]
    # Ours only (no such path or file in the official provider), each starting its own
    # Airflow: alone. end_to_end runs every side in one Airflow, in the official venv.
    alone: list[Job] = [
        ("notifications", "ours", ()),
        ("notification_burst", "ours", ()),
        ("connections_scale", "ours", ()),
    ]
    alone.append(("end_to_end", "both" if "official" in sides else "ours", ()))
    return [
        # They mostly sleep (scaled timelines): side by side.
        [*([("polling", side, ())] for side in sides), [("worker_slot", s, ()) for s in sides]],
        [one_by_one],  # CPU and time: one process at a time
        [[("resilience", side, ())] for side in sides],  # counts only
        [alone],
    ]


def run_script(
    python: Path, module: str, side: str, out: Path, log: Path, *extra: str, quick: bool = False
) -> tuple[dict[str, Any] | None, int]:
    """Run ``python -m bench.<module> --side side``: its JSON (None if it failed), exit code."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    name = module if "." in module else f"bench.{module}"
    args = [str(python), "-m", name, "--side", side, "--json", str(out), *extra]
    if quick:
        args.append("--quick")
    started = time.monotonic()
    with log.open("a") as sink:
        sink.write(f"\n$ {' '.join(args)}\n")
        sink.flush()
        done = subprocess.run(args, cwd=REPO_ROOT, env=env, stdout=sink, stderr=sink)
    took = time.monotonic() - started
    print(f"  {module:<17} {side:<9} {' '.join(extra):<14} {took:6.1f} s  rc={done.returncode}")
    if done.returncode != 0 or not out.exists():
        return None, done.returncode or 1  # no JSON: failed, whatever the exit code
    return json.loads(out.read_text()), 0


@dataclass
class Runner:
    """Runs jobs, keeps their results and the failed ones."""

    interpreters: dict[str, Path]
    raw: Path
    quick: bool = False
    results: dict[str, Any] = field(default_factory=dict)
    failed: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def log(self) -> Path:
        return self.raw / "bench.log"

    def job(self, module: str, side: str, *extra: str) -> dict[str, Any] | None:
        """Run one script; store its result under ``results[module][side][key]``."""
        name = "-".join([module, side, *extra])
        out = self.raw / f"{name}.json"
        out.unlink(missing_ok=True)
        python = self.interpreters["official" if side == "both" else side]
        try:
            data, code = run_script(python, module, side, out, self.log, *extra, quick=self.quick)
        except (OSError, ValueError) as error:  # no interpreter, or unreadable JSON
            data, code = None, f"{type(error).__name__}: {error}"
        with self.lock:
            self.results.setdefault(module, {}).setdefault(side, {})["-".join(extra) or "all"] = (
                data
            )
            if data is None:
                self.failed.append(
                    {"bench": module, "side": side, "args": " ".join(extra), "exit": code}
                )
        return data

    def run(self, phases: Plan) -> None:
        """Every phase in turn; within one, its lanes at once."""
        for lanes in phases:
            with ThreadPoolExecutor(max_workers=max(1, len(lanes))) as pool:
                for done in [pool.submit(self._lane, lane) for lane in lanes]:
                    done.result()

    def _lane(self, lane: list[Job]) -> None:
        for module, side, extra in lane:
            self.job(module, side, *extra)


def machine() -> dict[str, str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "?",
    )
    mem_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return {
        "cpu": f"{os.cpu_count()} x {cpu}",
        "memory": f"{mem_kib / 1024 / 1024:.1f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def versions(python: Path | None) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json\n"
        "names = ['apache-airflow', 'apache-airflow-providers-airbyte', 'airbyte-api', 'httpx']\n"
        "out = {}\n"
        "for n in names:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))\n"
    )
    found = {}
    for interpreter in filter(None, [Path(sys.executable), python]):
        done = subprocess.run(
            [str(interpreter), "-c", code], capture_output=True, text=True, check=False
        )
        if done.returncode == 0:
            found.update(json.loads(done.stdout))
    return found


def main(
    argv: Sequence[str] | None = None,
    planner: Callable[[Sequence[str], bool], Plan] = plan,
) -> int:
    """Run the plan, write the report; 1 if any benchmark failed, else 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="ours only, reduced (smoke test)")
    parser.add_argument("--out", type=Path, default=BENCH / "RESULTS.md")
    parser.add_argument(
        "--raw", type=Path, default=None, help="raw JSON here (bench/.results; --quick: a temp dir)"
    )
    parser.add_argument(
        "--render", action="store_true", help="only re-render --out from the raw all.json"
    )
    args = parser.parse_args(argv)
    if args.render:
        saved = json.loads(((args.raw or BENCH / ".results") / "all.json").read_text())
        saved["context"]["rendered"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        args.out.write_text(render(saved["context"], saved["results"]))
        return 1 if saved["context"].get("failed") else 0
    started = time.monotonic()
    compile_ours()  # every bench measures byte-compiled modules on both sides
    official = None if args.quick else official_python()
    interpreters = {"ours": Path(sys.executable)} | ({"official": official} if official else {})
    raw = args.raw or (Path(tempfile.mkdtemp(prefix="bench-raw-")) if args.quick else None)
    raw = raw or BENCH / ".results"
    raw.mkdir(parents=True, exist_ok=True)
    for stale in raw.glob("*.json"):  # this run's results only
        stale.unlink()
    runner = Runner(interpreters, raw, quick=args.quick)
    runner.log.write_text("")
    print(f"bench: raw results and logs in {raw}")
    runner.run(planner(list(interpreters), args.quick))
    write_results(args, runner, time.monotonic() - started, official)
    for failure in runner.failed:
        print(f"bench: FAILED {failure['bench']} --side {failure['side']} {failure['args']}")
    return 1 if runner.failed else 0


def write_results(
    args: argparse.Namespace, runner: Runner, elapsed: float, official: Path | None
) -> None:
    """The raw ``all.json`` and the rendered report, with the run's context."""
    context = {
        "command": "python -m bench.run --quick" if args.quick else "make bench",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "versions": versions(official),
        "elapsed_s": round(elapsed, 1),
        "quick": args.quick,
        "failed": runner.failed,
        "log": str(
            runner.log.relative_to(REPO_ROOT)
            if runner.log.is_relative_to(REPO_ROOT)
            else runner.log
        ),
    }
    document = {"context": context, "results": runner.results}
    (runner.raw / "all.json").write_text(json.dumps(document, indent=2))
    args.out.write_text(render(context, runner.results))
    print(f"bench: wrote {args.out} in {elapsed:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
