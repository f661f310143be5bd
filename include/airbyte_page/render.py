"""The Airbyte page as HTML: a Jinja2 template (``templates/``, autoescaped) with its CSS inline
and the charts as inline SVG, so the page fetches nothing, from the internet or elsewhere.

``sparkline`` lays out one series (records or duration over the last syncs) with a tooltip per
point, which the template draws; the filters write sizes, durations and ages for people.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from include.airbyte_page.model import HISTORY, Page, Sync

TEMPLATES = Path(__file__).with_name("templates")
WIDTH, HEIGHT, PAD = 150, 34, 3
#: What a value nobody reported shows.
MISSING = "\N{EN DASH}"


def size(value: int | None) -> str:
    """Bytes for people: ``512 B``, ``1.5 MB``."""
    if value is None:
        return MISSING
    units = ("B", "kB", "MB", "GB", "TB")
    amount, unit = float(value), 0
    while amount >= 1000 and unit < len(units) - 1:
        amount, unit = amount / 1000, unit + 1
    return f"{value} B" if unit == 0 else f"{amount:.1f} {units[unit]}"


def duration(seconds: float | None) -> str:
    """Seconds for people: ``< 0.1 s``, ``0.4 s``, ``42 s``, ``3 min 05 s``, ``2 h 10 min``."""
    if seconds is None:
        return MISSING
    if seconds < 0.1:
        return "< 0.1 s"
    whole = round(seconds)
    if whole < 60:
        return f"{seconds:.0f} s" if seconds >= 1 else f"{seconds:.1f} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def count(value: int | None) -> str:
    return MISSING if value is None else f"{value:,}"


def ago(when: datetime | None, now: datetime) -> str:
    """How long before ``now``: ``12 s ago``, ``5 min ago``, ``3 h ago``, ``2 d ago``."""
    if when is None:
        return "never"
    seconds = max(0, int((now - when).total_seconds()))
    for unit, length in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= length:
            return f"{seconds // length} {unit} ago"
    return f"{seconds} s ago"


@dataclass(frozen=True)
class Spark:
    """One series drawn as a line: each point's position and tooltip, in a WIDTH x HEIGHT box."""

    label: str
    points: tuple[tuple[float, float, str], ...]
    low: str
    high: str
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def polyline(self) -> str:
        return " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in self.points)


def sparkline(syncs: Sequence[Sync], field: str, label: str) -> Spark | None:
    """One series of ``syncs`` (oldest first), e.g. ``records``; None when no sync has it."""
    known = [(s, v) for s in syncs if (v := getattr(s, field)) is not None]
    if not known:
        return None
    numbers = [float(v) for _, v in known]
    low, high = min(numbers), max(numbers)
    step = (WIDTH - 2 * PAD) / max(len(known) - 1, 1)
    fmt = duration if field == "duration_seconds" else count
    points = []
    for index, ((sync, value), number) in enumerate(zip(known, numbers, strict=True)):
        x = PAD + index * step if len(known) > 1 else WIDTH / 2
        height = (number - low) / (high - low) if high > low else 0.5
        y = HEIGHT - PAD - height * (HEIGHT - 2 * PAD)
        tip = f"job {sync.job_id}, {sync.at:%Y-%m-%d %H:%M} UTC: {fmt(value)} {label}"
        points.append((x, y, tip))
    return Spark(label, tuple(points), fmt(min(v for _, v in known)), fmt(max(v for _, v in known)))


_environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_environment.filters.update(size=size, duration=duration, count=count)
_environment.globals.update(sparkline=sparkline, ago=ago, history=HISTORY)


def render(page: Page) -> str:
    """The page's HTML."""
    return _environment.get_template("page.html").render(page=page)


def as_json(page: Page) -> dict[str, Any]:
    """The page's data, JSON-ready (datetimes as ISO 8601), each row with its ``health``."""
    data = _plain(asdict(page))
    for row, plain in zip(page.rows, data["rows"], strict=True):
        plain["health"] = row.health
    return data


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value
