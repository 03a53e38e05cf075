"""How the two users of a confirmed match reach each other: peer-to-peer WebRTC or LiveKit."""

from pairline.media.base import Media, open_media

__all__ = ["Media", "open_media"]
