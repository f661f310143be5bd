"""The standalone receiver's image (``deploy/receiver/Dockerfile``), checked without Docker.

No Docker engine runs on the test machines (only the client is installed), so nothing is
built. Instead:

- the Dockerfile is read (``tests/deploy/dockerfile.py``): the base image is the project's
  Python, the exact pins of ``requirements.txt`` are installed (with ``constraints.txt``) as
  root, the final user is numeric and not root, ``python -m webhook`` is the exec-form
  entry point, the port and host agree with the receiver's settings;
- a probe imports the receiver in a fresh interpreter from the repository and lists every
  first-party file it loads or opens (``sys.modules`` and an audit hook): each must be in
  the image, at its place under ``PYTHONPATH``, and not dropped by ``.dockerignore``;
- the same probe then runs in a copy of the image's files alone (what the COPYs place, under
  a temporary root), with the image's and the pod's environment re-rooted there: the
  receiver starts (lifespan, ledger, intakes), serves the probes' path, reads the connections
  file, and writes nothing outside ``/tmp`` (the pod's only writable path); every
  third-party distribution it loads is one ``requirements.txt`` installs.
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from packaging.utils import canonicalize_name

from tests.deploy import receiver_deploy as rd
from tests.deploy.dockerfile import DockerIgnore, Image, copied_files, parse
from tests.deploy.receiver_probe import (
    FIRST_PARTY,
    WRITABLE,
    container_env,
    not_installed,
    probe_paths,
    run_in_image,
    run_probe,
)


@pytest.fixture(scope="module")
def repository_probe(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The probe in the repository: what the receiver loads and opens from it."""
    root = tmp_path_factory.mktemp("repository-probe")
    env = container_env(rd.image(), root)
    env["PYTHONPATH"] = str(rd.REPO_ROOT)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    for path in ("tmp", "cwd"):
        (root / path).mkdir()
    result = run_probe(root / "cwd", env, probe_paths())
    assert result["error"] is None, result["error"]
    return result


@pytest.fixture(scope="module")
def image_probe(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The probe in a copy of the image's files, with the container's environment."""
    return run_in_image(rd.image(), tmp_path_factory.mktemp("image-root"), probe_paths())


def runtime_files(probe: dict[str, Any]) -> set[str]:
    """Repository-relative files the probe loaded as modules or opened."""
    repo, environment = rd.REPO_ROOT.resolve(), Path(sys.prefix).resolve()
    found = set()
    for path in [*probe["modules"].values(), *probe["reads"]]:
        resolved = Path(path).resolve()
        if (
            resolved.is_relative_to(repo)
            and not resolved.is_relative_to(environment)  # the venv may live in the checkout
            and "__pycache__" not in resolved.parts
        ):
            found.add(resolved.relative_to(repo).as_posix())
    return found


def coverage_problems(image: Image, ignore: DockerIgnore, needed: set[str]) -> list[str]:
    """Needed repository files the image lacks at ``<PYTHONPATH>/<path>``."""
    pythonpath = image.env.get("PYTHONPATH", "")
    if not pythonpath.startswith("/") or ":" in pythonpath:
        return [f"PYTHONPATH {pythonpath!r} is not the one absolute folder the code is copied to"]
    placed = copied_files(image, rd.REPO_ROOT, ignore)
    problems = []
    for path in sorted(needed):
        if ignore.ignored(path):
            problems.append(f"{path} is excluded by .dockerignore")
        elif placed.get(f"{pythonpath.rstrip('/')}/{path}") != path:
            problems.append(f"{path} is not copied to {pythonpath}/{path}")
    return problems


def test_the_receiver_loads_the_code_and_data_the_probe_expects(repository_probe: dict):
    """The probe sees what it must: first-party packages, and the connections file."""
    tops = {path.split("/")[0] for path in runtime_files(repository_probe)}
    assert set(FIRST_PARTY) <= tops
    assert "airbyte_connections.yaml" in runtime_files(repository_probe)
    assert all(code == 200 for code in repository_probe["health"].values())


def test_image_copies_every_file_the_receiver_loads(repository_probe: dict):
    needed = runtime_files(repository_probe)
    ignore = DockerIgnore(rd.DOCKERIGNORE.read_text(encoding="utf-8"))
    assert coverage_problems(rd.image(), ignore, needed) == []


@pytest.mark.parametrize(
    ("dockerfile", "dockerignore"),
    [
        (lambda t: t.replace("COPY plugins/ plugins/\n", ""), None),
        (
            lambda t: t.replace(
                "COPY airbyte_connections.yaml ./", "COPY airbyte_connections.yaml conf/"
            ),
            None,
        ),
        (lambda t: t.replace("COPY include/ include/", "COPY include/ lib/include/"), None),
        (lambda t: t.replace("PYTHONPATH=/opt/receiver", "PYTHONPATH=/opt"), None),
        (None, lambda t: t + "include/receiver/\n"),
        (None, lambda t: t + "**/*.yaml\n"),
    ],
    ids=[
        "no-plugins",
        "connections-elsewhere",
        "include-moved",
        "pythonpath",
        "ignored-module",
        "ignored-yaml",
    ],
)
def test_coverage_check_catches_a_missing_file(repository_probe: dict, dockerfile, dockerignore):
    text = rd.DOCKERFILE.read_text(encoding="utf-8")
    ignore_text = rd.DOCKERIGNORE.read_text(encoding="utf-8")
    broken_text = dockerfile(text) if dockerfile else text
    assert broken_text != text or dockerignore
    ignore = DockerIgnore(dockerignore(ignore_text) if dockerignore else ignore_text)
    assert coverage_problems(parse(broken_text), ignore, runtime_files(repository_probe))


def test_receiver_starts_from_the_image_files_alone(image_probe: dict):
    assert image_probe["error"] is None, image_probe["error"]
    assert image_probe["health"]
    assert set(image_probe["health"].values()) == {200}
    root = Path(image_probe["root"]).resolve()
    first_party = {
        name: path
        for name, path in image_probe["modules"].items()
        if name.split(".")[0] in FIRST_PARTY
    }
    assert {name.split(".")[0] for name in first_party} == set(FIRST_PARTY)
    outside = {n: p for n, p in first_party.items() if not Path(p).resolve().is_relative_to(root)}
    assert outside == {}, "first-party modules loaded from outside the image's files"


def write_problems(probe: dict[str, Any]) -> list[str]:
    root = Path(probe["root"]).resolve()
    writable = root / WRITABLE.lstrip("/")
    return [
        f"writes {path}"
        for path in probe["writes"]
        if not Path(path).resolve().is_relative_to(writable) and not path.startswith("/dev/")
    ]


def test_receiver_writes_only_under_tmp(image_probe: dict):
    assert image_probe["error"] is None, image_probe["error"]
    assert image_probe["writes"], "the probe saw no write at all (the ledger file at least)"
    assert write_problems(image_probe) == []


@pytest.mark.parametrize(
    "drop",
    ["PYTHONDONTWRITEBYTECODE", "LEDGER_PATH", "HOME AIRFLOW_HOME"],
    ids=["bytecode", "ledger-path", "airflow-home"],
)
def test_write_check_catches_a_write_outside_tmp(tmp_path: Path, drop: str):
    """Without one of the image's ENV settings the receiver writes into the read-only root."""
    image = rd.image()
    for key in drop.split():
        image.env.pop(key)
    result = run_in_image(image, tmp_path, [])
    assert result["error"] is None, result["error"]
    assert write_problems(result)


def test_every_distribution_loaded_is_installed_by_the_requirements(image_probe: dict):
    """The image installs requirements.txt only: the probe ran with every other distribution
    here made unimportable, and whatever it imported from site-packages comes with it."""
    assert image_probe["error"] is None, image_probe["error"]
    assert "rfc3339_validator" in not_installed()  # a dev tool's dependency, really blocked
    closure = rd.installed_closure(rd.pinned_requirements())
    owners = importlib.metadata.packages_distributions()
    missing = set()
    for name, path in image_probe["modules"].items():
        if "site-packages" not in Path(path).parts:
            continue
        dists = {canonicalize_name(d) for d in owners.get(name.split(".")[0], [])}
        if not dists & closure:
            missing.add(f"{name} ({', '.join(sorted(dists)) or 'no distribution'})")
    assert missing == set()
    assert {"fastapi", "uvicorn", "sqlalchemy", "psycopg2-binary"} <= closure


def test_image_installs_the_exact_pins_as_root():
    image = rd.image()
    for requirement in rd.pinned_requirements():
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"{requirement} is not an exact pin"
    placed = copied_files(image, rd.REPO_ROOT, DockerIgnore(""))
    installs = [
        (index, words)
        for index, ins in enumerate(image.instructions)
        if ins.keyword == "RUN"
        and (words := ins.exec_form() or ins.args.split())
        and words[:4] == ["python", "-m", "pip", "install"]
    ]
    assert len(installs) == 1, "one pip install, in exec form"
    index, words = installs[0]
    resolve = {
        flag: placed.get(str(Path(image_workdir_at(image, index)) / words[words.index(flag) + 1]))
        for flag in ("-r", "-c")
        if flag in words
    }
    assert resolve == {"-r": "requirements.txt", "-c": "constraints.txt"}
    assert image.user_at is not None
    assert index < image.user_at, "installed before USER"
    assert any(ins.exec_form() == ["python", "-m", "pip", "check"] for ins in image.runs)


def image_workdir_at(image: Image, index: int) -> str:
    workdir = "/"
    for ins in image.instructions[:index]:
        if ins.keyword == "WORKDIR":
            workdir = str(Path(workdir) / ins.args)
    return workdir


def test_image_runs_python_3_11_as_a_numeric_non_root_user():
    image = rd.image()
    assert re.fullmatch(r"python:3\.11-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?", image.base)
    requires = (rd.REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'requires-python = ">=3.11,<3.12"' in requires
    assert image.user is not None
    found = re.fullmatch(r"(\d+)(?::(\d+))?", image.user)
    assert found, f"USER {image.user} is not numeric (runAsNonRoot cannot check a name)"
    assert int(found.group(1)) != 0
    assert int(found.group(2) or 1) != 0
    after = [i.keyword for i in image.instructions[image.user_at :]]
    assert "RUN" not in after
    assert "COPY" not in after


def test_image_starts_the_receiver_on_all_interfaces():
    image = rd.image()
    assert image.entrypoint is not None
    assert image.entrypoint.exec_form() == ["python", "-m", "webhook"], "exec form, no shell"
    assert image.cmd is None
    assert (rd.REPO_ROOT / "webhook" / "__main__.py").is_file()
    assert image.env["WEBHOOK_HOST"] == "0.0.0.0"  # noqa: S104
    assert image.expose == [image.env["WEBHOOK_PORT"]]
