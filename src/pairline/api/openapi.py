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
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "admin": {"type": "http", "scheme": "bearer", "description": "PAIRLINE_ADMIN_TOKEN"},
        },
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
        "/v1/events": {
            "get": {
                "summary": "The caller's server → client messages as Server-Sent Events "
                "(the WebSocket fallback; protocol.md §1)",
                "description": "The request is the hello. The first event is `welcome` (no "
                "`id:`); each later event's `id:` is the message's `seq`, its `data:` the "
                "message. `Last-Event-ID` (with `session`, or without: the user's session on "
                "this node) resumes: the messages after it are replayed in order. A last "
                "`event: close` (data `{code, reason}`, the WebSocket close code) ends the "
                "stream when the server closes it.",
                "parameters": [
                    {
                        "name": "token",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                    {"name": "session", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "Last-Event-ID",
                        "in": "header",
                        "description": "the highest seq processed: resume after it",
                        "schema": {"type": "integer", "minimum": 0},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "The stream (unbuffered: `Cache-Control: no-cache, "
                        "no-transform`, `X-Accel-Buffering: no`)",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    "400": _json(_ERROR, "Last-Event-ID is not a seq"),
                    "401": _json(_ERROR, "No valid token"),
                    "403": _json(_ERROR, "Banned"),
                    "429": _json(_ERROR, "Too many connections from this address"),
                    "503": _json(_ERROR, "A backend is unreachable; try again later"),
                },
            }
        },
        "/v1/commands": {
            "post": {
                "summary": "One client message for the caller's event stream (protocol.md §5)",
                "description": "A command, `ack`, `pong`, `chat`, `signal` or `media_lost`, "
                "processed in order with the others; a command's `reply` or `error` comes on "
                "the stream.",
                "security": [{"bearer": []}],
                "parameters": [
                    {
                        "name": "X-Pairline-Session",
                        "in": "header",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "responses": {
                    "202": _json(
                        {"type": "object", "properties": {"ok": {"const": True}}}, "Accepted"
                    ),
                    "400": _json(_ERROR, "Not one valid client message (nothing changed)"),
                    "401": _json(_ERROR, "No valid token, or not the user's session here"),
                    "409": _json(_ERROR, "The session has no open event stream: reopen it"),
                    "429": _json(_ERROR, "Too many messages: the stream is closed (4429)"),
                },
            }
        },
        "/v1/blocks": {
            "get": {
                "summary": "The users the caller blocked",
                "security": [{"bearer": []}],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "blocks": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "user_id": {"type": "string"},
                                            "blocked_at": {"type": "integer"},
                                        },
                                    },
                                }
                            },
                        },
                        "Newest first",
                    ),
                    "401": _json(_ERROR, "No valid token"),
                },
            }
        },
        "/v1/blocks/{user_id}": {
            "delete": {
                "summary": "Lift the caller's block of this user",
                "security": [{"bearer": []}],
                "responses": {"204": {"description": "lifted (or there was none)"}},
            }
        },
        "/v1/admin/reports": {
            "get": {
                "summary": "Reports, newest first (admin token)",
                "security": [{"admin": []}],
                "parameters": [
                    {"name": name, "in": "query", "schema": {"type": kind}}
                    for name, kind in (
                        ("reported", "string"),
                        ("reporter", "string"),
                        ("reason", "string"),
                        ("since", "integer"),
                        ("until", "integer"),
                        ("limit", "integer"),
                        ("before_id", "integer"),
                    )
                ],
                "responses": {
                    "200": {"description": "{reports: [...], next_before_id}"},
                    "401": _json(_ERROR, "Not the admin token"),
                    "404": _json(_ERROR, "The admin API is off"),
                },
            }
        },
        "/v1/admin/bans": {
            "get": {
                "summary": "Bans in force (admin token)",
                "security": [{"admin": []}],
                "responses": {"200": {"description": "{bans: [{user_id, until}]}"}},
            },
            "post": {
                "summary": "Ban a user now (admin token)",
                "security": [{"admin": []}],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["user_id"],
                                "properties": {
                                    "user_id": {"type": "string"},
                                    "reason": {"type": "string", "maxLength": 200},
                                    "duration_s": {"type": ["integer", "null"], "minimum": 1},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "201": {"description": "banned; acts at once"},
                    "503": _json(_ERROR, "The records database is unreachable; nothing changed"),
                },
            },
        },
        "/v1/admin/bans/{user_id}": {
            "delete": {
                "summary": "Lift a ban (admin token)",
                "security": [{"admin": []}],
                "responses": {"204": {"description": "lifted"}, "404": _json(_ERROR, "No ban")},
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
