"""Alembic migrations of the records tables, shipped with the package (see `records.migrate`)."""
