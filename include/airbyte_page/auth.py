"""Who asks for the Airbyte page: Airflow's own JWT, checked on every request.

Airflow does not protect the FastAPI apps of plugins, so the page checks the token itself, as
Airflow's API does (``airflow.api_fastapi.core_api.security.resolve_user_from_token``, through
the configured auth manager): 401 when there is none or it expired, 403 when it is not valid.
API clients send it as ``Authorization: Bearer``; Airflow's UI keeps it in the httponly
``_token`` cookie, which the browser sends with the page's requests (same origin). The token is
then what the page reads Airflow's API with, so Airflow's permissions apply as they are.
"""

from __future__ import annotations

from typing import Annotated

from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
from airflow.api_fastapi.core_api.security import resolve_user_from_token
from fastapi import Depends, Request


async def user_token(request: Request) -> str:
    """The requesting user's valid Airflow token; HTTPException 401/403 otherwise."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        token = credentials.strip()
    else:
        token = request.cookies.get(COOKIE_NAME_JWT_TOKEN, "")
    await resolve_user_from_token(token)
    return token


UserToken = Annotated[str, Depends(user_token)]
