"""Repository hygiene that CI enforces: ruff is clean, nothing generated is committed, and
the structure rules of tests/structure.py hold (no import cycle, layers respected, short
modules and functions)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import structure

REPO = Path(__file__).resolve().parents[1]
GENERATED = (
    ".venv/",
    ".airflow/",
    "__pycache__/",
    ".pyc",
    ".db",
    ".sqlite",
    ".log",
    "test-artifacts/",
)


def test_ruff_is_clean():
    ruff = Path(sys.executable).with_name("ruff")
    check = subprocess.run([ruff, "check", "."], cwd=REPO, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    fmt = subprocess.run([ruff, "format", "--check", "."], cwd=REPO, capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stdout


def test_nothing_generated_is_committed():
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert tracked
    assert [f for f in tracked if any(g in f for g in GENERATED)] == []


@pytest.mark.parametrize("rule", structure.RULES, ids=lambda rule: rule.__name__)
def test_structure(rule: Callable[[Path], list[str]]):
    """The repository has no import cycle, layer breach, over-long module or function."""
    found = rule(REPO)
    assert found == [], f"{len(found)} finding(s):\n" + "\n".join(found)


def test_structure_checker_obeys_its_own_limits():
    here = ("tests/structure.py",)
    assert structure.long_modules(REPO, here) + structure.long_functions(REPO, here) == []


def _tree(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (relative path -> source) under ``root``."""
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
    return root


def _function(lines: int, decorated: bool = False) -> str:
    """A module holding ``f``, ``lines`` long from its ``def`` line."""
    body = "    x = 1\n" * (lines - 1)
    return ("@decorator\n" if decorated else "") + "def f():\n" + body


PACKAGES = {f"{p}/__init__.py": "" for p in ("plugins", "plugins/airbyte_client", "include")}


def test_checker_finds_a_cycle_through_a_function_local_import(tmp_path: Path):
    root = _tree(
        tmp_path,
        PACKAGES
        | {
            "plugins/airbyte_client/x.py": "def f():\n    from . import y\n",
            "plugins/airbyte_client/y.py": "from plugins.airbyte_client.x import f\n",
        },
    )
    assert structure.findings(root) == [
        "import cycle: plugins.airbyte_client.x -> plugins.airbyte_client.y"
        " -> plugins.airbyte_client.x"
        "  [plugins/airbyte_client/x.py:2, plugins/airbyte_client/y.py:1]"
    ]


def test_checker_finds_a_cycle_through_a_package_init(tmp_path: Path):
    root = _tree(
        tmp_path,
        PACKAGES
        | {
            # The package re-exports a name its module reads back from the package.
            "plugins/airbyte_client/__init__.py": "from .client import Client\nDEFAULT = 1\n",
            "plugins/airbyte_client/client.py": "from plugins.airbyte_client import DEFAULT\n",
            # Importing include.pkg.b runs include/pkg/__init__.py, which imports include.a.
            "include/a.py": "import include.pkg.b\n",
            "include/pkg/__init__.py": "from include import a\n",
            "include/pkg/b.py": "",
        },
    )
    chains = [line.split("  [")[0] for line in structure.import_cycles(root)]
    assert chains == [
        "import cycle: include.a -> include.pkg -> include.a",
        "import cycle: plugins.airbyte_client -> plugins.airbyte_client.client"
        " -> plugins.airbyte_client",
    ]


def test_checker_ignores_type_checking_imports_and_a_package_importing_its_modules(
    tmp_path: Path,
):
    root = _tree(
        tmp_path,
        PACKAGES
        | {
            "include/a.py": "from include.b import B\n",
            "include/b.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n"
                "    from include.a import A\n"
                "B = 1\n"
            ),
            # Running include.pkg.m needs include.pkg initialised already: no cycle.
            "include/pkg/__init__.py": "from include.pkg.m import M\n",
            "include/pkg/m.py": "import include.pkg.n\nM = 1\n",
            "include/pkg/n.py": "",
        },
    )
    assert structure.findings(root) == []


def test_checker_finds_imports_against_the_layers(tmp_path: Path):
    root = _tree(
        tmp_path,
        PACKAGES
        | {
            "plugins/airbyte_hook.py": "import webhook.app\n",
            "plugins/airbyte_client/x.py": "from plugins import airbyte_hook\n",
            "include/y.py": "def f():\n    from dags import my_dag\n",
            "dags/my_dag.py": "from include import y\nfrom plugins.airbyte_client import x\n",
            "webhook/__init__.py": "",
            "webhook/app.py": "from plugins.airbyte_client.x import f\n",
        },
    )
    assert structure.layer_violations(root) == [
        "layer: plugins/airbyte_client/x.py:1 plugins.airbyte_client.x (client)"
        " imports plugins.airbyte_hook (glue)",
        "layer: plugins/airbyte_hook.py:1 plugins.airbyte_hook (glue)"
        " imports webhook.app (webhook)",
        "layer: include/y.py:2 include.y (include) imports dags.my_dag (dags)",
    ]


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("dags/d.py", "dags.e"),
        ("include/i.py", "tests.conftest"),
        ("plugins/airbyte_client/c.py", "bench.run"),
        ("webhook/w.py", "dev.demo"),
        ("dev/v.py", "tests.conftest"),
        ("dev/v.py", "bench.run"),
    ],
)
def test_checker_finds_each_forbidden_layer_pair(tmp_path: Path, importer: str, imported: str):
    root = _tree(tmp_path, {importer: f"import {imported}\n"})
    assert [line.split(" imports ")[1].split()[0] for line in structure.findings(root)] == [
        imported
    ]


def test_checker_counts_type_checking_imports_against_the_layers(tmp_path: Path):
    source = (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import plugins.airbyte_hook\n"
    )
    root = _tree(tmp_path, PACKAGES | {"plugins/airbyte_client/x.py": source})
    assert structure.findings(root) == [
        "layer: plugins/airbyte_client/x.py:3 plugins.airbyte_client.x (client)"
        " imports plugins.airbyte_hook (glue) (under TYPE_CHECKING)"
    ]


def test_checker_finds_a_module_over_400_lines(tmp_path: Path):
    root = _tree(tmp_path, {"include/long.py": "x = 1\n" * 401, "dev/ok.py": "x = 1\n" * 400})
    assert structure.findings(root) == ["long module: include/long.py has 401 lines (max 400)"]


def test_checker_finds_a_function_over_60_lines(tmp_path: Path):
    nested = "def outer():\n" + "".join(f"    {line}\n" for line in _function(61).splitlines())
    root = _tree(
        tmp_path,
        {
            "dags/long.py": _function(61),
            "webhook/ok.py": _function(60, decorated=True),
            "dev/nested.py": nested,
        },
    )
    assert structure.findings(root) == [
        "long function: dags/long.py:1 f has 61 lines (max 60)",
        "long function: dev/nested.py:1 outer has 62 lines (max 60)",
        "long function: dev/nested.py:2 outer.f has 61 lines (max 60)",
    ]


def test_checker_reports_a_module_it_cannot_parse(tmp_path: Path):
    root = _tree(tmp_path, {"include/broken.py": "def f(:\n"})
    assert [line.split(":")[0] for line in structure.findings(root)] == ["syntax error"]
