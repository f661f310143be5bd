"""The receiver run in a fresh interpreter, as its image would run it, for
``test_receiver_image``.

``PROBE`` imports the entry point, starts the app with its lifespan (Airflow client, ledger,
intakes), asks it the probes' paths, loads the connections file, looks the Variables up,
imports what a failure report sends with and the ledger URL's database driver, and prints
what it loaded (``sys.modules``) and which files it opened for reading or writing (an audit
hook). ``run_in_image`` lays out what the Dockerfile's COPYs place under a temporary root and
runs the probe there with the container's environment re-rooted (``container_env``), with
every distribution ``requirements.txt`` does not install made unimportable.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from tests.deploy import receiver_deploy as rd
from tests.deploy.dockerfile import DockerIgnore, Image, copied_files

#: Docker's HOME for a numeric user without a passwd entry, and the default temp directory.
DOCKER_DEFAULTS = {"HOME": "/", "TMPDIR": "/tmp", "PATH": "/usr/local/bin:/usr/bin:/bin"}  # noqa: S108
#: The pod's writable path (an emptyDir in receiver.yaml).
WRITABLE = "/tmp"  # noqa: S108
FIRST_PARTY = ("include", "plugins", "webhook")

PROBE = r"""
import json, os, sys, traceback
WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
found = {"writes": set(), "reads": set()}

def _path(value):
    if value is None or isinstance(value, int) or value in ("", ":memory:", b""):
        return None
    try:
        return os.path.abspath(os.fsdecode(value))
    except TypeError:
        return None

def audit(event, args):
    if event == "open":
        path = _path(args[0])
        if path:
            found["writes" if args[2] & WRITE else "reads"].add(path)
    elif event in ("os.mkdir", "os.remove", "os.rmdir", "sqlite3.connect"):
        path = _path(args[0])
        if path:
            found["writes"].add(path)
    elif event in ("os.rename", "os.symlink", "os.link"):
        path = _path(args[1])
        if path:
            found["writes"].add(path)

# Distributions the image does not install cannot be imported (an optional import then
# takes its fallback, as in the image).
class NotInstalled:

    blocked = frozenset(json.loads(os.environ.get("PROBE_NOT_INSTALLED", "[]")))

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in self.blocked:
            raise ModuleNotFoundError(f"No module named {name!r} (not in the image)", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
before = set(sys.modules)
sys.addaudithook(audit)
result = {"error": None, "health": {}}
try:
    import webhook.__main__  # the entry point's imports
    from fastapi.testclient import TestClient
    from include.connections import load_connections
    from include.notifications import configured_channels
    from include.receiver.app import create_app
    from include.receiver.settings import WebhookSettings
    from include.receiver.settle import entry_of
    from airflow.providers.smtp.hooks.smtp import SmtpHook  # what a failure report sends with

    app = create_app(WebhookSettings())
    with TestClient(app) as client:  # the lifespan: Airflow client, ledger, intakes
        result["health"] = {path: client.get(path).status_code for path in sys.argv[1:]}
    load_connections()
    entry_of("00000000-0000-4000-8000-000000000000")  # the connection-id Variables
    configured_channels()
    if os.environ.get("PROBE_LEDGER_URL"):  # the ledger's DBAPI, loaded without connecting
        import sqlalchemy
        sqlalchemy.create_engine(os.environ["PROBE_LEDGER_URL"]).dispose()
except BaseException:
    result["error"] = traceback.format_exc()
result["modules"] = {
    name: module.__file__
    for name, module in list(sys.modules.items())
    if name not in before and getattr(module, "__file__", None)
}
result.update({key: sorted(paths) for key, paths in found.items()})
print("PROBE-RESULT " + json.dumps(result))
"""


def reroot(value: str, root: Path) -> str:
    """An absolute path (or a ``:``-list of them) moved under ``root``; other values as is."""
    if not value.startswith("/"):
        return value
    return ":".join(str(root / part.lstrip("/")) for part in value.split(":"))


def run_probe(cwd: Path, env: dict[str, str], paths: list[str]) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, *paths],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    line = next((x for x in completed.stdout.splitlines() if x.startswith("PROBE-RESULT ")), None)
    assert line is not None, completed.stderr[-4000:]
    return json.loads(line.removeprefix("PROBE-RESULT "))


def probe_paths() -> list[str]:
    probes = ("startupProbe", "readinessProbe", "livenessProbe")
    spec = rd.container(rd.deployment())
    return sorted({spec[p]["httpGet"]["path"] for p in probes if p in spec})


def not_installed() -> list[str]:
    """Top-level modules of the distributions here that requirements.txt does not bring."""
    closure = rd.installed_closure(rd.pinned_requirements())
    return sorted(
        top
        for top, dists in importlib.metadata.packages_distributions().items()
        if not {canonicalize_name(d) for d in dists} & closure
        and top not in sys.stdlib_module_names
    )


def run_in_image(image: Image, root: Path, paths: list[str]) -> dict[str, Any]:
    """The probe in the image's files laid out under ``root``, as the container runs it."""
    lay_out_image(image, root, DockerIgnore(rd.DOCKERIGNORE.read_text(encoding="utf-8")))
    env = container_env(image, root)
    env["PROBE_NOT_INSTALLED"] = json.dumps(not_installed())
    result = run_probe(root / image.workdir.lstrip("/"), env, paths)
    result["root"] = str(root)
    return result


def container_env(image: Image, root: Path) -> dict[str, str]:
    """What the container's process sees, re-rooted under ``root``: Docker's defaults, the
    image's ENV, the pod's env (the Secret rendered from samples); LEDGER_URL moved aside so
    the probe exercises the path-based fallback (the PostgreSQL URL's driver is loaded)."""
    pod = rd.pod_env(rd.deployment(), rd.rendered_secret())
    env = {**DOCKER_DEFAULTS, **image.env, **pod}
    env["PROBE_LEDGER_URL"] = env.pop("LEDGER_URL", "")
    env = {key: reroot(value, root) for key, value in env.items()}
    env["PATH"] = DOCKER_DEFAULTS["PATH"]
    return env


def lay_out_image(image: Image, root: Path, ignore: DockerIgnore) -> None:
    """The files the COPYs place, under ``root``; the pod's writable /tmp, empty."""
    for inside, source in copied_files(image, rd.REPO_ROOT, ignore).items():
        target = root / inside.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(rd.REPO_ROOT / source, target)
    (root / WRITABLE.lstrip("/")).mkdir(parents=True, exist_ok=True)
    (root / image.workdir.lstrip("/")).mkdir(parents=True, exist_ok=True)
