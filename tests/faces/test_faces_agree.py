"""Every face gives a member the same titles: the API, ``bookclub recommend --json``, the
member edition rendered in process and the one rendered on a Dask worker.

One small demo club per database (SQLite, PostgreSQL), really trained; then, after
training, the world moves on as it does in a club: a title is added (a new release the
model never saw), a member buys something, the member's favourite goes out of stock,
a member without history declares a category. Every face must see all of it.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, func, insert, select, update
from typer.testing import CliRunner

from api.app import create_app
from bookclub_cli.main import app as cli_app
from catalog.fanout import dask_client, render_all_editions
from catalog.member_edition import member_picks
from catalog.plan import CatalogPlan
from catalog.planning import plan_quarter
from catalog.production import titles_by_id
from catalog.segments import segment_quarter
from demo.generate import DemoSpec
from demo.load import load_demo
from recsys.errors import UnknownMemberError
from recsys.serving import RecommendationQuery, recommend
from recsys.settings import ApiSettings, CatalogSettings, SegmentSettings, Settings, TrainingSettings
from recsys.storage import segments as segments_db
from recsys.storage.apikeys import create_key
from recsys.storage.schema import Member, MemberCategory, Purchase, Title, TitleCategory
from tests.catalog.conftest import mail_everyone
from tests.conftest import shared_data
from training.pipeline import run_training
from training.registry import ModelRegistry

QUARTER = "2026Q4"
NEW_TITLE = "NEW-RELEASE-1"
NEW_NAME = "新书测试之城"
LIMIT = 6


@dataclass
class World:
    settings: Settings
    engine: Engine
    key: str
    member: str  # history, a purchase after training, an out-of-stock favourite
    cold: str  # no purchases, a declared category
    gone: str  # the favourite now out of stock
    plans: list[CatalogPlan]


def _settings(data_dir: Path, url: str) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=url,
        training=TrainingSettings(factors=8, iterations=6, threads=1),
        segments=SegmentSettings(clusters=2, kmeans_init=2),
        # a catalog big enough to hold every title in stock: then the edition's picks and
        # the API's answer are drawn from the same titles
        catalog=CatalogSettings(
            titles_per_catalog=1000, min_per_section=1, max_per_section=1000, max_per_author=1000,
            members_per_batch=4, picks_per_member=LIMIT,
        ),
        api=ApiSettings(model_poll_seconds=3600),
    )


def _api_top(settings: Settings, engine: Engine, member_id: str, limit: int) -> list[str]:
    with engine.connect() as connection:
        model = ModelRegistry(settings.models_dir).load_prepared(connection)
        result = recommend(connection, model, member_id, RecommendationQuery(limit=limit))
    return [r.title_id for r, _ in result.items]


def _build(engine: Engine, root: Path) -> World:
    clc = shared_data("clc", "clc_level1_2.csv")
    settings = _settings(root / "var", engine.url.render_as_string(hide_password=False))
    spec = DemoSpec(members=200, titles=90, years=2, seed=11, end_date=dt.date(2026, 11, 20))
    load_demo(engine, spec, clc)
    run_training(engine, settings, promote="force")
    model_until = ModelRegistry(settings.models_dir).load().trained_until
    with engine.begin() as connection:
        buyers = connection.execute(
            select(Member.member_id, Member.id)
            .join(Purchase, Purchase.member_key == Member.id)
            .group_by(Member.member_id, Member.id)
            .having(func.count(Purchase.id) >= 5)
            .order_by(Member.member_id)
        ).all()
        member, member_key = buyers[0]
        cold_key = connection.scalar(
            select(Member.id)
            .outerjoin(Purchase, Purchase.member_key == Member.id)
            .where(Purchase.id.is_(None))
            .order_by(Member.member_id)
        )
        if cold_key is None:  # every demo member bought: add one who did not
            cold_key = connection.execute(
                insert(Member).values(member_id="COLD-1", name="冷启动", status="active").returning(Member.id)
            ).scalar_one()
        cold = connection.scalar(select(Member.member_id).where(Member.id == cold_key))
        # the member's favourite category: where the new release goes
        code = connection.execute(
            select(TitleCategory.category_code)
            .join(Purchase, Purchase.title_key == TitleCategory.title_key)
            .where(Purchase.member_key == member_key, TitleCategory.is_primary)
            .group_by(TitleCategory.category_code)
            .order_by(func.count().desc(), TitleCategory.category_code)
        ).first()[0]
        connection.execute(delete(MemberCategory).where(MemberCategory.member_key == cold_key))
        connection.execute(insert(MemberCategory).values(member_key=cold_key, category_code=code))
        new_key = connection.execute(
            insert(Title)
            .values(
                title_id=NEW_TITLE, title=NEW_NAME, author="新作者", price=Decimal("45.00"),
                in_stock=True, language="zh", published_on=dt.date(2026, 11, 1),
            )
            .returning(Title.id)
        ).scalar_one()
        connection.execute(insert(TitleCategory).values(title_key=new_key, category_code=code, is_primary=True))
    # the favourite (top title before anything changed) goes out of stock; the member buys
    # something else after training
    top = _api_top(settings, engine, member, LIMIT + 2)
    gone, bought = top[0], next(t for t in top[1:] if t != NEW_TITLE)
    with engine.begin() as connection:
        connection.execute(update(Title).where(Title.title_id == gone).values(in_stock=False))
        bought_key = connection.scalar(select(Title.id).where(Title.title_id == bought))
        connection.execute(
            insert(Purchase).values(
                line_id="AFTER-TRAINING-1", order_id="AFTER-TRAINING", member_key=member_key,
                title_key=bought_key, quantity=1, unit_price=Decimal("30.00"),
                purchased_at=model_until + dt.timedelta(hours=5), channel="web",
            )
        )
        key, _info = create_key(connection, "admin", "faces test")
    model = ModelRegistry(settings.models_dir).load()
    with engine.begin() as connection:
        segment_quarter(connection, model, settings.segments, QUARTER)
    with engine.begin() as connection:
        model = ModelRegistry(settings.models_dir).load_prepared(connection)
        plans = plan_quarter(connection, model, settings, QUARTER)
    with engine.begin() as connection:  # editions are rendered for mailed contacts only
        mail_everyone(connection, settings, QUARTER)
    return World(settings, engine, key, member, cold, gone, plans)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp(f"faces-{request.param}")
    if request.param == "sqlite":
        from recsys.storage.db import make_engine, upgrade

        engine = make_engine(f"sqlite:///{root / 'bookclub.db'}")
        upgrade(engine)
        yield _build(engine, root)
        engine.dispose()
    else:
        yield from _postgres_world(root)


def _postgres_world(root: Path) -> Iterator[World]:
    import os
    import uuid

    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from recsys.storage.db import make_engine, upgrade
    from tests.conftest import POSTGRES_URL_VAR

    base = os.environ.get(POSTGRES_URL_VAR)
    if not base:
        pytest.skip(f"{POSTGRES_URL_VAR} is not set: no PostgreSQL to test against")
    admin = make_engine(base, isolation_level="AUTOCOMMIT")
    name = f"bookclub_faces_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(make_url(base).set(database=name).render_as_string(hide_password=False))
    try:
        upgrade(engine)
        yield _build(engine, root)
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _api(world: World, member_id: str, params: dict[str, object]) -> tuple[int, bytes]:
    with TestClient(create_app(world.settings, engine=world.engine)) as client:
        r = client.get(
            f"/v1/members/{member_id}/recommendations", params=params,
            headers={"Authorization": f"Bearer {world.key}"},
        )
    return r.status_code, r.content


def _cli(world: World, *args: str) -> tuple[int, str, str]:
    env = {
        "BOOKCLUB_DATA_DIR": str(world.settings.data_dir),
        "BOOKCLUB_DATABASE_URL": world.settings.db_url,
    }
    result = CliRunner().invoke(cli_app, ["recommend", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


def _edition_picks(world: World, member_id: str) -> list[str]:
    with world.engine.connect() as connection:
        model = ModelRegistry(world.settings.models_dir).load_prepared(connection)
        labels = segments_db.member_segment_labels(connection, QUARTER)
        plan = next(p for p in world.plans if p.segment == labels[member_id])
        titles = titles_by_id(connection, QUARTER)
        picks = member_picks(connection, model, plan, titles, [member_id], LIMIT)
    return [t for t, _ in picks[member_id]]


def test_the_plan_holds_every_title_in_stock(world: World) -> None:
    """The precondition of comparing editions with the API: nothing in stock is left out."""
    with world.engine.connect() as connection:
        in_stock = set(connection.scalars(select(Title.title_id).where(Title.in_stock)))
    for plan in world.plans:
        assert set(plan.title_ids) == in_stock


@pytest.mark.slow
def test_api_cli_and_edition_give_the_same_titles(world: World) -> None:
    for member_id in (world.member, world.cold):
        status, body = _api(world, member_id, {"limit": LIMIT})
        assert status == 200, body
        code, out, err = _cli(world, member_id, "--limit", str(LIMIT), "--json")
        assert code == 0, err
        assert out.encode() == body + b"\n"  # the very same body
        api_ids = [t["title_id"] for t in json.loads(body)["data"]]
        assert len(api_ids) == LIMIT
        assert _edition_picks(world, member_id) == api_ids
    member = json.loads(_api(world, world.member, {"limit": LIMIT})[1])
    ids = [t["title_id"] for t in member["data"]]
    assert world.gone not in ids  # out of stock since training
    assert "AFTER-TRAINING" not in ids
    cold = json.loads(_api(world, world.cold, {"limit": LIMIT})[1])
    assert cold["cold_start"] is True
    assert {t["reason_kind"] for t in cold["data"]} <= {"category_popular", "new_in_category", "popular"}


@pytest.mark.slow
def test_faces_agree_on_the_other_parameters(world: World) -> None:
    for params, args in [
        ({"limit": 4, "in_stock_only": "false"}, ["--limit", "4", "--all-stock"]),
        ({"limit": 5, "include_purchased": "true"}, ["--limit", "5", "--include-purchased"]),
    ]:
        status, body = _api(world, world.member, params)
        assert status == 200, body
        code, out, err = _cli(world, world.member, *args, "--json")
        assert code == 0, err
        assert out.encode() == body + b"\n"
    all_stock = json.loads(_api(world, world.member, {"limit": 20, "in_stock_only": "false"})[1])
    assert world.gone in [t["title_id"] for t in all_stock["data"]]


def test_a_purchase_after_training_is_not_offered_again(world: World) -> None:
    with world.engine.connect() as connection:
        bought = connection.scalar(
            select(Title.title_id)
            .join(Purchase, Purchase.title_key == Title.id)
            .where(Purchase.line_id == "AFTER-TRAINING-1")
        )
    status, body = _api(world, world.member, {"limit": 50})
    assert status == 200
    assert bought not in [t["title_id"] for t in json.loads(body)["data"]]
    assert bought not in _edition_picks(world, world.member)


def test_an_unknown_member_is_an_error_on_every_face(world: World) -> None:
    status, body = _api(world, "NO-SUCH-MEMBER", {})
    assert status == 404, body
    code, _out, err = _cli(world, "NO-SUCH-MEMBER", "--json")
    assert code == 1
    assert "unknown member 'NO-SUCH-MEMBER'" in err and len(err.strip().splitlines()) == 1
    with world.engine.connect() as connection:
        model = ModelRegistry(world.settings.models_dir).load_prepared(connection)
        titles = titles_by_id(connection, QUARTER)
        with pytest.raises(UnknownMemberError, match="NO-SUCH-MEMBER"):
            member_picks(connection, model, world.plans[0], titles, ["NO-SUCH-MEMBER"], LIMIT)


def _first_pages_text(path: Path) -> str:
    if not shutil.which("pdftotext"):
        pytest.fail("pdftotext (poppler-utils) is needed: ./run.sh installs it")
    run = ["pdftotext", "-f", "1", "-l", "2", str(path), "-"]
    return subprocess.run(run, capture_output=True, text=True, check=True).stdout


@pytest.mark.slow
def test_a_title_added_after_training_reaches_editions_in_process_and_on_dask(world: World) -> None:
    with world.engine.connect() as connection:
        labels = segments_db.member_segment_labels(connection, QUARTER)
    # members whose in-process picks hold the new release (the model never saw it in training)
    holders = [m for m in sorted(labels) if NEW_TITLE in _edition_picks(world, m)][:2]
    assert holders, "no member's edition picks the new release: the model did not learn it"
    assert NEW_TITLE in _api_top(world.settings, world.engine, holders[0], LIMIT)
    out = world.settings.data_dir / "dask-editions"
    with dask_client(workers=2) as client:
        result = render_all_editions(
            world.engine, world.settings, QUARTER, world.plans, holders, out_dir=out, client=client
        )
    assert not result.failures
    for member_id in holders:
        assert NEW_NAME in _first_pages_text(result.editions[member_id])
