"""The destination database a sync really writes to (any SQLAlchemy URL)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from dev.airbyte_standin.records import generate_rows, raw_id, stream_spec, to_json_value
from dev.airbyte_standin.seed import SeedConnection

SQL_TYPES: dict[str, type[sa.types.TypeEngine]] = {
    "text": sa.Text,
    "integer": sa.BigInteger,
    "date": sa.Date,
}


@dataclass(frozen=True)
class StreamResult:
    """What a sync wrote to one stream's table."""

    stream: str
    records: int
    bytes: int


def _sql_type(name: str) -> sa.types.TypeEngine:
    if name == "timestamp":
        return sa.DateTime(timezone=True)
    return SQL_TYPES[name]()


def record_bytes(record: dict) -> int:
    """Size of a record serialised as compact JSON (what Airbyte counts as bytes emitted)."""
    data = {key: to_json_value(value) for key, value in record.items()}
    return len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())


class Warehouse:
    """Creates the connections' stream tables on demand, appends synced rows, clears on reset."""

    def __init__(self, url: str) -> None:
        self.url = url
        ensure_sqlite_dir(url)
        self.engine = sa.create_engine(url, future=True)
        self.metadata = sa.MetaData()

    def table(self, connection: SeedConnection, stream: str) -> sa.Table:
        """The SQLAlchemy table of a stream (defined once per process)."""
        name = connection.table_name(stream)
        if name in self.metadata.tables:
            return self.metadata.tables[name]
        spec = stream_spec(connection.source, stream)
        columns = [
            sa.Column(col.name, _sql_type(col.type), primary_key=col.name == "id")
            for col in spec.columns
        ]
        columns += [
            sa.Column("_airbyte_raw_id", sa.Text, nullable=False),
            sa.Column("_airbyte_extracted_at", sa.DateTime(timezone=True), nullable=False),
        ]
        return sa.Table(name, self.metadata, *columns)

    def sync(
        self,
        connection: SeedConnection,
        rows_per_stream: int,
        streams: list[str] | None = None,
        *,
        refresh: str | None = None,
    ) -> list[StreamResult]:
        """Append the next ``rows_per_stream`` rows to each stream's table (``streams``, else
        every one), in one transaction. A ``refresh`` (its cursor reset) re-reads every row
        the source has, those synced before and the next ones, into the table as it is
        (``merge``) or emptied first (``truncate``)."""
        chosen = streams or connection.streams
        tables = {stream: self.table(connection, stream) for stream in connection.streams}
        extracted_at = datetime.now(UTC)
        key = connection.key
        results = []
        with self.engine.begin() as db:
            self.metadata.create_all(db, tables=list(tables.values()))
            starts = {
                stream: db.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                for stream, table in tables.items()
            }
            # rows refer to other streams' rows (a charge's customer): every stream's total
            totals = {
                s: start + (rows_per_stream if s in chosen else 0) for s, start in starts.items()
            }
            for stream in chosen:
                table = tables[stream]
                first = 0 if refresh else starts[stream]
                count = totals[stream] - first
                rows = generate_rows(connection.source, stream, first, count, totals, key)
                size = sum(record_bytes(row) for row in rows)
                for offset, row in enumerate(rows):
                    row["_airbyte_raw_id"] = raw_id(key, stream, first + offset)
                    row["_airbyte_extracted_at"] = extracted_at
                if refresh == "truncate":
                    db.execute(table.delete())
                elif refresh == "merge":  # the records synced again replace their old rows
                    ids = [row["_airbyte_raw_id"] for row in rows]
                    db.execute(table.delete().where(table.c._airbyte_raw_id.in_(ids)))
                if rows:
                    db.execute(table.insert(), rows)
                results.append(StreamResult(stream=stream, records=len(rows), bytes=size))
        return results

    def clear(self, connection: SeedConnection, streams: list[str] | None = None) -> None:
        """Empty the tables of ``streams`` (else every one) of the connection; tables stay."""
        tables = [self.table(connection, stream) for stream in streams or connection.streams]
        with self.engine.begin() as db:
            self.metadata.create_all(db, tables=tables)
            for table in tables:
                db.execute(table.delete())

    def count(self, table_name: str) -> int:
        """Rows in a table, 0 if it does not exist."""
        if not sa.inspect(self.engine).has_table(table_name):
            return 0
        with self.engine.connect() as db:
            return db.execute(sa.text(f'SELECT COUNT(*) FROM "{table_name}"')).scalar_one()

    def dispose(self) -> None:
        """Close pooled connections."""
        self.engine.dispose()


def ensure_sqlite_dir(url: str) -> None:
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
