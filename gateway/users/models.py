from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field as PydanticField, field_validator
from sqlalchemy import JSON, Column
from sqlmodel import Field

from gateway.db import GatewayTable
from shared.auth.roles import Role


class User(GatewayTable, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True, index=True)
    password_hash: str = Field(max_length=255)
    roles: list[str] = Field(sa_column=Column(JSON, nullable=False))
    branch: str | None = Field(default=None, max_length=32)
    active: bool = True
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    created_by: str | None = Field(default=None, max_length=64)


class UserCreate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"username": "li.wei", "password": "a long passphrase", "roles": ["loan_officer"], "branch": "BJ001"}]})

    username: str = PydanticField(min_length=3, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    password: str = PydanticField(min_length=12, max_length=256)
    roles: list[Role] = PydanticField(min_length=1)
    branch: str | None = PydanticField(default=None, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")

    @field_validator("roles")
    @classmethod
    def _distinct(cls, roles: list[Role]) -> list[Role]:
        return sorted(set(roles))


class UserRead(BaseModel):
    id: int
    username: str
    roles: list[Role]
    branch: str | None
    active: bool
    created_at: datetime
