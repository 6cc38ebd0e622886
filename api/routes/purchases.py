"""/v1/purchases: order lines from the shop, call centre or SMS gateway, as they happen."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import AdminKeyDep, ConnectionDep, SettingsDep
from api.errors import ADMIN_RESPONSES
from api.purchase_batch import store_batch
from api.schemas import PurchaseBatchCreate, PurchaseBatchPublic
from recsys.storage.imports.fields import Limits

router = APIRouter(prefix="/v1/purchases", tags=["purchases"])


@router.post(
    "",
    response_model=PurchaseBatchPublic,
    responses=ADMIN_RESPONSES,
    summary="Record a batch of order lines (all or nothing, idempotent by line_id)",
)
def create_purchases(
    _key: AdminKeyDep,
    batch: PurchaseBatchCreate,
    connection: ConnectionDep,
    settings: SettingsDep,
) -> PurchaseBatchPublic:
    """Needs an admin key. Lines are checked like a purchases CSV; a bad line rejects
    the batch (422), listing every fault by index, field and reason. Lines whose ``line_id``
    is stored already are counted ``already_present``. A member's new purchases count in
    their next recommendations on every worker, without a retrain."""
    return store_batch(connection, batch.lines, settings.api.max_batch_lines, Limits.of(settings.imports))
