"""The reads and writes behind the console's jobs, comparison and reach pages, on SQLite and
PostgreSQL."""

from __future__ import annotations

from sqlalchemy import Engine, insert, inspect

from recsys.storage import console_reads
from recsys.storage import jobs as jobs_db
from recsys.storage.schema import Member, MemberSegment
from tests.api import club


def test_a_job_goes_queued_running_done_and_only_once(engine: Engine) -> None:
    assert "jobs" in inspect(engine).get_table_names()
    with engine.begin() as connection:
        job = jobs_db.create_job(
            connection, kind="train", params={"promote": "never", "evaluate": True}, actor_prefix="abcd1234",
            actor_label="王芳",
        )
        other = jobs_db.create_job(connection, kind="render_editions", params={"quarter": "2026Q4"}, actor_prefix="p", actor_label=None)
    with engine.begin() as connection:
        assert [j.id for j in jobs_db.open_jobs(connection, "train")] == [job.id]
        assert jobs_db.start_job(connection, job.id, host="h", pid=42)
        assert not jobs_db.start_job(connection, job.id, host="h", pid=43)  # a second process does not run it
        jobs_db.record_progress(connection, job.id, step="fit als", done=3, total=4)
    with engine.connect() as connection:
        found = jobs_db.job(connection, job.id)
    assert found is not None and (found.status, found.pid, found.step, found.fraction) == ("running", 42, "fit als", 0.75)
    assert found.params == {"promote": "never", "evaluate": True} and found.actor_label == "王芳"
    with engine.begin() as connection:
        jobs_db.finish_job(connection, job.id, result={"version": "v9", "metrics": {"ndcg@20": 0.5}})
        jobs_db.finish_job(connection, job.id, error="late")  # finished already: unchanged
        jobs_db.finish_job(connection, other.id, error="no catalog plans for 2026Q4")
    with engine.connect() as connection:
        done, failed = jobs_db.job(connection, job.id), jobs_db.job(connection, other.id)
        assert jobs_db.open_jobs(connection, "train") == []
        page = jobs_db.jobs_page(connection, limit=1)
        rest = jobs_db.jobs_page(connection, before_id=page[-1].id, limit=10)
    assert done is not None and done.status == "done" and done.result == {"version": "v9", "metrics": {"ndcg@20": 0.5}}
    assert done.error is None and done.finished_at is not None
    assert failed is not None and failed.status == "failed" and failed.error == "no catalog plans for 2026Q4"
    assert [j.id for j in page + rest] == [other.id, job.id]


def test_quarter_members_and_open_member_ids(engine: Engine) -> None:
    with engine.begin() as connection:
        club.insert_club(connection)
        connection.execute(
            insert(Member).values(id=60, member_id="M60", name="已注销", status="closed")
        )
        connection.execute(
            insert(MemberSegment).values(quarter=club.QUARTER, member_key=60, tier="lapsed", segment=1, frequency=0, monetary=0.0)
        )
    with engine.connect() as connection:
        assert console_reads.quarter_members(connection, club.QUARTER) == [("M01", 1, "core")]  # M60 is closed
        assert sorted(console_reads.open_member_ids(connection)) == [m[0] for m in club.MEMBERS]


def test_mapped_labels_are_those_category_mappings_holds(engine: Engine) -> None:
    from recsys.storage.schema import CategoryMapping

    with engine.begin() as connection:
        club.insert_club(connection)
        connection.execute(insert(CategoryMapping).values(scheme="shop", label="推理", category_code="I247"))
        connection.execute(insert(CategoryMapping).values(scheme="other", label="科幻", category_code="TP"))
    with engine.connect() as connection:
        asked = [("shop", "推理"), ("shop", "科幻"), ("other", "推理")]
        assert console_reads.mapped_labels(connection, asked) == {("shop", "推理")}
        assert console_reads.mapped_labels(connection, []) == set()
