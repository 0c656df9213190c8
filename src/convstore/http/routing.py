"""The route class of every API router: request bodies are decoded by convstore, not by
Starlette's bare ``json.loads``.

FastAPI answers a ``json.JSONDecodeError`` from ``request.json()`` as an invalid body (a 422
naming ``body``) and anything else as a bare 400. :func:`convstore.kit.jsoninput.loads` turns
what used to escape as something else (a body nested too deep for the decoder's recursion, a
body that is not UTF-8) into decode errors, so every such body is a 422 naming ``body``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from convstore.kit.jsoninput import loads


class ClientJSONRequest(Request):
    """A request whose JSON body is decoded strictly and with bounded nesting."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads(await self.body())
        return self._json


class ApiRoute(APIRoute):
    """Serves each request as a :class:`ClientJSONRequest` (FastAPI's documented way to
    customise how a route reads its body). Every ``APIRouter`` of convstore uses it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            return await handler(ClientJSONRequest(request.scope, request.receive))

        return handle
