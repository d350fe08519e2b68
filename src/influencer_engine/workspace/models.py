"""The workspace's tables (SQLAlchemy 2 declarative). Their schema in a database comes from the Alembic migrations
in ``migrations/versions``; a change here needs a new migration there (tests compare the two)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: sa.JSON, list[Any]: sa.JSON}


class BriefRow(Base):
    __tablename__ = "briefs"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    body: Mapped[dict[str, Any]]  # the brief as its JSON form
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=now)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=now, onupdate=now)


class ShortlistRow(Base):
    __tablename__ = "shortlists"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    description: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=now)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=now, onupdate=now)
    items: Mapped[list[ShortlistItemRow]] = relationship(
        back_populates="shortlist", cascade="all, delete-orphan", order_by="ShortlistItemRow.id"
    )


class ShortlistItemRow(Base):
    __tablename__ = "shortlist_items"
    __table_args__ = (sa.UniqueConstraint("shortlist_id", "creator_id", name="uq_shortlist_creator"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    shortlist_id: Mapped[int] = mapped_column(sa.ForeignKey("shortlists.id", ondelete="CASCADE"), index=True)
    creator_id: Mapped[str] = mapped_column(sa.String(200))
    state: Mapped[str] = mapped_column(sa.String(20), default="shortlisted")  # shortlisted | pinned | excluded
    note: Mapped[str] = mapped_column(sa.Text, default="")
    added_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=now)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=now, onupdate=now)
    shortlist: Mapped[ShortlistRow] = relationship(back_populates="items")


class PlanRow(Base):
    __tablename__ = "plans"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    note: Mapped[str] = mapped_column(sa.Text, default="")
    brief: Mapped[dict[str, Any]]  # the brief planned
    totals: Mapped[dict[str, Any]]  # the plan's totals (PlanTotals' JSON form)
    roster: Mapped[list[Any]]  # the roster rows as planned
    model: Mapped[str] = mapped_column(sa.String(500), default="")  # the model the plan was made with
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=now)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=now, onupdate=now)
