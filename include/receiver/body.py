"""Read a request body without ever holding more than the limit in memory.

A declared ``Content-Length`` over the limit is refused before a byte of the body is read;
a chunked (or lying) body is read chunk by chunk and refused as soon as the total passes the
limit. Uvicorn stops reading from the socket while its small buffer is full, so the memory
a 200 MB upload costs is a few chunks, not the upload.
"""

from __future__ import annotations

from starlette.requests import Request


class BodyTooLarge(Exception):
    """The body is (or says it is) larger than the limit."""


async def read_limited(request: Request, limit: int) -> bytes:
    """The request body, or ``BodyTooLarge`` once it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise BodyTooLarge
        except ValueError:
            raise BodyTooLarge from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)
