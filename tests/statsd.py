"""A StatsD receiver for tests: what a real Airflow sends over UDP, as parsed metric lines.

``run_statsd_receiver`` binds a UDP socket on a free 127.0.0.1 port and records every line of
every datagram in a background thread until the context exits. ``environment`` are the
Airflow settings that point its StatsD client at the receiver: StatsD on, the Helm chart's
prefix (``airflow``), and the ``[metrics]`` settings the deployment's Helm values pin, so the
test Airflow names its metrics the way the deployed one does.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from tests.deploy.statsd_mapping import deployed_values

#: The prefix the official chart configures (``[metrics] statsd_prefix``).
PREFIX = "airflow"
#: ``<name>:<value>|<type>[|@<rate>][|#<tags>]`` (DogStatsD tags only if Airflow sends them).
LINE = re.compile(r"(?P<name>[^:|]+):(?P<value>[^|]+)\|(?P<type>c|g|ms|h|s|d)(?:\|.*)?")


@dataclass(frozen=True)
class Metric:
    """One StatsD metric line: ``name`` includes the prefix; ``value`` as sent (ms for timers)."""

    name: str
    value: str
    type: str


@dataclass
class StatsdReceiver:
    """Records the metric lines sent to ``127.0.0.1:port``; ``garbage`` holds unparsable ones."""

    port: int
    _metrics: list[Metric] = field(default_factory=list)
    garbage: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, datagram: bytes) -> None:
        for line in datagram.decode("utf-8", errors="replace").splitlines():
            found = LINE.fullmatch(line.strip())
            with self._lock:
                if found:
                    self._metrics.append(Metric(found["name"], found["value"], found["type"]))
                elif line.strip():
                    self.garbage.append(line)

    def mark(self) -> int:
        """A position in the record: ``since(mark)`` returns what arrived after it."""
        with self._lock:
            return len(self._metrics)

    def since(self, mark: int = 0) -> list[Metric]:
        with self._lock:
            return self._metrics[mark:]

    def environment(self) -> dict[str, str]:
        """Airflow settings sending StatsD here, with the deployment's ``[metrics]`` settings."""
        deployed = (deployed_values().get("config") or {}).get("metrics") or {}
        return {
            **{f"AIRFLOW__METRICS__{key.upper()}": str(value) for key, value in deployed.items()},
            "AIRFLOW__METRICS__STATSD_ON": "True",
            "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
            "AIRFLOW__METRICS__STATSD_PORT": str(self.port),
            "AIRFLOW__METRICS__STATSD_PREFIX": PREFIX,
        }


@contextlib.contextmanager
def run_statsd_receiver() -> Iterator[StatsdReceiver]:
    """A ``StatsdReceiver`` listening until the context exits."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    receiver = StatsdReceiver(port=sock.getsockname()[1])
    stop = threading.Event()

    def receive() -> None:
        while not stop.is_set():
            try:
                receiver.record(sock.recv(65535))
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=receive, name="statsd-receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        stop.set()
        thread.join(timeout=5)
        sock.close()
