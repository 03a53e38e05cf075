"""The OpenAPI description of pairline's HTTP routes (the socket protocol is docs/protocol.md)."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}
_STATE = {"$ref": "#/components/schemas/State"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "pairline",
        "version": "1",
        "description": "Matchmaking for 1:1 random chat. Real-time traffic uses the WebSocket "
        "at /v1/ws (or SSE at /v1/events); see docs/protocol.md.",
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["type", "code", "message"],
                "properties": {
                    "type": {"const": "error"},
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "retry_after_ms": {"type": "integer"},
                },
            },
            "State": {
                "type": "object",
                "required": ["status", "position", "eta_ms", "match", "cooldown_ms"],
                "properties": {
                    "status": {"enum": ["idle", "queued", "proposed", "in_call"]},
                    "position": {"type": ["integer", "null"], "minimum": 1},
                    "eta_ms": {"type": ["integer", "null"]},
                    "match": {"type": ["object", "null"]},
                    "cooldown_ms": {"type": ["integer", "null"]},
                },
            },
        },
    },
    "paths": {
        "/v1/auth/guest": {
            "post": {
                "summary": "Issue a guest token",
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"display_name": {"type": "string", "maxLength": 40}},
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["token", "user_id", "expires_in_s"],
                            "properties": {
                                "token": {"type": "string"},
                                "user_id": {"type": "string"},
                                "expires_in_s": {"type": "integer"},
                            },
                        },
                        "A signed guest token",
                    ),
                    "400": _json(_ERROR, "The body is not valid"),
                },
            }
        },
        "/v1/status": {
            "get": {
                "summary": "The caller's state snapshot",
                "security": [{"bearer": []}],
                "responses": {
                    "200": _json(_STATE, "The state (protocol.md §4)"),
                    "401": _json(_ERROR, "No valid token"),
                },
            }
        },
        "/healthz": {
            "get": {"summary": "Liveness", "responses": {"200": {"description": "alive"}}}
        },
        "/readyz": {
            "get": {
                "summary": "Readiness",
                "responses": {
                    "200": {"description": "serving"},
                    "503": {"description": "starting or stopping"},
                },
            }
        },
    },
}
