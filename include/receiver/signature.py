"""Signed events: ``X-Signature-256: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">``.

The sender puts the Unix time it signed at in ``X-Signature-Timestamp``; the timestamp is
part of what is signed, so it cannot be changed without breaking the signature, and the
receiver refuses requests signed too long ago (or too far in the future). Within that window
the receiver remembers event ids (``include.receiver.ledger``), so a captured request cannot be
replayed at all.
"""

from __future__ import annotations

import hashlib
import hmac
from enum import StrEnum

HEADER = "X-Signature-256"
TIMESTAMP_HEADER = "X-Signature-Timestamp"
PREFIX = "sha256="


class Verdict(StrEnum):
    OK = "ok"
    MISSING = "missing or malformed signature or timestamp"
    STALE = "timestamp outside the accepted window"
    WRONG = "signature does not match"


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """The ``X-Signature-256`` value a sender puts on ``body`` signed at ``timestamp``."""
    message = str(int(timestamp)).encode() + b"." + body
    return PREFIX + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(
    body: bytes,
    secret: str,
    header: str | None,
    timestamp: str | None,
    *,
    now: float,
    tolerance: float,
) -> Verdict:
    """Check the signature (constant-time) and that ``timestamp`` is within ``tolerance``."""
    if not header or not header.startswith(PREFIX) or not timestamp:
        return Verdict.MISSING
    try:
        signed_at = int(timestamp.strip())
    except ValueError:
        return Verdict.MISSING
    if not hmac.compare_digest(sign(body, secret, signed_at).encode(), header.strip().encode()):
        return Verdict.WRONG
    if abs(now - signed_at) > tolerance:
        return Verdict.STALE
    return Verdict.OK
