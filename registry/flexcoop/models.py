"""The FLEXCoop ``devices`` schema (the seed's Cerberus schema) as pydantic models, for
the OpenAPI document and the PATCH body; the query parameters of Eve's resource GET."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

YesNo = Literal["yes", "no"]


class EveQuery(BaseModel):
    """Eve's query parameters (JSON where/projection, Eve sort forms, page numbers)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    where: str | None = Field(None, max_length=8192, description="MongoDB-style JSON filter, "
                              "e.g. {\"device_class\": \"dhwDevice\"} (whitelisted operators)")
    sort: str | None = Field(None, max_length=512, description="[(\"max_capacity\", -1)] or "
                             "-max_capacity,device_id")
    projection: str | None = Field(None, max_length=512,
                                   description="JSON, e.g. {\"device_id\": 1}")
    max_results: int = Field(25, ge=1, le=1000)
    page: int = Field(1, ge=1, le=10_000)


class Point(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["Point"] = "Point"
    coordinates: list[float] = Field(min_length=2, max_length=2,
                                     description="[longitude, latitude]")


class Status(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    setPoint: float | None = None  # noqa: N815 (FLEXCoop's name)
    x_fanspeed: float | None = Field(None, alias="x-fanspeed")
    mode: Literal["1", "2", "3", "4", "5"] | None = None
    operationState: Literal["0", "1"] | None = None  # noqa: N815


class Device(BaseModel):
    """One FLEXCoop device (Eve meta fields included)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str = Field(alias="_id")
    etag: str = Field(alias="_etag")
    updated: str = Field(alias="_updated", description="RFC 1123")
    created: str = Field(alias="_created", description="RFC 1123")
    device_id: str
    device_name: str | None = None
    status: Status | None = None
    account_id: str | None = None
    ven_id: str | None = None
    aggregator_id: str | None = None
    device_class: Literal["hvacDevice", "lightingLoad", "dhwDevice", "otherLoad"] | None = None
    availability: Literal["yes", "no", ""] | None = None
    marketplace_availability: YesNo | None = None
    dr_availability: YesNo | None = None
    location: Point | None = None
    device_type: Literal["Demand", "Generation", "Storage"] | None = None
    max_capacity: float | None = None
    available_capacity: float | None = None


class Meta(BaseModel):
    page: int
    max_results: int
    total: int | None = Field(None, description="absent with [api] flexcoop_total = false")


class DeviceList(BaseModel):
    """Eve's list envelope."""

    model_config = ConfigDict(populate_by_name=True)

    items: list[Device] = Field(alias="_items")
    meta: Meta = Field(alias="_meta")
    links: dict[str, dict[str, str]] = Field(alias="_links")


class DevicePatch(BaseModel):
    """What a FLEXCoop client may change (prosumers: the availabilities only)."""

    model_config = ConfigDict(extra="forbid")

    availability: YesNo | None = None
    marketplace_availability: YesNo | None = None
    dr_availability: YesNo | None = None
    device_name: str | None = Field(None, min_length=1, max_length=200)
    location: Point | None = None


class PatchResult(BaseModel):
    """Eve's answer to a PATCH: the meta fields of the changed item."""

    model_config = ConfigDict(populate_by_name=True)

    status: Literal["OK"] = Field(alias="_status")
    id: str = Field(alias="_id")
    etag: str = Field(alias="_etag")
    updated: str = Field(alias="_updated")
    created: str = Field(alias="_created")
    device_id: str
    links: dict[str, dict[str, str]] = Field(alias="_links")
