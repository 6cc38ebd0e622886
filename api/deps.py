"""Dependencies as ``Annotated`` aliases; tests swap them with ``app.dependency_overrides``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy import Connection, Engine

from api.auth import AdminKeyDep, ReadKeyDep
from api.compute import ComputePool
from api.errors import InvalidInputError
from api.model_holder import ModelHolder, ServingModel
from recsys.settings import Settings

__all__ = [
    "AdminKeyDep",
    "ComputeDep",
    "ConnectionDep",
    "EngineDep",
    "HolderDep",
    "LimitDep",
    "ModelDep",
    "ReadKeyDep",
    "SettingsDep",
]


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_holder(request: Request) -> ModelHolder:
    holder: ModelHolder = request.app.state.holder
    return holder


async def get_model(request: Request) -> ServingModel:
    """The model for this whole request: the reference is read once, here."""
    holder: ModelHolder = request.app.state.holder
    return holder.current()


async def get_compute(request: Request) -> ComputePool:
    pool: ComputePool = request.app.state.compute
    return pool


async def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def get_connection(request: Request) -> Iterator[Connection]:
    """A connection for the request; routes that write commit it themselves."""
    with request.app.state.engine.connect() as connection:
        yield connection


SettingsDep = Annotated[Settings, Depends(get_settings)]
HolderDep = Annotated[ModelHolder, Depends(get_holder)]
ModelDep = Annotated[ServingModel, Depends(get_model)]
ConnectionDep = Annotated[Connection, Depends(get_connection)]
EngineDep = Annotated[Engine, Depends(get_engine)]
ComputeDep = Annotated[ComputePool, Depends(get_compute)]


async def get_limit(
    settings: SettingsDep,
    limit: Annotated[
        int | None, Query(ge=1, le=1000, description="how many titles (default 20, max 200)")
    ] = None,
) -> int:
    """``limit`` or the configured default; above ``settings.api.max_limit`` is a 422."""
    if limit is None:
        return settings.api.default_limit
    most = settings.api.max_limit
    if limit > most:
        raise InvalidInputError(
            f"limit {limit} is above the maximum {most}",
            [{"location": "query", "field": "limit", "index": None, "reason": f"at most {most}"}],
        )
    return limit


LimitDep = Annotated[int, Depends(get_limit)]
