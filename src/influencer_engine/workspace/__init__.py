"""The planners' workspace: briefs, shortlists (with a note and a pin or exclusion per creator) and saved plans, kept
in a real database through SQLAlchemy, its schema managed by Alembic migrations (SQLite by default, PostgreSQL by
URL). The server is its only user; the CLI hands it a URL."""

from influencer_engine.workspace.store import (
    ITEM_STATES,
    Conflict,
    NotFound,
    Workspace,
    open_workspace,
)

__all__ = ["ITEM_STATES", "Conflict", "NotFound", "Workspace", "open_workspace"]
