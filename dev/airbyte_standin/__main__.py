"""``python -m dev.airbyte_standin``: serve the Airbyte stand-in."""

from __future__ import annotations

import argparse
import json
import sys

import uvicorn

from dev.airbyte_standin.app import create_app
from dev.airbyte_standin.config import StandinConfig, default_warehouse_url
from dev.airbyte_standin.seed import SEED, build_seed


def _count(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, not {value}")
    return value


def parse_args(argv: list[str] | None = None) -> StandinConfig:
    """StandinConfig from command-line arguments."""
    d = StandinConfig
    parser = argparse.ArgumentParser(prog="python -m dev.airbyte_standin", description=__doc__)
    parser.add_argument("--host", default=d.host)
    parser.add_argument("--port", type=int, default=d.port)
    parser.add_argument("--auth", choices=("basic", "token", "none"), default=d.auth)
    parser.add_argument("--username", default=d.username)
    parser.add_argument("--password", default=d.password)
    parser.add_argument("--client-id", default=d.client_id)
    parser.add_argument("--client-secret", default=d.client_secret)
    parser.add_argument("--token-expires-in", type=int, default=d.token_expires_in)
    parser.add_argument("--pending-seconds", type=float, default=d.pending_seconds)
    parser.add_argument("--running-seconds", type=float, default=d.running_seconds)
    parser.add_argument("--rows-per-stream", type=int, default=d.rows_per_stream)
    parser.add_argument(
        "--connections",
        dest="extra_connections",
        type=_count,
        default=d.extra_connections,
        metavar="N",
        help="seed N deterministic connections after the four fixed ones",
    )
    parser.add_argument("--warehouse-url", default=None, help="SQLAlchemy URL of the destination")
    parser.add_argument(
        "--state-url", default=None, help="SQLAlchemy URL keeping the jobs across restarts"
    )
    parser.add_argument("--tick-seconds", type=float, default=d.tick_seconds)
    parser.add_argument(
        "--notification-url", default=None, help="POST Airbyte's sync notifications here"
    )
    parser.add_argument(
        "--validate-contract", action=argparse.BooleanOptionalAction, default=d.validate_contract
    )
    parser.add_argument(
        "--fault", action="append", default=[], type=json.loads, help="fault as JSON; repeatable"
    )
    args = parser.parse_args(argv)
    values = vars(args)
    faults = values.pop("fault")
    values["warehouse_url"] = values["warehouse_url"] or default_warehouse_url()
    return StandinConfig(**values, faults=faults)


def main(argv: list[str] | None = None) -> None:
    config = parse_args(argv)
    app, _ = create_app(config)
    print(f"Airbyte stand-in at http://{config.host}:{config.port} (auth: {config.auth})")
    print(f"warehouse: {config.warehouse_url}")
    for conn in SEED:
        print(f"connection {conn.connection_id} {conn.name}")
    extra = build_seed(config.extra_connections)[len(SEED) :]
    if extra:
        print(f"and {len(extra)} more connections: {extra[0].name} .. {extra[-1].name}")
    sys.stdout.flush()
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning")


if __name__ == "__main__":
    main()
