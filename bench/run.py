"""``make bench``: run every benchmark for both sides and write ``bench/RESULTS.md``.

Ours runs in the project's venv; the official provider (apache-airflow-providers-airbyte,
pinned in ``bench/requirements-official.txt``) in ``bench/.venv-official``: an overlay venv
that sees the project's venv (same Airflow and dependencies, exactly ``constraints.txt``) and
adds only the provider and its SDK, so the project's venv stays as pinned. Benchmarks that
measure CPU or time run one process at a time; the ones that mostly sleep run side by side.
Everything talks only to stand-ins on 127.0.0.1.

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
import time
from concurrent.futures import ThreadPoolExecutor
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
    subprocess.run(
        [
            *pip,
            "install",
            "--no-deps",
            "-r",
            str(REQUIREMENTS),
            "-c",
            str(REPO_ROOT / "constraints.txt"),
        ],
        check=True,
    )
    subprocess.run([*pip, "check"], check=True)
    stamp.write_text(wanted)
    return python


def run_script(
    python: Path, module: str, side: str, out: Path, log: Path, *extra: str, quick: bool = False
) -> dict[str, Any] | None:
    """Run ``python -m bench.<module> --side side`` and return its JSON (None if it failed)."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    args = [str(python), "-m", f"bench.{module}", "--side", side, "--json", str(out), *extra]
    if quick:
        args.append("--quick")
    started = time.monotonic()
    with log.open("a") as sink:
        sink.write(f"\n$ {' '.join(args)}\n")
        sink.flush()
        done = subprocess.run(args, cwd=REPO_ROOT, env=env, stdout=sink, stderr=sink)
    took = time.monotonic() - started
    print(f"  {module:<17} {side:<9} {' '.join(extra):<8} {took:6.1f} s  rc={done.returncode}")
    if done.returncode != 0 or not out.exists():
        return None
    return json.loads(out.read_text())


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="ours only, reduced (smoke test)")
    parser.add_argument("--out", type=Path, default=BENCH / "RESULTS.md")
    parser.add_argument("--raw", type=Path, default=BENCH / ".results", help="raw JSON here")
    parser.add_argument(
        "--render", action="store_true", help="only re-render --out from the raw all.json"
    )
    args = parser.parse_args()
    if args.render:
        saved = json.loads((args.raw / "all.json").read_text())
        args.out.write_text(render(saved["context"], saved["results"]))
        return
    started = time.monotonic()
    compile_ours()  # every bench measures byte-compiled modules on both sides
    ours = Path(sys.executable)
    official = None if args.quick else official_python()
    sides = {"ours": ours} if official is None else {"ours": ours, "official": official}
    raw = Path(tempfile.mkdtemp(prefix="bench-raw-")) if args.quick else args.raw
    raw.mkdir(parents=True, exist_ok=True)
    log = raw / "bench.log"
    log.write_text("")
    print(f"bench: raw results and logs in {raw}")
    results: dict[str, Any] = {}

    def job(module: str, side: str, *extra: str) -> tuple[str, str, str, Any]:
        name = "-".join([module, side, *extra])
        out = raw / f"{name}.json"
        out.unlink(missing_ok=True)
        data = run_script(sides[side], module, side, out, log, *extra, quick=args.quick)
        return module, side, "-".join(extra), data

    def store(item: tuple[str, str, str, Any]) -> None:
        module, side, key, data = item
        results.setdefault(module, {}).setdefault(side, {})[key or "all"] = data

    # 1 + 2: they mostly sleep (scaled timelines); both sides side by side.
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(job, "polling", side) for side in sides]
        futures.append(pool.submit(lambda: [job("worker_slot", side) for side in sides]))
        for future in futures:
            value = future.result()
            for item in value if isinstance(value, list) else [value]:
                store(item)
    # 3 and 4 measure CPU and time: one process at a time.
    counts = (20,) if args.quick else TRIGGER_COUNTS
    for n in counts:
        for side in sides:
            store(job("triggerer", side, "--n", str(n)))
    for side in sides:
        store(job("parse_cost", side))
    # 5: counts only; side by side.
    with ThreadPoolExecutor(max_workers=2) as pool:
        for item in pool.map(lambda side: job("resilience", side), sides):
            store(item)
    # 6: ours only (the official provider has no notification path); starts its own Airflow.
    store(job("notifications", "ours"))
    # 7: ours only (no connections file there); parse times and its own Airflow: alone.
    store(job("connections_scale", "ours"))
    write_results(args, raw, results, time.monotonic() - started, official)


def write_results(
    args: argparse.Namespace, raw: Path, results: dict, elapsed: float, official: Path | None
) -> None:
    """The raw ``all.json`` and the rendered report, with the run's context."""
    context = {
        "command": "python -m bench.run --quick" if args.quick else "make bench",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "versions": versions(official),
        "elapsed_s": round(elapsed, 1),
        "quick": args.quick,
    }
    (raw / "all.json").write_text(json.dumps({"context": context, "results": results}, indent=2))
    args.out.write_text(render(context, results))
    print(f"bench: wrote {args.out} in {elapsed:.0f} s")


if __name__ == "__main__":
    main()
