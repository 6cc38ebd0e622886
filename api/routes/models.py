"""/v1/models: the trained models, and which one is served."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.concurrency import run_in_threadpool

from api.deps import AdminKeyDep, HolderDep, ReadKeyDep
from api.errors import ADMIN_RESPONSES, RESPONSES
from api.schemas import ErrorPublic, ModelActivatedPublic, ModelPublic, ModelsPublic
from recsys.text import NO_NUL_PATTERN

router = APIRouter(prefix="/v1/models", tags=["models"])


def _public(info: Any, active: str | None) -> ModelPublic:
    created = getattr(info, "created_at", None)
    trained_until = getattr(info, "trained_until", None)
    return ModelPublic(
        version=str(info.version),
        created_at=str(created) if created else None,
        trained_until=str(trained_until) if trained_until else None,
        status=str(getattr(info, "status", "")),
        metrics=dict(getattr(info, "metrics", None) or {}),
        reason=getattr(info, "reason", None) or None,
        active=info.version == active,
    )


@router.get("", response_model=ModelsPublic, responses=RESPONSES, summary="Trained models")
def read_models(holder: HolderDep, _key: ReadKeyDep) -> ModelsPublic:
    active = holder.registry.active_version()
    data = [_public(info, active) for info in holder.registry.list()]
    serving = holder.model.version if holder.model is not None else None
    return ModelsPublic(data=data, count=len(data), active_version=active, serving_version=serving)


@router.post(
    "/{version}/activate",
    response_model=ModelActivatedPublic,
    responses={
        **ADMIN_RESPONSES,
        409: {
            "model": ErrorPublic,
            "description": "the model is damaged (a file missing, truncated, changed or unreadable: "
            "named in `errors`) or of a newer format; the active model is unchanged",
        },
    },
    summary="Make a model the active one (admin): every worker switches within seconds",
)
async def activate_model(
    _key: AdminKeyDep,
    version: Annotated[str, Path(min_length=1, max_length=64, pattern=NO_NUL_PATTERN)],
    holder: HolderDep,
) -> ModelActivatedPublic:
    """The model's files are checked against the checksums written with it, and it is
    loaded, before it becomes active. This worker loads it at once; the others see the
    registry's pointer change at their next poll (``api.model_poll_seconds``). In-flight
    requests finish on the model they began with."""
    await run_in_threadpool(holder.registry.activate, version)
    await run_in_threadpool(holder.refresh)
    serving = holder.model.version if holder.model is not None else None
    return ModelActivatedPublic(active_version=version, serving_version=serving)
