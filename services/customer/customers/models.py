from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field as PydanticField, ValidationInfo, field_validator
from sqlalchemy import Column, Index, UniqueConstraint
from sqlmodel import Field

from services.customer.common import MONEY_SQL, TIMESTAMP_SQL, Money, MoneyOut, UtcDateTime, new_id, utcnow
from services.customer.customers import validation
from services.customer.db import CustomerTable
from shared.bounds import BusinessDate, said
from shared.clients.customer import CustomerStatus, KycStatus  # peers read both: they are the contract


class CustomerKind(StrEnum):
    INDIVIDUAL = "individual"
    BUSINESS = "business"


class Education(StrEnum):
    PRIMARY = "primary"
    SECONDARY = "secondary"
    VOCATIONAL = "vocational"
    BACHELOR = "bachelor"
    MASTER = "master"
    DOCTORATE = "doctorate"


class MaritalStatus(StrEnum):
    SINGLE = "single"
    MARRIED = "married"
    DIVORCED = "divorced"
    WIDOWED = "widowed"


class AcquisitionChannel(StrEnum):
    BRANCH = "branch"
    APP = "app"
    WEB = "web"
    PARTNER = "partner"
    REFERRAL = "referral"
    CAMPAIGN = "campaign"
    PHONE = "phone"


class Customer(CustomerTable, table=True):
    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("external_source", "external_id", name="uq_customers_external"),
        # Keyset pagination walks (created_at, id); filters narrow by branch first.
        Index("ix_customers_created", "created_at", "id"),
        Index("ix_customers_branch_created", "branch", "created_at", "id"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    kind: str = Field(max_length=16)
    status: str = Field(default=CustomerStatus.ACTIVE, max_length=16)
    name: str | None = Field(default=None, max_length=100, index=True)
    # Personal data: ciphertexts sealed with key `pii_kid`, and keyed hashes for exact search.
    pii_kid: str | None = Field(default=None, max_length=32)
    national_id_enc: str | None = Field(default=None, max_length=200)
    national_id_hash: str | None = Field(default=None, max_length=64, unique=True)
    phone_enc: str | None = Field(default=None, max_length=200)
    phone_hash: str | None = Field(default=None, max_length=64, unique=True)
    email_enc: str | None = Field(default=None, max_length=600)
    email_hash: str | None = Field(default=None, max_length=64, index=True)
    # 300 characters of Chinese are 900 bytes: sealed and base64-encoded, up to 1,240 characters.
    address_enc: str | None = Field(default=None, max_length=1300)
    address_hash: str | None = Field(default=None, max_length=64, index=True)  # of the normalised form
    # What roles without full view are shown (e.g. ****************3X), kept beside the ciphertext so a masked
    # read decrypts nothing. Holds no more than every such reader already sees; cleared by erasure.
    national_id_masked: str | None = Field(default=None, max_length=18)
    phone_masked: str | None = Field(default=None, max_length=11)
    email_masked: str | None = Field(default=None, max_length=260)
    address_masked: str | None = Field(default=None, max_length=305)
    # An address stored in clear by a version before 2026-12; the service seals it at start and clears this.
    address_clear: str | None = Field(default=None, max_length=300)
    date_of_birth: date | None = None
    business_registration_no: str | None = Field(default=None, max_length=18)
    occupation: str | None = Field(default=None, max_length=100)
    employer: str | None = Field(default=None, max_length=200)
    monthly_income: Decimal | None = Field(default=None, sa_column=Column(MONEY_SQL))
    assets: Decimal | None = Field(default=None, sa_column=Column(MONEY_SQL))
    education: str | None = Field(default=None, max_length=16)
    marital_status: str | None = Field(default=None, max_length=16)
    household_size: int | None = None
    region: str | None = Field(default=None, max_length=64)
    branch: str = Field(max_length=32)
    acquisition_channel: str | None = Field(default=None, max_length=16)
    kyc_status: str = Field(default=KycStatus.PENDING, max_length=16)
    referred_by: str | None = Field(default=None, max_length=64, index=True)
    external_source: str | None = Field(default=None, max_length=64)
    external_id: str | None = Field(default=None, max_length=100)
    version: int = 1
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(TIMESTAMP_SQL, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(TIMESTAMP_SQL, nullable=False))
    closed_at: datetime | None = Field(default=None, sa_column=Column(TIMESTAMP_SQL))
    close_reason: str | None = Field(default=None, max_length=200)
    erased_at: datetime | None = Field(default=None, sa_column=Column(TIMESTAMP_SQL))


_USCC = r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$"


class _Profile(BaseModel):
    """Fields and checks shared by create and update. Subclasses declare date_of_birth before national_id on
    purpose, so the ID's embedded birth date can be compared with it and the error names `national_id`."""

    address: str | None = PydanticField(default=None, max_length=300)
    occupation: str | None = PydanticField(default=None, max_length=100)
    employer: str | None = PydanticField(default=None, max_length=200)
    monthly_income: Money | None = None
    assets: Money | None = None
    education: Education | None = None
    marital_status: MaritalStatus | None = None
    household_size: int | None = PydanticField(default=None, ge=1, le=30)
    region: str | None = PydanticField(default=None, max_length=64)
    acquisition_channel: AcquisitionChannel | None = None

    @field_validator("date_of_birth", check_fields=False)
    @classmethod
    def _adult(cls, value: date | None) -> date | None:
        return None if value is None else validation.adult_birth_date(value)

    @field_validator("national_id", check_fields=False)
    @classmethod
    def _resident_id(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        value = validation.resident_id(value)
        born = info.data.get("date_of_birth")
        if born is not None and not validation.id_matches_birth_date(value, born):
            raise ValueError("embedded birth date does not match date_of_birth")
        return value

    @field_validator("phone", check_fields=False)
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return None if value is None else validation.mobile_phone(value)

    @field_validator("email", check_fields=False)
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return None if value is None else value.lower()


_EXAMPLE: dict[str, Any] = {
    "kind": "individual", "name": "Zhang San", "date_of_birth": "1990-03-07", "national_id": "110105199003071239",
    "phone": "13812345678", "email": "zhang.san@example.com", "address": "1 Jianguo Rd, Beijing",
    "occupation": "engineer", "employer": "Example Tech Ltd", "monthly_income": "18000.00", "assets": "350000.00",
    "education": "bachelor", "marital_status": "married", "household_size": 3, "region": "Beijing",
    "branch": "BJ001", "acquisition_channel": "branch", "external_id": "crm-000123",
}


class CustomerCreate(_Profile):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_EXAMPLE]})

    kind: CustomerKind = CustomerKind.INDIVIDUAL
    name: said(1, 100)
    date_of_birth: BusinessDate
    national_id: str = PydanticField(
        description="18-digit PRC resident ID (for a business: its legal representative's).")
    phone: str = PydanticField(description="Mainland mobile number, optionally with +86.")
    email: EmailStr | None = None
    business_registration_no: str | None = PydanticField(default=None, pattern=_USCC,
                                                         description="Unified social credit code; businesses only.")
    branch: str | None = PydanticField(default=None, max_length=32, pattern=r"^[A-Za-z0-9_-]+$",
                                       description="Defaults to a loan officer's own branch.")
    external_id: str | None = PydanticField(default=None, min_length=1, max_length=100,
                                            description="The calling system's own id, unique per system.")

    @field_validator("business_registration_no")
    @classmethod
    def _business_only(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("kind") != CustomerKind.BUSINESS:
            raise ValueError("only business customers have a registration number")
        return value


class CustomerUpdate(_Profile):
    """Only the fields sent change; `null` clears an optional field."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"phone": "13900001111", "monthly_income": "21000.00", "kyc_status": "verified"}]})

    name: said(1, 100) | None = PydanticField(default=None)
    date_of_birth: BusinessDate | None = None
    national_id: str | None = None
    phone: str | None = None
    email: EmailStr | None = None
    business_registration_no: str | None = PydanticField(default=None, pattern=_USCC)
    kyc_status: KycStatus | None = None


# Sent as null, a field is cleared; not these: what an individual's record needs, and whatever the table cannot hold
# empty (a null kyc_status reached the database and came back a 500).
REQUIRED_ON_UPDATE = ("name", "date_of_birth", "national_id", "phone", *(
    name for name in CustomerUpdate.model_fields
    if (column := Customer.__table__.c.get(name)) is not None and not column.nullable))


class CustomerClose(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "customer request"}]})
    reason: said(1, 200)


class CustomerLookup(BaseModel):
    """Exact search; sent in a body so identity numbers never appear in URLs or access logs."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"national_id": "110105199003071239"},
                                                                             {"phone": "+8613812345678"}]})
    national_id: str | None = None
    phone: str | None = None
    email: EmailStr | None = None


class RevealField(StrEnum):
    NATIONAL_ID = "national_id"
    PHONE = "phone"
    EMAIL = "email"
    DATE_OF_BIRTH = "date_of_birth"
    ADDRESS = "address"


class CustomerReveal(BaseModel):
    """One field in full, for a stated reason. A collector names the collection queue item they work instead of
    a free-text reason (and may ask for contact channels only)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"field": "phone", "queue_item_id": "9f1c2d"},
        {"field": "national_id", "reason": "customer at the counter, identity check for a new account"}]})

    field: RevealField
    reason: said(5, 200) | None = PydanticField(default=None)
    queue_item_id: str | None = PydanticField(default=None, min_length=1, max_length=32)


class RevealRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "customer_id": "3f2b9c0e8d7a4e1f9a6b5c4d3e2f1a0b", "field": "phone", "value": "13812345678",
        "reason": "collection queue item 9f1c2d"}]})

    customer_id: str
    field: RevealField
    value: str | None = PydanticField(description="Null when the customer has no such data on file.")
    reason: str = PydanticField(description="As written to the access log.")


class CustomerRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        **_EXAMPLE, "id": "3f2b9c0e8d7a4e1f9a6b5c4d3e2f1a0b", "status": "active", "kyc_status": "pending",
        "national_id": "*****************9", "phone": "138******78", "email": "z***@example.com",
        "address": "***, Beijing", "pii_view": "masked", "date_of_birth": None, "birth_year": 1990, "referred_by": None,
        "external_source": "li.wei", "version": 1,
        "business_registration_no": None, "created_by": "li.wei", "created_at": "2026-11-23T09:00:00Z",
        "updated_at": "2026-11-23T09:00:00Z", "closed_at": None, "close_reason": None, "erased_at": None}]})

    id: str
    kind: CustomerKind
    status: CustomerStatus
    name: str | None
    national_id: str | None = PydanticField(description="Masked unless `pii_view` is `full`; null once erased.")
    phone: str | None
    email: str | None
    pii_view: Literal["full", "masked"]
    date_of_birth: date | None = PydanticField(description="Null where `pii_view` is `masked`: with the ID's "
                                                           "unmasked digits it would rebuild the ID.")
    birth_year: int | None = PydanticField(description="Shown to every reader, masked or not.")
    business_registration_no: str | None
    address: str | None = PydanticField(description="Masked unless `pii_view` is `full` (only the part after its "
                                                    "last comma is shown); null once erased.")
    occupation: str | None
    employer: str | None
    monthly_income: MoneyOut | None
    assets: MoneyOut | None
    education: Education | None
    marital_status: MaritalStatus | None
    household_size: int | None
    region: str | None
    branch: str
    acquisition_channel: AcquisitionChannel | None
    kyc_status: KycStatus
    referred_by: str | None
    external_source: str | None
    external_id: str | None
    version: int
    created_by: str
    created_at: UtcDateTime
    updated_at: UtcDateTime
    closed_at: UtcDateTime | None
    close_reason: str | None
    erased_at: UtcDateTime | None


class DuplicateCustomer(BaseModel):
    existing_customer_id: str
    field: Literal["national_id", "phone"]
