"""``python -m include.discovery``: bring an Airbyte workspace's connections into the
connections file.

Reads every connection Airbyte lists (``AirbyteHook.list_connections``: all pages, one
workspace or every one) and updates the file in ruamel.yaml's round-trip mode, so its comments,
order, quoting and hand edits stay. A connection no entry points at gets an entry (a key
slugified from its name, ``connection_id``, ``label``, ``streams``; no schedule, so no DAG); an
entry whose connection's streams changed, or that recorded none, gets Airbyte's. Nothing is
removed: entries whose connection is gone are reported (``include.workspace`` compares). The
new file is validated before it replaces the old one, and a run that changes nothing leaves it
untouched. Prints what changed and how many requests Airbyte's API was sent.

Usage: ``python -m include.discovery [--file PATH] [--workspace-id ID] [--conn-id ID]
[--dry-run]`` (``make connections`` runs it against the local stand-in).
"""

from __future__ import annotations

import argparse
import io
import os
import re
import sys
import tempfile
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from include.connections import (
    KEY_MAX_LENGTH,
    ConnectionEntry,
    ConnectionsFile,
    ConnectionsFileError,
    connections_path,
    parse_connections,
)
from include.workspace import (
    Findings,
    Target,
    airflow_variables,
    compare,
    locate,
    resolve_variables,
)
from plugins.airbyte_client.config import DEFAULT_CONN_ID
from plugins.airbyte_client.errors import AirbyteError
from plugins.airbyte_client.models import AirbyteConnection
from plugins.airbyte_hook import AirbyteHook

NEW_FILE = "version: 1\nconnections: {}\n"


class DiscoveryError(RuntimeError):
    """Discovery cannot update the file safely; the message says why and what to do."""


@dataclass(frozen=True)
class Added:
    key: str
    connection: AirbyteConnection


@dataclass(frozen=True)
class StreamUpdate:
    key: str
    before: tuple[str, ...]
    after: tuple[str, ...]


@dataclass(frozen=True)
class Discovery:
    """What one run found, changed and sent."""

    path: Path
    connections: int
    requests: int
    added: tuple[Added, ...]
    updated: tuple[StreamUpdate, ...]
    findings: Findings
    written: bool

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated)

    def render(self) -> str:
        lines = [
            f"{self.path}: Airbyte lists {self.connections} connection(s) "
            f"({self.requests} API request(s), tokens aside)"
        ]
        lines += [
            f"  added {a.key}: {a.connection.name} ({a.connection.connection_id}), "
            f"{len(a.connection.streams)} stream(s)"
            for a in self.added
        ]
        lines += [f"  streams of {u.key}: {_stream_diff(u)}" for u in self.updated]
        others = Findings(
            gone=self.findings.gone,
            inactive=self.findings.inactive,
            renamed=self.findings.renamed,
        )
        if others:
            lines += ["  " + line for line in others.render().splitlines()]
        if not self.changed:
            lines.append("No changes: the file is up to date (not rewritten).")
        else:
            what = f"{len(self.added)} entries added, {len(self.updated)} stream lists updated"
            verb = "Wrote the file:" if self.written else "Dry run, not written:"
            lines.append(f"{verb} {what}.")
        return "\n".join(lines)


def _stream_diff(update: StreamUpdate) -> str:
    if not update.before:
        return f"recorded {', '.join(update.after)}"
    added = [s for s in update.after if s not in update.before]
    removed = [s for s in update.before if s not in update.after]
    return " ".join([*(f"+{s}" for s in added), *(f"-{s}" for s in removed)])


def entry_key(name: str, taken: set[str]) -> str:
    """A key for a connection called ``name``: lower-case ASCII letters, digits and ``_``,
    starting with a letter, at most 63 characters, not in ``taken`` (which it joins)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    base = re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_") or "connection"
    if not base[0].isalpha():
        base = f"connection_{base}"
    key, number = base[:KEY_MAX_LENGTH], 1
    while key in taken:
        number += 1
        suffix = f"_{number}"
        key = base[: KEY_MAX_LENGTH - len(suffix)] + suffix
    taken.add(key)
    return key


def _yaml() -> YAML:
    """Round-trip YAML in the file's layout: 2-space mappings, ``- `` indented under its key."""
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long line
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _flow(items: Sequence[str]) -> CommentedSeq:
    seq = CommentedSeq(items)
    seq.fa.set_flow_style()
    return seq


def _read_airbyte(conn_id: str, workspace_id: str | None) -> tuple[list[AirbyteConnection], int]:
    """Airbyte's connections and how many API requests listing them took."""
    hook = AirbyteHook(conn_id)
    sent: list[httpx.Request] = []
    hook.client.http.event_hooks["request"].append(sent.append)
    return hook.list_connections(workspace_id), len(sent)


def _refuse_unset(variable_ids: dict[str, str | None], entries: list[ConnectionEntry]) -> None:
    unset = [e for e in entries if e.key in variable_ids and variable_ids[e.key] is None]
    if unset:
        named = "; ".join(f"{e.key}: {' or '.join(e.connection_variable or ())}" for e in unset)
        raise DiscoveryError(
            f"the Variables of these entries are not set here ({named}), so discovery cannot "
            "tell whether their connections are already in the file. Run it where Airflow's "
            "Variables are set (or set them, e.g. AIRFLOW_VAR_<NAME>=<connection id>)."
        )


def discover(
    path: Path,
    conn_id: str = DEFAULT_CONN_ID,
    workspace_id: str | None = None,
    *,
    write: bool = True,
) -> Discovery:
    """Update the file at ``path`` (created if missing) from the workspace ``workspace_id``
    (the file's ``workspace_id``, else every one) of the Airbyte server ``conn_id``."""
    text = path.read_text(encoding="utf-8") if path.exists() else NEW_FILE
    file = parse_connections(text, path)
    entries = [e for e in file.connections.values() if e.airbyte_conn_id == conn_id]
    connections, requests = _read_airbyte(conn_id, workspace_id or file.workspace_id)
    variable_ids = resolve_variables(entries, airflow_variables)
    _refuse_unset(variable_ids, entries)
    findings = compare(entries, connections, variable_ids)
    yaml = _yaml()
    document = yaml.load(text) or CommentedMap()
    updated = _update_streams(document, entries, locate(entries, connections, variable_ids))
    added = _add_entries(document, file, conn_id, findings, connections)
    written = False
    if (added or updated) and write:
        _write(path, yaml, document)
        written = True
    return Discovery(
        path, len(connections), requests, tuple(added), tuple(updated), findings, written
    )


def _update_streams(
    document: Any, entries: list[ConnectionEntry], targets: list[Target]
) -> list[StreamUpdate]:
    """Record Airbyte's streams in the entries that recorded none or others."""
    updated = []
    for entry, target in zip(entries, targets, strict=True):
        if target.connection is None:
            continue
        now = target.connection.streams
        if set(now) == set(entry.streams):
            continue
        node = document["connections"][entry.key]
        if isinstance(node.get("streams"), CommentedSeq):
            node["streams"][:] = list(now)
        else:
            node["streams"] = _flow(now)
        updated.append(StreamUpdate(entry.key, entry.streams, now))
    return updated


def _add_entries(
    document: Any,
    file: ConnectionsFile,
    conn_id: str,
    findings: Findings,
    connections: list[AirbyteConnection],
) -> list[Added]:
    """An entry for each connection no entry points at, after the others."""
    if not findings.new:
        return []
    if not isinstance(document.get("connections"), CommentedMap):
        document["connections"] = CommentedMap()
    section = document["connections"]
    section.fa.set_block_style()
    by_id = {c.connection_id: c for c in connections}
    taken = set(file.connections)
    added = []
    for new in findings.new:
        connection = by_id[new.connection_id]
        entry = CommentedMap(connection_id=connection.connection_id, label=connection.name)
        if conn_id != file.defaults.airbyte_conn_id:
            entry["airbyte_conn_id"] = conn_id
        if connection.streams:
            entry["streams"] = _flow(connection.streams)
        key = entry_key(connection.name, taken)
        section[key] = entry
        added.append(Added(key, connection))
    return added


def _write(path: Path, yaml: YAML, document: Any) -> None:
    """Validate the new text, then replace the file with it in one rename."""
    buffer = io.StringIO()
    yaml.dump(document, buffer)
    text = buffer.getvalue()
    parse_connections(text, path)  # never write a file the DAGs would refuse
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        if path.exists():
            os.chmod(name, path.stat().st_mode & 0o7777)
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m include.discovery",
        description="Add the Airbyte workspace's connections to the connections file and "
        "update their streams; report entries whose connection is gone.",
    )
    parser.add_argument(
        "--file", type=Path, default=None, help=f"default: {connections_path()} (in use)"
    )
    parser.add_argument(
        "--workspace-id", default=None, help="default: the file's workspace_id, else all"
    )
    parser.add_argument("--conn-id", default=DEFAULT_CONN_ID, help="the Airflow Connection")
    parser.add_argument("--dry-run", action="store_true", help="say what would change only")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    path = args.file or connections_path()
    try:
        result = discover(path, args.conn_id, args.workspace_id, write=not args.dry_run)
    except (ConnectionsFileError, AirbyteError, DiscoveryError) as exc:
        print(f"discovery: {exc}", file=sys.stderr)
        return 2
    print(result.render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
