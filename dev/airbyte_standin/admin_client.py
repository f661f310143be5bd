"""The handle of a started stand-in: its URLs and a client of its ``/_standin`` admin API.

``RunningStandin`` is what ``dev.airbyte_standin.serving`` yields; every helper talks to the
server over real HTTP (queue faults and job behaviours, add and delete connections and
streams, read the request log and the jobs, check the Airbyte contract, fetch auth headers).
"""

from __future__ import annotations

import base64
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from dev.airbyte_standin.config import StandinConfig

ADMIN_TIMEOUT = 10.0


@dataclass
class RunningStandin:
    """A started stand-in; every helper talks to it over real HTTP."""

    url: str
    config: StandinConfig
    process: subprocess.Popen | None = field(default=None, repr=False)
    log_file: Path | None = field(default=None, repr=False)
    #: What admin calls verify the server's certificate against (its CA bundle under TLS).
    verify: str | bool = True

    @property
    def warehouse_url(self) -> str:
        return self.config.warehouse_url

    @property
    def config_api_url(self) -> str:
        """Base of the Configuration API, e.g. ``http://127.0.0.1:PORT/api/v1``."""
        return f"{self.url}/api/v1"

    @property
    def public_api_url(self) -> str:
        """Base of the Public API, e.g. ``http://127.0.0.1:PORT/api/public/v1``."""
        return f"{self.url}/api/public/v1"

    def _admin(self, method: str, path: str, payload: dict | None = None) -> Any:
        response = requests.request(
            method,
            f"{self.url}/_standin{path}",
            json=payload,
            timeout=ADMIN_TIMEOUT,
            verify=self.verify,
        )
        response.raise_for_status()
        return response.json()

    def inject(self, kind: str, **settings: Any) -> list[dict[str, Any]]:
        """Queue a fault (a kind of ``faults.FAULT_KINDS``, with its ``Fault`` settings)."""
        return self._admin("POST", "/faults", {"kind": kind, **settings})["faults"]

    def set_job_behaviour(
        self,
        behaviour: str,
        connection_id: str | None = None,
        count: int = 1,
        failure_reason: str | None = None,
    ) -> None:
        """Make the next ``count`` jobs (on ``connection_id`` if given) behave so."""
        self._admin(
            "POST",
            "/job-behaviour",
            {
                "behaviour": behaviour,
                "connection_id": connection_id,
                "count": count,
                "failure_reason": failure_reason,
            },
        )

    def faults(self) -> list[dict[str, Any]]:
        """The faults still queued (a fault leaves the queue when its last request takes it)."""
        return self._admin("GET", "/faults")["faults"]

    def clear_faults(self) -> int:
        """Drop every queued fault; returns how many there were."""
        return self._admin("DELETE", "/faults")["cleared"]

    def set_durations(
        self,
        pending_seconds: float | None = None,
        running_seconds: float | None = None,
        connection_id: str | None = None,
    ) -> dict[str, float]:
        """Change how long jobs stay pending and running (jobs in flight too; with
        ``connection_id``, how long that connection's jobs run, or without ``running_seconds``
        that they follow the general setting again)."""
        settings = {
            "pending_seconds": pending_seconds,
            "running_seconds": running_seconds,
            "connection_id": connection_id,
        }
        given = {key: value for key, value in settings.items() if value is not None}
        return self._admin("POST", "/durations", given)

    def expire_tokens(self) -> int:
        """Expire every issued bearer token now."""
        return self._admin("POST", "/tokens/expire")["expired"]

    def requests(self) -> list[dict[str, Any]]:
        """``{method, path, status, fault}`` of every API request served since the last reset."""
        return self._admin("GET", "/requests")

    def jobs(self) -> list[dict[str, Any]]:
        """Summaries of all jobs: id, connection_id, job_type, status, attempts, ..."""
        return self._admin("GET", "/jobs")

    def contract_violations(self, clear: bool = False) -> list[dict[str, Any]]:
        """Contract violations found so far (and forget them if ``clear``)."""
        return self._admin("GET", f"/contract-violations?clear={str(clear).lower()}")

    def take_contract_violations(self) -> list[dict[str, Any]]:
        """Violations found so far, forgetting them (for tests that send bad requests)."""
        return self.contract_violations(clear=True)

    def notify_to(self, url: str | None, drop: int = 0) -> dict[str, Any]:
        """POST sync notifications to ``url`` from now on, losing the next ``drop`` of them."""
        return self._admin("PUT", "/notifications", {"url": url, "drop": drop})

    def notifications_sent(self) -> list[dict[str, Any]]:
        """``{job_id, success, status}`` of every notification sent (or dropped)."""
        return self._admin("GET", "/notifications")

    def connections(self, include_deleted: bool = False) -> list[dict[str, Any]]:
        """``{connection_id, name, status, source_id, source_type, source_name, streams,
        tables}`` of every connection, in list order (deleted ones if ``include_deleted``)."""
        return self._admin("GET", f"/connections?include_deleted={str(include_deleted).lower()}")

    def add_connection(
        self,
        name: str,
        streams: list[str],
        source_type: str = "faker",
        source_name: str | None = None,
    ) -> dict[str, Any]:
        """Add an active connection (listed last) with a source of its own of ``source_type``
        (a key of ``seed.SOURCE_TYPES``); returns it as ``connections`` shows it."""
        body: dict[str, Any] = {"name": name, "streams": streams, "source_type": source_type}
        if source_name is not None:
            body["source_name"] = source_name
        return self._admin("POST", "/connections", body)

    def delete_connection(self, connection_id: str) -> dict[str, Any]:
        """Delete a connection as Airbyte does: status ``deprecated``, left out of the lists."""
        return self._admin("DELETE", f"/connections/{connection_id}")

    def add_stream(self, connection_id: str, stream: str) -> dict[str, Any]:
        """Add ``stream`` to the connection (and its source), synced after the others."""
        return self._admin("POST", f"/connections/{connection_id}/streams", {"name": stream})

    def reset(self) -> None:
        """Clear faults, behaviours, the request log, violations, jobs and connection changes
        (not the warehouse)."""
        self._admin("POST", "/reset")

    def auth_headers(self) -> dict[str, str]:
        """An Authorization header valid for the configured auth mode (fetches a token)."""
        cfg = self.config
        if cfg.auth == "basic":
            raw = base64.b64encode(f"{cfg.username}:{cfg.password}".encode()).decode()
            return {"Authorization": f"Basic {raw}"}
        if cfg.auth == "token":
            response = requests.post(
                f"{self.config_api_url}/applications/token",
                json={"client_id": cfg.client_id, "client_secret": cfg.client_secret},
                timeout=ADMIN_TIMEOUT,
            )
            response.raise_for_status()
            return {"Authorization": f"Bearer {response.json()['access_token']}"}
        return {}

    def assert_contract_kept(self) -> None:
        """Raise AssertionError listing every contract violation found so far."""
        violations = self.contract_violations()
        if violations:
            lines = [
                f"{v['side']} {v['method']} {v['path']} -> {v['status']}: {v['message']}"
                for v in violations
            ]
            raise AssertionError("Airbyte contract violated:\n" + "\n".join(lines))
