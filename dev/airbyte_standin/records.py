"""Deterministic, realistic records for every stream.

Row ``n`` of a stream (0-based, counted over all syncs since the last reset) always has the
same content, so each sync appends the next ``rows_per_stream`` rows with new ids. The streams
of ``STREAM_SPECS`` have their own columns; any other stream (an extra connection's, one added
at run time) has the generic ``GENERIC_SPEC``.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
_NAMESPACE = uuid.UUID("9a1d3c5e-7f2b-4d6a-8c0e-1b3d5f7a9c2e")

FIRST_NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Linus")
LAST_NAMES = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson")
COMPANY_WORDS = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne")
INDUSTRIES = ("Software", "Retail", "Healthcare", "Finance", "Manufacturing", "Education")

Record = dict[str, Any]
Generator = Callable[[random.Random, int, "RowContext"], Record]


@dataclass(frozen=True)
class Column:
    """A destination column: name and a portable type name (text/integer/timestamp/date)."""

    name: str
    type: str


@dataclass(frozen=True)
class RowContext:
    """What a generator may reference: the key of the rows' ids (the source, or the
    connection's slug), the stream, and rows already present in other streams."""

    source: str
    row_counts: dict[str, int]
    stream: str = ""

    def existing_id(self, rng: random.Random, stream: str, prefix: str) -> str:
        """Id of a random row that exists in ``stream`` (counting this sync's rows)."""
        return make_id(prefix, self.source, stream, rng.randrange(self.rows_in(stream)))

    def rows_in(self, stream: str) -> int:
        """Rows of ``stream`` (at least 1, so a reference has something to point at)."""
        return max(self.row_counts.get(stream, 0), 1)


@dataclass(frozen=True)
class StreamSpec:
    """Columns (besides the Airbyte meta columns), cursor field and row generator of a stream."""

    columns: tuple[Column, ...]
    cursor: str
    generate: Generator


def make_id(prefix: str, source: str, stream: str, index: int) -> str:
    """Stable id of row ``index`` of a stream, e.g. ``ch_3f9a0c2b11d4e5``."""
    digest = hashlib.sha256(f"{source}/{stream}/{index}".encode()).hexdigest()[:14]
    return f"{prefix}_{digest}"


def raw_id(source: str, stream: str, index: int) -> str:
    """Deterministic ``_airbyte_raw_id`` of a row."""
    return str(uuid.uuid5(_NAMESPACE, f"{source}/{stream}/{index}"))


def _moment(index: int, rng: random.Random) -> datetime:
    return EPOCH + timedelta(hours=index * 3, minutes=rng.randrange(180))


def _person(rng: random.Random) -> tuple[str, str]:
    return rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)


def _email(first: str, last: str, index: int) -> str:
    return f"{first}.{last}.{index}@example.com".lower()


def _stripe_customer(rng: random.Random, n: int, ctx: RowContext) -> Record:
    first, last = _person(rng)
    return {
        "id": make_id("cus", ctx.source, "customers", n),
        "email": _email(first, last, n),
        "name": f"{first} {last}",
        "created": _moment(n, rng),
    }


def _stripe_charge(rng: random.Random, n: int, ctx: RowContext) -> Record:
    return {
        "id": make_id("ch", ctx.source, "charges", n),
        "customer_id": ctx.existing_id(rng, "customers", "cus"),
        "amount": rng.randrange(500, 250_000),
        "currency": rng.choice(("usd", "usd", "eur", "gbp")),
        "status": rng.choices(("succeeded", "failed", "refunded"), weights=(85, 10, 5))[0],
        "created": _moment(n, rng),
    }


def _stripe_invoice(rng: random.Random, n: int, ctx: RowContext) -> Record:
    return {
        "id": make_id("in", ctx.source, "invoices", n),
        "customer_id": ctx.existing_id(rng, "customers", "cus"),
        "amount_due": rng.randrange(1_000, 500_000),
        "status": rng.choices(("paid", "open", "void", "uncollectible"), weights=(70, 20, 5, 5))[0],
        "created": _moment(n, rng),
    }


def _hubspot_contact(rng: random.Random, n: int, ctx: RowContext) -> Record:
    first, last = _person(rng)
    return {
        "id": str(100_000 + n),
        "email": _email(first, last, n),
        "firstname": first,
        "lastname": last,
        "lifecyclestage": rng.choice(("subscriber", "lead", "opportunity", "customer")),
        "createdate": _moment(n, rng),
    }


def _hubspot_company(rng: random.Random, n: int, ctx: RowContext) -> Record:
    name = f"{rng.choice(COMPANY_WORDS)} {rng.choice(('Inc', 'LLC', 'GmbH', 'Ltd'))} {n}"
    return {
        "id": str(500_000 + n),
        "name": name,
        "domain": f"{name.split()[0].lower()}{n}.example.com",
        "industry": rng.choice(INDUSTRIES),
        "createdate": _moment(n, rng),
    }


def _hubspot_deal(rng: random.Random, n: int, ctx: RowContext) -> Record:
    company = 500_000 + rng.randrange(ctx.rows_in("companies"))
    return {
        "id": str(900_000 + n),
        "dealname": f"Deal {n}",
        "amount": rng.randrange(1_000, 200_000),
        "dealstage": rng.choice(
            ("appointmentscheduled", "qualifiedtobuy", "closedwon", "closedlost")
        ),
        "company_id": str(company),
        "closedate": (EPOCH + timedelta(days=n + rng.randrange(30))).date(),
    }


def _salesforce_account(rng: random.Random, n: int, ctx: RowContext) -> Record:
    return {
        "id": make_id("001", ctx.source, "accounts", n),
        "name": f"{rng.choice(COMPANY_WORDS)} {rng.choice(('Corp', 'Group', 'Holdings'))} {n}",
        "industry": rng.choice(INDUSTRIES),
        "annual_revenue": rng.randrange(100_000, 50_000_000),
        "created_date": _moment(n, rng),
    }


def _salesforce_opportunity(rng: random.Random, n: int, ctx: RowContext) -> Record:
    return {
        "id": make_id("006", ctx.source, "opportunities", n),
        "account_id": ctx.existing_id(rng, "accounts", "001"),
        "name": f"Opportunity {n}",
        "stage_name": rng.choice(("Prospecting", "Qualification", "Closed Won", "Closed Lost")),
        "amount": rng.randrange(5_000, 1_000_000),
        "close_date": (EPOCH + timedelta(days=n + rng.randrange(60))).date(),
    }


def _generic(rng: random.Random, n: int, ctx: RowContext) -> Record:
    return {
        "id": make_id("rec", ctx.source, ctx.stream, n),
        "name": f"{rng.choice(COMPANY_WORDS)} {ctx.stream} {n}",
        "amount": rng.randrange(0, 100_000),
        "updated_at": _moment(n, rng),
    }


def _cols(*pairs: str) -> tuple[Column, ...]:
    return tuple(Column(*pair.split(":")) for pair in pairs)


STREAM_SPECS: dict[str, dict[str, StreamSpec]] = {
    "stripe": {
        "customers": StreamSpec(
            _cols("id:text", "email:text", "name:text", "created:timestamp"),
            "created",
            _stripe_customer,
        ),
        "charges": StreamSpec(
            _cols(
                "id:text",
                "customer_id:text",
                "amount:integer",
                "currency:text",
                "status:text",
                "created:timestamp",
            ),
            "created",
            _stripe_charge,
        ),
        "invoices": StreamSpec(
            _cols(
                "id:text",
                "customer_id:text",
                "amount_due:integer",
                "status:text",
                "created:timestamp",
            ),
            "created",
            _stripe_invoice,
        ),
    },
    "hubspot": {
        "contacts": StreamSpec(
            _cols(
                "id:text",
                "email:text",
                "firstname:text",
                "lastname:text",
                "lifecyclestage:text",
                "createdate:timestamp",
            ),
            "createdate",
            _hubspot_contact,
        ),
        "companies": StreamSpec(
            _cols("id:text", "name:text", "domain:text", "industry:text", "createdate:timestamp"),
            "createdate",
            _hubspot_company,
        ),
        "deals": StreamSpec(
            _cols(
                "id:text",
                "dealname:text",
                "amount:integer",
                "dealstage:text",
                "company_id:text",
                "closedate:date",
            ),
            "closedate",
            _hubspot_deal,
        ),
    },
    "salesforce": {
        "accounts": StreamSpec(
            _cols(
                "id:text",
                "name:text",
                "industry:text",
                "annual_revenue:integer",
                "created_date:timestamp",
            ),
            "created_date",
            _salesforce_account,
        ),
        "opportunities": StreamSpec(
            _cols(
                "id:text",
                "account_id:text",
                "name:text",
                "stage_name:text",
                "amount:integer",
                "close_date:date",
            ),
            "close_date",
            _salesforce_opportunity,
        ),
    },
}

GENERIC_SPEC = StreamSpec(
    _cols("id:text", "name:text", "amount:integer", "updated_at:timestamp"), "updated_at", _generic
)


def stream_spec(source: str, stream: str) -> StreamSpec:
    """The spec of ``stream`` of a ``source`` type: its own, else ``GENERIC_SPEC``."""
    return STREAM_SPECS.get(source, {}).get(stream, GENERIC_SPEC)


JSON_TYPES = {
    "text": {"type": "string"},
    "integer": {"type": "integer"},
    "timestamp": {"type": "string", "format": "date-time"},
    "date": {"type": "string", "format": "date"},
}


def json_schema(source: str, stream: str) -> dict[str, Any]:
    """JSON schema of a stream's records, as a source would declare it."""
    spec = stream_spec(source, stream)
    return {
        "type": "object",
        "properties": {col.name: JSON_TYPES[col.type] for col in spec.columns},
    }


def generate_rows(
    source: str,
    stream: str,
    start: int,
    count: int,
    row_counts: dict[str, int],
    key: str | None = None,
) -> list[Record]:
    """Rows ``start .. start+count-1`` of a stream of a ``source`` type; ``row_counts`` are
    other streams' totals; ``key`` (default ``source``) seeds the rows and their ids."""
    spec = stream_spec(source, stream)
    key = key or source
    ctx = RowContext(source=key, row_counts=row_counts, stream=stream)
    rows = []
    for n in range(start, start + count):
        rng = random.Random(f"{key}/{stream}/{n}")
        rows.append(spec.generate(rng, n, ctx))
    return rows


def to_json_value(value: Any) -> Any:
    """JSON-serialisable form of a record value (dates in ISO 8601)."""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value
