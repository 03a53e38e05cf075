"""pairline: matchmaking for 1:1 random video and text chat."""

__version__ = "0.1.0"
