"""The single source of truth for queue and match state, behind one interface."""

from pairline.store.base import StateView, Store, open_store

__all__ = ["StateView", "Store", "open_store"]
