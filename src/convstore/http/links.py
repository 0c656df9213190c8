"""OpenAPI links: how the id an operation creates feeds the operations on that object.

A client generator (or a stateful API fuzzer) follows them from ``POST /conversations`` to
``GET/PATCH/DELETE /conversations/{conversation_id}``, from an appended message to that message,
and from a created task to the task's operations. :func:`add_links` applies them to the app's
OpenAPI document; the routes stay as they are.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from convstore.http.deps import API_PREFIX

_CONVERSATION = f"{API_PREFIX}/conversations/{{conversation_id}}"
_MESSAGE = f"{_CONVERSATION}/messages/{{message_id}}"
_TASK = f"{API_PREFIX}/tasks/{{task_id}}"
_CHAT_TURN = f"{API_PREFIX}/chat/conversations/{{conversation_id}}"

_CONVERSATION_TARGETS = [
    ("get", _CONVERSATION),
    ("patch", _CONVERSATION),
    ("delete", _CONVERSATION),
    ("post", f"{_CONVERSATION}/restore"),
    ("get", f"{_CONVERSATION}/messages"),
    ("post", f"{_CONVERSATION}/messages"),
    ("post", f"{_CHAT_TURN}/messages"),
    ("post", f"{_CHAT_TURN}/retry"),
]
_MESSAGE_TARGETS = [("get", _MESSAGE), ("patch", _MESSAGE), ("delete", _MESSAGE)]
_TASK_TARGETS = [
    ("get", _TASK),
    ("patch", _TASK),
    ("delete", _TASK),
    ("post", f"{_TASK}/complete"),
    ("post", f"{_TASK}/reopen"),
    ("get", f"{_TASK}/events"),
]

_FROM_CONVERSATION = {"conversation_id": "$response.body#/id"}
_FROM_MESSAGE = {
    "conversation_id": "$response.body#/conversation_id",
    "message_id": "$response.body#/id",
}
_FROM_DELETED_CONVERSATION = {"conversation_id": "$request.path.conversation_id"}

LINKS: list[tuple[str, str, str, list[tuple[str, str]], dict[str, str]]] = [
    # (method, path, status, targets, parameters)
    ("post", f"{API_PREFIX}/conversations", "201", _CONVERSATION_TARGETS, _FROM_CONVERSATION),
    ("post", f"{_CONVERSATION}/messages", "201", _MESSAGE_TARGETS, _FROM_MESSAGE),
    (
        "delete",
        _CONVERSATION,
        "204",
        [("post", f"{_CONVERSATION}/restore")],
        _FROM_DELETED_CONVERSATION,
    ),
    ("post", f"{API_PREFIX}/tasks", "201", _TASK_TARGETS, {"task_id": "$response.body#/id"}),
    # A chat turn answers with the stored assistant message: its conversation and itself.
    (
        "post",
        f"{API_PREFIX}/chat/messages",
        "201",
        _CONVERSATION_TARGETS,
        {"conversation_id": "$response.body#/conversation_id"},
    ),
    ("post", f"{API_PREFIX}/chat/messages", "201", _MESSAGE_TARGETS, _FROM_MESSAGE),
    ("post", f"{_CHAT_TURN}/messages", "201", _MESSAGE_TARGETS, _FROM_MESSAGE),
    ("post", f"{_CHAT_TURN}/retry", "201", _MESSAGE_TARGETS, _FROM_MESSAGE),
]
"""Each source operation's response, the operations its body (or request) identifies, and
the parameters taken from it."""


def link_document(document: dict[str, Any]) -> dict[str, Any]:
    """Add :data:`LINKS` to an OpenAPI document (in place; returned).

    Raises:
        KeyError: a linked operation or response is not in the document.
    """
    paths = document["paths"]
    for method, path, status, targets, parameters in LINKS:
        response = paths[path][method]["responses"][status]
        links = response.setdefault("links", {})
        for target_method, target_path in targets:
            operation_id = paths[target_path][target_method]["operationId"]
            wanted = {
                name: value for name, value in parameters.items() if f"{{{name}}}" in target_path
            }
            links[operation_id] = {"operationId": operation_id, "parameters": wanted}
    return document


def add_links(app: FastAPI) -> None:
    """Serve ``app``'s OpenAPI document with :data:`LINKS` (built once, on first request)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = link_document(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
