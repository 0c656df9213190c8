"""The one declarative base, its naming convention and the shared column shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from sqlalchemy import MetaData, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from convstore.kit.types import DateTimeUTC, utc_now, uuid7

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Every constraint gets a predictable name, so later migrations can alter it on both databases."""

UUIDPk = Annotated[uuid.UUID, mapped_column(Uuid, primary_key=True, default=uuid7, sort_order=-10)]
UTCTimestamp = Annotated[datetime, mapped_column(DateTimeUTC, nullable=False, default=utc_now)]
UTCTimestampOrNone = Annotated[datetime | None, mapped_column(DateTimeUTC, nullable=True)]


class Base(DeclarativeBase):
    """The declarative base of every convstore table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class RecordModel(Base):
    """A row with a UUIDv7 key and creation/update times."""

    __abstract__ = True

    id: Mapped[UUIDPk]
    created_at: Mapped[UTCTimestamp]
    updated_at: Mapped[UTCTimestamp] = mapped_column(onupdate=utc_now)
