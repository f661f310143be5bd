"""``python -m webhook``: serve the receiver with uvicorn on 127.0.0.1:$WEBHOOK_PORT (8090)."""

from __future__ import annotations

import copy
import logging
import sys

import uvicorn
from pydantic import ValidationError
from uvicorn.config import LOGGING_CONFIG

from include.receiver.app import create_app
from include.receiver.routes import NOTIFICATIONS_PATH
from include.receiver.settings import WebhookSettings

#: Importing the notification intake imports Airflow, whose logging setup stops
#: ``uvicorn.error`` propagating; uvicorn's own config leaves that in place unless told.
UVICORN_LOG_CONFIG = copy.deepcopy(LOGGING_CONFIG)
UVICORN_LOG_CONFIG["loggers"]["uvicorn.error"]["propagate"] = True


class RedactNotificationToken(logging.Filter):
    """Uvicorn's access log would print the secret token of the notification route."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3:
            path = str(record.args[2])
            if path.startswith(NOTIFICATIONS_PATH + "/"):
                args = list(record.args)
                args[2] = NOTIFICATIONS_PATH + "/***"
                record.args = tuple(args)
        return True


def main() -> int:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        force=True,  # over the handlers Airflow's import installed
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").addFilter(RedactNotificationToken())
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
    if settings.airbyte_notification_token is not None:
        print(f"Airbyte notifications on {NOTIFICATIONS_PATH}/<AIRBYTE_NOTIFICATION_TOKEN>")
    uvicorn.run(
        create_app(settings),
        host=settings.webhook_host,
        port=settings.webhook_port,
        log_level="info",
        log_config=UVICORN_LOG_CONFIG,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
