"""``python -m webhook``: serve the receiver with uvicorn on 127.0.0.1:$WEBHOOK_PORT (8090)."""

from __future__ import annotations

import logging
import sys

import uvicorn
from pydantic import ValidationError

from webhook.app import create_app
from webhook.settings import WebhookSettings


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        settings = WebhookSettings()
    except ValidationError as error:
        for problem in error.errors(include_url=False, include_input=False):
            field = ".".join(str(p) for p in problem["loc"]).upper()
            print(f"webhook: {field}: {problem['msg']}", file=sys.stderr)
        return 2
    print(
        f"Webhook receiver on http://{settings.webhook_host}:{settings.webhook_port}/events"
        f" -> {settings.airflow_base} DAG {settings.dag_id}",
        flush=True,
    )
    uvicorn.run(
        create_app(settings),
        host=settings.webhook_host,
        port=settings.webhook_port,
        log_level="info",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
