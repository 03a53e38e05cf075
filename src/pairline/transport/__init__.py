"""Client connections: sessions with numbered, replayable messages over WebSocket (and SSE)."""
