"""Where the connections file and Airbyte disagree: the one comparison behind discovery
(``python -m include.discovery``) and the daily DAG ``airbyte_workspace_drift``.

``locate`` finds the connection each entry points at in Airbyte's list; ``compare`` turns that
into ``Findings`` of five kinds:

- **new**: connections Airbyte lists that no entry points at;
- **gone**: entries pointing at nothing: their id (written or held by the Variable) is not
  listed or is deleted (``deprecated``), no connection has their ``connection_name`` (or several
  have), or none of their Variables is set;
- **inactive**: entries whose connection's status is not ``active``;
- **renamed**: entries named by id or Variable whose ``label`` is not the connection's Airbyte
  name. Discovery writes Airbyte's name as ``label``, so a difference means a rename since (or a
  label edited by hand: set it to Airbyte's name, or drop it). Entries without a ``label`` are
  never renamed; an entry named by ``connection_name`` is gone when Airbyte renames it;
- **streams**: streams Airbyte has that the entry's ``streams`` (recorded by discovery) lacks,
  and the reverse; an entry with no recorded streams reports none.

``locate`` and ``compare`` are pure: Variables are resolved first, by ``resolve_variables``
with a resolver (``airflow_variables`` where Airflow's Variables are at hand).
``check_workspace`` reads Airbyte (every server the entries use) and compares; ``report``
logs the findings and sends them through the configured notification channels.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from include.connections import ConnectionEntry, ConnectionsFile
from include.notifications import SyncMessage, configured_channels
from plugins.airbyte_client.errors import AirbyteConfigError
from plugins.airbyte_client.models import AirbyteConnection
from plugins.airbyte_hook import AirbyteHook, connection_id_from_variables

log = logging.getLogger(__name__)

#: Variable names -> the connection id the first one set holds, or None when none is set.
Resolver = Callable[[tuple[str, ...]], str | None]
ACTIVE = "active"
#: The status Airbyte gives a deleted connection (lists leave such connections out).
DELETED = "deprecated"


@dataclass(frozen=True)
class Target:
    """What the entry ``key`` points at: ``connection``, or None and ``problem`` says why."""

    key: str
    connection: AirbyteConnection | None
    problem: str = ""


@dataclass(frozen=True)
class NewConnection:
    """A connection Airbyte lists that no entry points at."""

    connection_id: str
    name: str


@dataclass(frozen=True)
class EntryNote:
    """An entry (``key``) and what is wrong with its connection."""

    key: str
    detail: str


@dataclass(frozen=True)
class StreamChange:
    """Streams of the entry ``key``'s connection added or removed since discovery."""

    key: str
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    @property
    def detail(self) -> str:
        """``added a, b; removed c``."""
        parts = [
            f"{verb} {', '.join(names)}"
            for verb, names in (("added", self.added), ("removed", self.removed))
            if names
        ]
        return "; ".join(parts)


@dataclass(frozen=True)
class Findings:
    """Every way the file and Airbyte disagree; false when they agree."""

    new: tuple[NewConnection, ...] = ()
    gone: tuple[EntryNote, ...] = ()
    inactive: tuple[EntryNote, ...] = ()
    renamed: tuple[EntryNote, ...] = ()
    streams: tuple[StreamChange, ...] = ()

    def __bool__(self) -> bool:
        return self.count > 0

    def __add__(self, other: Findings) -> Findings:
        """Both (the findings of two Airbyte servers)."""
        return Findings(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    @property
    def count(self) -> int:
        return sum(len(getattr(self, f.name)) for f in fields(self))

    @property
    def points_at_nothing(self) -> tuple[str, ...]:
        """The keys of the entries whose connection is gone."""
        return tuple(note.key for note in self.gone)

    def as_dict(self) -> dict[str, list[dict[str, Any]]]:
        """JSON-ready, for XCom and notifications."""
        return {
            f.name: [_plain(asdict(item)) for item in getattr(self, f.name)] for f in fields(self)
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Findings:
        """``as_dict`` read back (an XCom read over Airflow's API); items of another shape are
        left out."""
        return cls(**{f.name: _items(data.get(f.name), _ITEM_TYPES[f.name]) for f in fields(cls)})

    @property
    def by_entry(self) -> dict[str, tuple[tuple[str, str], ...]]:
        """``(kind, detail)`` of every finding about an entry, by entry key (``new`` is about
        no entry)."""
        found: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for kind in ("gone", "inactive", "renamed", "streams"):
            for item in getattr(self, kind):
                found[item.key].append((kind, item.detail))
        return {key: tuple(items) for key, items in found.items()}

    def render(self) -> str:
        """The findings as text, one line per finding under a heading per kind."""
        if not self:
            return "The connections file and Airbyte agree."
        sections = [
            (self.new, "Airbyte connections not in the connections file", _new_line),
            (self.gone, "Entries whose connection is gone", _note_line),
            (self.inactive, "Entries whose connection is not active", _note_line),
            (self.renamed, "Entries whose connection was renamed in Airbyte", _note_line),
            (self.streams, "Streams changed since discovery", _note_line),
        ]
        lines = []
        for items, heading, line in sections:
            if items:
                lines += [f"{heading} ({len(items)}):", *(f"  - {line(i)}" for i in items)]
        return "\n".join(lines)


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in item.items()}


_ITEM_TYPES = {
    "new": NewConnection,
    "gone": EntryNote,
    "inactive": EntryNote,
    "renamed": EntryNote,
    "streams": StreamChange,
}


def _items(raw: Any, kind: type) -> tuple[Any, ...]:
    values = raw if isinstance(raw, list) else ()
    return tuple(item for value in values if (item := _item(value, kind)) is not None)


def _item(raw: Any, kind: type) -> Any | None:
    """One finding of ``kind`` from its ``as_dict`` form; None when it has another shape."""
    if not isinstance(raw, Mapping):
        return None
    values: dict[str, Any] = {}
    for name in (f.name for f in fields(kind) if f.name in raw):
        value = raw[name]
        if name in ("added", "removed"):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                return None
            value = tuple(value)
        elif not isinstance(value, str):
            return None
        values[name] = value
    try:
        return kind(**values)
    except TypeError:  # a field it must have is missing
        return None


def _new_line(item: NewConnection) -> str:
    return f"{item.name} ({item.connection_id})"


def _note_line(item: EntryNote | StreamChange) -> str:
    return f"{item.key}: {item.detail}"


def resolve_variables(
    entries: Iterable[ConnectionEntry], resolver: Resolver
) -> dict[str, str | None]:
    """The connection id each entry named by ``connection_variable`` gets from its Variables
    (None when none is set), by key."""
    return {
        e.key: resolver(e.connection_variable) for e in entries if e.connection_variable is not None
    }


def airflow_variables(names: tuple[str, ...]) -> str | None:
    """The first of the Airflow Variables ``names`` that is set, or None."""
    try:
        return connection_id_from_variables(names)
    except AirbyteConfigError:
        return None


def locate(
    entries: Sequence[ConnectionEntry],
    connections: Sequence[AirbyteConnection],
    variable_ids: Mapping[str, str | None],
) -> list[Target]:
    """What each entry points at among ``connections``, in entry order; ``variable_ids`` is
    what ``resolve_variables`` found."""
    by_id = {c.connection_id: c for c in connections}
    by_name: dict[str, list[AirbyteConnection]] = defaultdict(list)
    for connection in connections:
        if connection.status != DELETED:
            by_name[connection.name].append(connection)
    return [_target(entry, by_id, by_name, variable_ids) for entry in entries]


def _target(
    entry: ConnectionEntry,
    by_id: Mapping[str, AirbyteConnection],
    by_name: Mapping[str, list[AirbyteConnection]],
    variable_ids: Mapping[str, str | None],
) -> Target:
    if entry.connection_name is not None:
        named = by_name.get(entry.connection_name, [])
        if len(named) == 1:
            return Target(entry.key, named[0])
        found = "no connection" if not named else f"{len(named)} connections"
        return Target(entry.key, None, f"Airbyte has {found} named {entry.connection_name!r}")
    if entry.connection_id is not None:
        connection_id = entry.connection_id
        where = f"its connection_id {connection_id}"
    else:
        shown = " or ".join(entry.connection_variable or ())
        connection_id = variable_ids.get(entry.key)
        if connection_id is None:
            return Target(entry.key, None, f"the Variable {shown} is not set")
        where = f"{connection_id} (the Variable {shown})"
    connection = by_id.get(connection_id)
    if connection is None:
        return Target(entry.key, None, f"Airbyte does not list {where}")
    if connection.status == DELETED:
        return Target(entry.key, None, f"{where} is deleted in Airbyte")
    return Target(entry.key, connection)


def compare(
    entries: Sequence[ConnectionEntry],
    connections: Sequence[AirbyteConnection],
    variable_ids: Mapping[str, str | None],
) -> Findings:
    """Where ``entries`` and the ``connections`` Airbyte lists disagree."""
    targets = locate(entries, connections, variable_ids)
    pointed = {t.connection.connection_id for t in targets if t.connection is not None}
    inactive, renamed, streams = [], [], []
    for entry, target in zip(entries, targets, strict=True):
        connection = target.connection
        if connection is None:
            continue
        if connection.status != ACTIVE:
            inactive.append(EntryNote(entry.key, f"{connection.name!r} is {connection.status}"))
        if entry.connection_name is None and entry.label not in (None, connection.name):
            detail = f"label {entry.label!r}, but Airbyte calls it {connection.name!r}"
            renamed.append(EntryNote(entry.key, detail))
        change = stream_change(entry.key, entry.streams, connection.streams)
        if change is not None:
            streams.append(change)
    return Findings(
        new=tuple(
            NewConnection(c.connection_id, c.name)
            for c in connections
            if c.status != DELETED and c.connection_id not in pointed
        ),
        gone=tuple(EntryNote(t.key, t.problem) for t in targets if t.connection is None),
        inactive=tuple(inactive),
        renamed=tuple(renamed),
        streams=tuple(streams),
    )


def stream_change(key: str, recorded: Sequence[str], current: Sequence[str]) -> StreamChange | None:
    """What changed from the ``recorded`` streams to Airbyte's ``current`` ones; None when
    nothing did or nothing was recorded."""
    if not recorded:
        return None
    added = tuple(s for s in current if s not in recorded)
    removed = tuple(s for s in recorded if s not in current)
    return StreamChange(key, added, removed) if added or removed else None


def check_workspace(file: ConnectionsFile, resolver: Resolver = airflow_variables) -> Findings:
    """Read the workspace (``file.workspace_id``, else all) of every Airbyte server the file
    uses, all pages, and compare it with the file's entries."""
    findings = Findings()
    for conn_id, entries in file.by_server().items():
        connections = AirbyteHook(conn_id).list_connections(file.workspace_id)
        findings += compare(entries, connections, resolve_variables(entries, resolver))
    return findings


def report(findings: Findings, context: Mapping[str, Any]) -> None:
    """Log the findings and, when there are any, send them through the notification channels
    the Variable ``AIRBYTE_NOTIFY_CHANNELS`` names, as one ``SyncMessage``."""
    log.log(logging.WARNING if findings else logging.INFO, "%s", findings.render())
    if not findings:
        return
    ti = context["ti"]
    gone = len(findings.gone)
    subject = f"Airbyte workspace drift: {findings.count} finding(s)"
    if gone:
        subject += f"; {gone} {'entry points' if gone == 1 else 'entries point'} at nothing"
    message = SyncMessage(
        subject=subject,
        body=findings.render(),
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        task_id=ti.task_id,
        state="failed" if gone else "drift",
        airbyte_job_id=None,
        stats=findings.as_dict(),
    )
    channels = configured_channels()
    for channel in channels:
        channel.send(message)
    log.info("Drift reported through %d channel(s)", len(channels))
