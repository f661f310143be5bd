"""The connections file: every Airbyte connection Airflow orchestrates, and how.

``airbyte_connections.yaml`` at the repository root (``AIRBYTE_CONNECTIONS_FILE`` names
another) is read when DAG files are parsed: a local file, no network, no database. Owned here:
its schema (``ConnectionsFile``, ``ConnectionEntry``), top-level ``defaults`` applied to every
entry, and the one error a bad file gives, ``ConnectionsFileError``, naming the file, the
entry and the field. The DAGs, Assets, the receiver and the drift check read entries from
``load_connections()``.

Parsed with PyYAML's C loader (30 ms for 500 entries; ruamel.yaml, which discovery uses to
keep comments when it rewrites the file, takes 350 ms), with duplicate keys refused.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from include.data_quality import checkpoint_names
from include.notifications import CHANNELS
from include.paths import CONNECTIONS_FILE, SQL_DIR
from plugins.airbyte_client.arguments import validate_connection_id
from plugins.airbyte_client.config import DEFAULT_CONN_ID
from plugins.airbyte_client.errors import AirbyteConfigError

FILE_VARIABLE = "AIRBYTE_CONNECTIONS_FILE"
#: Schedules Airflow knows besides cron expressions (croniter knows @hourly … @yearly).
AIRFLOW_PRESETS = frozenset({"@once", "@continuous", "@quarterly"})
#: Longest entry key: it names DAGs (``airbyte_quality__<key>``) and Assets.
KEY_MAX_LENGTH = 63
Key = Annotated[str, Field(pattern=rf"^[a-z][a-z0-9_]{{0,{KEY_MAX_LENGTH - 1}}}$")]
Name = Annotated[str, Field(min_length=1, max_length=200)]
WaitMode = Literal["deferred", "blocking", "zero_poll"]


@lru_cache(maxsize=256)
def _known_schedule(value: str) -> bool:
    """A preset or a valid cron expression; cached, since a large file repeats a few schedules
    and croniter's check is the largest part of loading one."""
    return value in AIRFLOW_PRESETS or croniter.is_valid(value)


class ConnectionsFileError(ValueError):
    """The connections file cannot be used; the message names the file, entry and field."""


class Transform(BaseModel):
    """A SQL file of ``include/sql`` run on the warehouse after the checks; ``table`` is the
    table it builds (an Asset ``warehouse://<table>``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sql: Name
    table: Name | None = None

    @field_validator("sql")
    @classmethod
    def _exists(cls, sql: str) -> str:
        if not (SQL_DIR / sql).is_file() or Path(sql).name != sql:
            known = ", ".join(sorted(p.name for p in SQL_DIR.glob("*.sql"))) or "none"
            raise ValueError(f"no SQL file {sql!r} in include/sql (there: {known})")
        return sql


class AssetSchedule(BaseModel):
    """Run when any of these Assets (URIs) is updated, e.g. another entry's ``airbyte://…``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    assets: tuple[Name, ...] = Field(min_length=1)


class Pool(BaseModel):
    """The Airflow pool every Airbyte task takes a slot of, deferred ones included: it caps
    how many Airbyte jobs Airflow runs at once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Key = "airbyte"
    slots: int = Field(default=10, ge=1, le=10_000)

    @property
    def description(self) -> str:
        return "Airbyte jobs at once (airbyte_connections.yaml)"


class EntrySettings(BaseModel):
    """What an entry sets and ``defaults`` may set for every entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    airbyte_conn_id: Name = DEFAULT_CONN_ID
    groups: tuple[Key, ...] = ()
    schedule: Name | AssetSchedule | None = None
    wait: WaitMode = "deferred"
    timeout_minutes: float = Field(default=60.0, gt=0, le=60 * 24 * 7)
    min_records: int = Field(default=1, ge=0)
    allow_zero: bool = False
    owner: Name = "data-platform"
    retries: int = Field(default=2, ge=0, le=20)
    notify: tuple[Name, ...] | None = None
    tags: tuple[Name, ...] = ()

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | AssetSchedule | None) -> str | AssetSchedule | None:
        if isinstance(value, str) and not _known_schedule(value):
            raise ValueError(
                f"{value!r} is neither a cron expression ('0 */6 * * *') nor a preset "
                "(@hourly, @daily, @weekly, @monthly, @quarterly, @yearly, @once, @continuous)"
            )
        return value

    @field_validator("notify")
    @classmethod
    def _channels(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        unknown = sorted(set(value or ()) - set(CHANNELS))
        if unknown:
            raise ValueError(f"unknown channel(s) {unknown}; known: {sorted(CHANNELS)}")
        return value


class ConnectionEntry(EntrySettings):
    """One Airbyte connection as Airflow orchestrates it. Its connection is named one way:
    a literal ``connection_id``, Variable(s) holding it, or its Airbyte name (resolved when a
    task runs)."""

    key: Key
    label: Name | None = None
    connection_id: Name | None = None
    connection_variable: tuple[Name, ...] | None = None
    connection_name: Name | None = None
    checkpoint: Name | None = None
    transforms: tuple[Transform, ...] = ()
    streams: tuple[Name, ...] = ()
    asset_uri: Name | None = None

    @field_validator("connection_id")
    @classmethod
    def _uuid(cls, value: str | None) -> str | None:
        try:
            return None if value is None else validate_connection_id(value)
        except AirbyteConfigError:
            raise ValueError(f"{value!r} is not a UUID") from None

    @field_validator("connection_variable", mode="before")
    @classmethod
    def _one_or_more(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("transforms", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        items = value if isinstance(value, list | tuple) else [value]
        return [{"sql": item} if isinstance(item, str) else item for item in items]

    @field_validator("checkpoint")
    @classmethod
    def _known_checkpoint(cls, value: str | None) -> str | None:
        known = checkpoint_names()
        if value is not None and value not in known:
            raise ValueError(f"no checkpoint {value!r} in include/gx/checkpoints (there: {known})")
        return value

    @model_validator(mode="after")
    def _one_connection(self) -> ConnectionEntry:
        given = [
            name
            for name in ("connection_id", "connection_variable", "connection_name")
            if getattr(self, name) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of connection_id, connection_variable, connection_name "
                f"(got {', '.join(given) or 'none'})"
            )
        return self

    @property
    def title(self) -> str:
        return self.label or self.key

    @property
    def connection(self) -> dict[str, Any]:
        """How ``AirbyteSyncOperator`` is told the connection (one keyword argument)."""
        if self.connection_id is not None:
            return {"connection_id": self.connection_id}
        if self.connection_variable is not None:
            return {"connection_id_variable": self.connection_variable}
        return {"connection_name": self.connection_name}

    @property
    def sync_dag_id(self) -> str:
        """The DAG generated for a scheduled entry."""
        return f"airbyte_sync__{self.key}"

    @property
    def quality_dag_id(self) -> str:
        """The DAG generated for an entry with a checkpoint or transforms."""
        return f"airbyte_quality__{self.key}"

    @property
    def has_checks(self) -> bool:
        return self.checkpoint is not None or bool(self.transforms)


class ConnectionsFile(BaseModel):
    """The whole file: the pool, the defaults and the entries, by key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    workspace_id: Name | None = None
    pool: Pool = Pool()
    defaults: EntrySettings = EntrySettings()
    connections: dict[Key, ConnectionEntry] = {}

    def entry(self, key: str) -> ConnectionEntry:
        try:
            return self.connections[key]
        except KeyError:
            raise ConnectionsFileError(
                f"{connections_path()}: no entry {key!r} (entries: {sorted(self.connections)})"
            ) from None

    def group(self, name: str) -> list[ConnectionEntry]:
        """The entries of group ``name``, in file order."""
        return [e for e in self.connections.values() if name in e.groups]

    def by_server(self) -> dict[str, list[ConnectionEntry]]:
        """The entries of each Airbyte server (``airbyte_conn_id``), the defaults' first even
        when it has no entry."""
        grouped: dict[str, list[ConnectionEntry]] = {self.defaults.airbyte_conn_id: []}
        for entry in self.connections.values():
            grouped.setdefault(entry.airbyte_conn_id, []).append(entry)
        return grouped

    def scheduled(self) -> list[ConnectionEntry]:
        """The entries that get a sync DAG of their own."""
        return [e for e in self.connections.values() if e.schedule is not None]

    def checked(self) -> list[ConnectionEntry]:
        """The entries that get a quality DAG (a checkpoint or transforms)."""
        return [e for e in self.connections.values() if e.has_checks]


def connections_path() -> Path:
    """The file in use: ``$AIRBYTE_CONNECTIONS_FILE`` or the repository's own."""
    return Path(os.environ.get(FILE_VARIABLE) or CONNECTIONS_FILE)


_cache: dict[tuple[str, int, int], ConnectionsFile] = {}


def load_connections(path: Path | None = None) -> ConnectionsFile:
    """The validated file (parsed once per process for each version of it on disk)."""
    path = path or connections_path()
    try:
        stat = path.stat()
    except OSError as exc:
        raise ConnectionsFileError(f"{path}: cannot read the connections file: {exc}") from None
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _cache:
        _cache.clear()
        _cache[key] = parse_connections(path.read_bytes(), path)
    return _cache[key]


class _UniqueKeyLoader(yaml.CSafeLoader):
    """PyYAML's C loader, refusing a mapping that repeats a key (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ConnectionsFileError(
                    f"line {key_node.start_mark.line + 1}: the key {key!r} appears twice"
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _UniqueKeyLoader.construct_mapping
)


def parse_connections(text: bytes | str, path: Path) -> ConnectionsFile:
    """``text`` (the content of ``path``) as a checked ``ConnectionsFile``."""
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a safe loader
    except ConnectionsFileError as exc:
        raise ConnectionsFileError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConnectionsFileError(f"{path}: not valid YAML: {exc}") from None
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ConnectionsFileError(f"{path}: the file must be a mapping with 'connections:'")
    entries = raw.get("connections") or {}
    if not isinstance(entries, dict):
        raise ConnectionsFileError(f"{path}: 'connections' must map each entry's key to it")
    top = _checked(ConnectionsFile, {**raw, "connections": {}}, path, "")
    defaults = raw.get("defaults") or {}
    checked = {
        str(key): _checked(ConnectionEntry, _merged(defaults, key, entry, path), path, key)
        for key, entry in entries.items()
    }
    _refuse_shared(checked, path)
    return top.model_copy(update={"connections": checked})


def _merged(defaults: dict, key: Any, entry: Any, path: Path) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise ConnectionsFileError(f"{path}: entry {key!r}: must be a mapping of settings")
    return {**defaults, **entry, "key": key}


def _checked(model: type[BaseModel], data: dict, path: Path, entry: Any) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        where = f"entry {entry!r}" if entry != "" else "top level"
        problems = "; ".join(
            f"field '{'.'.join(str(p) for p in error['loc']) or '(entry)'}': {_message(error)}"
            for error in exc.errors(include_url=False)
        )
        raise ConnectionsFileError(f"{path}: {where}: {problems}") from None


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field (a typo?)"
    return str(error["msg"]).removeprefix("Value error, ")


def _refuse_shared(entries: dict[str, ConnectionEntry], path: Path) -> None:
    """Two entries may not name the same connection or the same Asset."""
    for what in ("connection_id", "connection_name", "asset_uri"):
        owners: dict[Any, str] = {}
        for key, entry in entries.items():
            value = getattr(entry, what)
            if value is not None and value in owners:
                raise ConnectionsFileError(
                    f"{path}: entries {owners[value]!r} and {key!r} have the same {what} {value!r}"
                )
            owners[value] = key
