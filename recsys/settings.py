"""The one settings object, built in entry points (CLI, API) and passed down.

Every field can be set from the environment with the ``BOOKCLUB_`` prefix;
nested groups use ``__`` (``BOOKCLUB_TRAINING__FACTORS=128``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from recsys.clubtime import club_day_start


class ImportSettings(BaseModel):
    batch_size: int = Field(50_000, ge=100, description="rows per bulk insert")
    max_reported_errors: int = Field(20, ge=1, description="errors printed on a rejected import")
    # Dates outside these bounds are row errors, in CSV imports and POST /v1/purchases alike.
    earliest_date: dt.date = Field(
        dt.date(1900, 1, 1),
        description="purchased_at and joined_on before it are rejected (Shakespeare and Company starts in 1919)",
    )
    future_tolerance_hours: float = Field(
        24.0, ge=0, description="purchased_at and joined_on may lie this far after now (clocks, time zones)"
    )
    earliest_published: dt.date = Field(
        dt.date(1450, 1, 1), description="published_on before it is rejected (printed books)"
    )
    published_ahead_days: int = Field(
        366, ge=0, description="published_on may lie this far after today (titles announced ahead)"
    )


class TrainingSettings(BaseModel):
    window_years: float = Field(3.0, gt=0, description="purchase history used for training")
    half_life_days: float | None = Field(
        365.0, gt=0, description="recency decay half-life; None switches decay off"
    )
    weighting: Literal["none", "bm25", "tfidf"] = "bm25"
    bm25_k1: float = 1.2
    bm25_b: float = 0.75
    alpha: float = Field(
        2.0, gt=0,
        description="ALS confidence of a bought title: c = alpha * weight (implicit 0.7 multiplies, no 1 +); "
        "titles not bought have confidence 1",
    )
    factors: int = Field(64, ge=2)
    regularization: float = Field(0.05, ge=0)
    iterations: int = Field(15, ge=1)
    seed: int = 42
    threads: int = Field(0, ge=0, description="0 = all cores")
    holdout_days: int = Field(91, ge=1, description="test period after the cutoff")
    k: int = Field(20, ge=1, description="cut-off for ranking metrics")
    promote_tolerance: float = Field(0.01, ge=0, description="relative drop allowed on promotion")
    primary_metric: str = "ndcg@20"
    category_prior_weight: float = Field(5.0, ge=0, description="smoothing of category affinity")
    model: Literal["als", "bpr", "item_knn", "popularity", "category_popularity", "blend"] = Field(
        "als", description="the recommender a trained model serves (`bookclub tune` stores its choice)"
    )
    recommenders: list[str] = Field(
        default_factory=lambda: ["als", "bpr", "popularity", "category_popularity", "item_knn", "blend"],
        description="recommenders scored side by side by `bookclub evaluate`",
    )
    bpr_factors: int = Field(64, ge=2)
    bpr_learning_rate: float = Field(0.01, gt=0)
    bpr_regularization: float = Field(0.01, ge=0)
    bpr_iterations: int = Field(100, ge=1)
    knn_neighbours: int = Field(100, ge=1, description="neighbours kept per title (item-kNN)")
    knn_similarity: Literal["cosine", "bm25"] = "cosine"
    blend_weight: float = Field(
        0.5, ge=0, le=1,
        description="the blend's share of ALS (the rest item-kNN), each standardised per member; "
        "its components use the ALS and item-kNN settings above",
    )
    declared_category_weight: float = Field(
        2.0, ge=0, description="weight of a declared favourite category, in purchases"
    )
    thin_history: float = Field(
        3.0, ge=0, description="members with this many purchases get half category popularity"
    )
    cold_start_min_titles: int = Field(
        3, ge=1, description="titles with sales a category needs to place a new title"
    )
    extract_batch_rows: int = Field(200_000, ge=1000, description="rows per fetch when extracting")
    eval_batch_members: int = Field(2048, ge=1, description="members scored at a time")
    eval_members: int = Field(
        20_000, ge=0, description="test members scored (seeded sample); 0 = all"
    )
    recency_decay: bool = Field(
        True, description="apply half_life_days (false: every purchase in the window counts fully)"
    )
    refresh_iterations: int = Field(
        2, ge=1, description="ALS sweeps bringing the evaluated model up to the cutoff"
    )
    extract_cache: bool = Field(
        True,
        description="keep the purchases extract under DATA_DIR/models/extract_cache and read "
        "only newer lines on the next run (see training/extract_cache.py)",
    )
    extract_cache_verify_rows: int = Field(
        1024, ge=0, description="cached lines compared with the database before the cache is used"
    )
    min_order_lines: int = Field(
        20, ge=1, description="fewer order lines in the training window: no model is made (refused with why)"
    )
    min_members: int = Field(
        3, ge=1, description="fewer members with purchases in the training window: no model is made"
    )


class ApiSettings(BaseModel):
    open_demo: bool = Field(False, description="read routes without an API key (demo only)")
    default_limit: int = Field(20, ge=1, le=200)
    model_poll_seconds: float = Field(2.0, gt=0, description="how often workers look for a new active model")
    host: str = Field("127.0.0.1", description="`bookclub serve` listen address")
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(1, ge=1, le=64, description="uvicorn worker processes")
    max_limit: int = Field(200, ge=1, le=1000, description="largest `limit` a list route accepts")
    max_batch_lines: int = Field(5000, ge=1, description="order lines per POST /v1/purchases")
    max_body_bytes: int = Field(
        2 * 1024 * 1024,
        ge=1024,
        description="largest request body accepted (413 beyond); a full batch of max_batch_lines "
        "order lines is about 1 MB of JSON",
    )
    key_cache_seconds: float = Field(
        5.0, ge=0, description="how long a worker trusts a verified API key (revocation delay)"
    )
    top_categories: int = Field(5, ge=1, le=50, description="categories in a member profile")
    compute_threads: int = Field(
        1,
        ge=1,
        le=64,
        description="threads computing recommendations per worker: the work holds the GIL but for "
        "its numpy products and SQL, and a second thread costs more in GIL hand-offs than it gains",
    )
    render_concurrency: int = Field(
        1, ge=1, le=16, description="on-demand member editions rendered at once per worker"
    )
    render_queue: int = Field(
        16, ge=0, description="edition requests waiting for a render per worker; beyond it 503 + Retry-After"
    )
    render_wait_seconds: float = Field(
        120.0, gt=0, description="how long a request waits for a render before 503 + Retry-After"
    )
    render_rate_per_minute: float = Field(
        10.0, gt=0, description="on-demand edition renders per API key per minute, over all workers"
    )
    render_burst: int = Field(
        5, ge=1, description="renders a key may start at once before the per-minute rate applies (429)"
    )


class SegmentSettings(BaseModel):
    clusters: int = Field(4, ge=1, le=50)
    seed: int = 7
    rfm_window_days: int = Field(730, ge=30, description="purchase history behind F and M")
    lapsed_after_days: int = Field(365, ge=1, description="no purchase for this long: tier lapsed")
    rfm_bins: int = Field(5, ge=2, le=10, description="quantile scores 1..bins for R, F and M")
    core_min_score: float = Field(0.8, gt=0, le=1, description="mean RFM score share for core")
    regular_min_score: float = Field(0.5, gt=0, le=1, description="mean RFM score share for regular")
    profile_level: int = Field(2, ge=1, le=2, description="CLC levels clustered (1 or 1+2)")
    typical_titles: int = Field(5, ge=1, le=50)
    kmeans_init: int = Field(8, ge=1, description="k-means restarts")


class CatalogSettings(BaseModel):
    titles_per_catalog: int = Field(120, ge=4)
    max_per_author: int = Field(3, ge=1)
    min_per_section: int = Field(4, ge=0)
    max_per_section: int = Field(30, ge=1)
    picks_per_member: int = Field(6, ge=1)
    page_size: Literal["A4", "A5"] = "A4"
    bleed: bool = False
    segment_font: str = "Noto Serif CJK SC"
    member_font: str = "WenQuanYi Zen Hei"
    latin_font: str = Field("", description="Latin face set before the CJK one; empty = CJK font's own")
    section_level: int = Field(1, ge=1, le=2, description="CLC level of catalog sections")
    new_release_share: float = Field(
        0.3, ge=0, le=1, description="at least this share of titles are new releases, if available"
    )
    new_release_days: int = Field(91, ge=0, description="published this long before the quarter: new")
    promotions: list[str] = Field(default_factory=list, description="title_ids every catalog carries")
    excluded: list[str] = Field(default_factory=list, description="title_ids no catalog carries")
    scoring_sample: int = Field(2000, ge=10, description="members scored per segment (seeded sample)")
    members_per_batch: int = Field(
        20, ge=1, description="member inserts laid out per document (and per fan-out task)"
    )
    dask_scheduler: str = Field(
        "",
        description="Dask scheduler address for `catalogs render --all-members` (e.g. tcp://host:8786); "
        "empty = a local cluster on this machine. A real cluster needs PostgreSQL and data_dir "
        "(models, catalogs) on storage every worker mounts at the same path",
    )
    dask_workers: int = Field(
        0, ge=0, description="worker processes of the local cluster (1 thread each); 0 = one per core"
    )
    club_name: str = "书友会 Book Club"
    order_address: str = "书友会 · 邮政信箱 1234 · 上海 200000"
    print_output_profile: str = Field(
        "/usr/share/color/icc/ghostscript/default_cmyk.icc",
        description="the press's CMYK ICC profile: the output intent of the PDF/X-4 print files "
        "(default: Ghostscript's SWOP profile, Debian package libgs-common)",
    )
    print_members_per_file: int = Field(
        5000, ge=1, description="members per print file of the print stream (`catalogs print`)"
    )
    print_duplex: bool = Field(
        True, description="print files for a duplex press: each member starts on a new sheet (a blank "
        "page after an odd number of pages)",
    )


class PieceCosts(BaseModel):
    """What one piece of an edition kind costs (the club's currency)."""

    print: float = Field(0.0, ge=0)
    paper: float = Field(0.0, ge=0)
    postage: float = Field(0.0, ge=0)
    other: float = Field(0.0, ge=0)

    @property
    def total(self) -> float:
        return self.print + self.paper + self.postage + self.other


class CampaignSettings(BaseModel):
    holdout_share: float = Field(
        0.05, gt=0, lt=1, description="share of each segment × value tier held out at random"
    )
    holdout_shares: dict[str, float] = Field(
        default_factory=dict,
        description="overrides per 'SEGMENT/TIER' ('*' for any), e.g. {'*/core': 0.03, '2/*': 0.1}; "
        "the most specific rule wins",
    )
    universal_holdout_share: float = Field(
        0.005, ge=0, lt=1, description="members held out of every campaign (same members every quarter)"
    )
    universal_holdout_seed: int = Field(20_261, description="keys the universal holdout: keep it fixed")
    response_days: int = Field(90, ge=1, description="orders this many days after the in-home date respond")
    late_days: int = Field(30, ge=0, description="the late window after the response window (matchback only)")
    in_home_days: int = Field(
        0, ge=0, description="days from writing the contacts to the planned in-home date (at or after the quarter's start)"
    )
    margin_rate: float = Field(
        0.35, ge=0, le=1, description="gross margin as a share of revenue (titles carry no cost of goods)"
    )
    suppress_tiers: list[str] = Field(
        default_factory=list, description="value tiers not mailed (suppressed with the reason), e.g. ['lapsed']"
    )
    catalog: PieceCosts = PieceCosts(print=1.10, paper=0.55, postage=0.80, other=0.05)
    postcard: PieceCosts = PieceCosts(print=0.06, paper=0.03, postage=0.35, other=0.01)
    email: PieceCosts = PieceCosts(other=0.002)
    web: PieceCosts = PieceCosts()
    resamples: int = Field(2000, ge=0, description="bootstrap resamples per arm in the report (0 = Welch)")
    confidence: float = Field(0.95, gt=0, lt=1)
    report_seed: int = Field(11, description="bootstrap seed of the report (same seed, same intervals)")
    reply_days: int = Field(
        30, ge=1, description="the main selection's reply deadline, this many days after the in-home date "
        "(printed on the order form)"
    )
    negative_option: bool = Field(
        False, description="send the main selection, billed, to a member who neither ordered nor declined it by "
        "the reply deadline (a club's choice; off by default)"
    )
    negative_option_notice_days: int = Field(
        10, ge=0, description="the negative option applies only when the edition was in home at least this many "
        "days before the reply deadline (the deadline is in home + reply_days: reply_days must be at least this)"
    )
    timezone: str = Field(
        "UTC", description="the club's time zone (an IANA name such as Asia/Shanghai): the reply deadline printed "
        "on the order form, and the shipping day of the negative option, are its calendar days; a reply or an "
        "order (stored in UTC) counts on the day it was made there"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"campaign.timezone {value!r} is not a time zone (an IANA name such as Asia/Shanghai)") from None
        return value

    def club_date(self, moment: dt.datetime) -> dt.date:
        """The club's calendar day of ``moment``: naive timestamps are UTC, as every stored one is."""
        aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
        return aware.astimezone(ZoneInfo(self.timezone)).date()

    def club_day_start(self, day: dt.date) -> dt.datetime:
        """The first moment of the club's calendar day ``day``, as a naive UTC timestamp (how they are stored)."""
        return club_day_start(day, self.timezone)

    def club_today(self) -> dt.date:
        """Today in the club's time zone."""
        return dt.datetime.now(ZoneInfo(self.timezone)).date()

    @model_validator(mode="after")
    def _notice_fits_the_reply_period(self) -> Self:
        # every member's deadline is their in-home date + reply_days, so the notice is reply_days
        # for all of them: a shorter reply period would ship to nobody (or, with a later delivery
        # date, to some) — refused where it is set
        if self.negative_option and self.reply_days < self.negative_option_notice_days:
            raise ValueError(
                f"campaign.reply_days ({self.reply_days}) is shorter than campaign.negative_option_notice_days "
                f"({self.negative_option_notice_days}): the negative option needs the edition in home that long "
                "before the reply deadline"
            )
        return self

    def costs(self, kind: str) -> PieceCosts:
        costs: PieceCosts = getattr(self, kind)
        return costs


class FrequencyCapSetting(BaseModel):
    pieces: int = Field(..., ge=1, description="at most this many pieces")
    days: int = Field(..., ge=1, description="in any window of this many days")
    kinds: list[str] = Field(default_factory=list, description="edition kinds counted (empty: every kind)")


class QuietPeriodSetting(BaseModel):
    start: str = Field(..., description="YYYY-MM-DD, or MM-DD for every year")
    end: str = Field(..., description="last quiet day (same form as start; MM-DD may wrap the new year)")
    kinds: list[str] = Field(default_factory=list, description="edition kinds kept quiet (empty: every kind)")


class SpacingSetting(BaseModel):
    edition: str = Field(..., description="an edition kind or code that is never sent …")
    after: str = Field(..., description="… within `days` after this kind or code")
    days: int = Field(..., ge=1)


EditionKind = Literal["catalog", "postcard", "email"]


class MailingSettings(BaseModel):
    """Who gets which edition (campaign/policy.py): options, contact rules, budget, uplift."""

    options: list[EditionKind] = Field(
        default_factory=lambda: list[EditionKind](["catalog", "postcard", "email"]),
        description="edition kinds a member may get",
    )
    frequency_caps: list[FrequencyCapSetting] = Field(
        default_factory=lambda: [
            FrequencyCapSetting(pieces=2, days=60, kinds=["catalog", "postcard"]),
            FrequencyCapSetting(pieces=8, days=365),
        ]
    )
    quiet_periods: list[QuietPeriodSetting] = Field(default_factory=list)
    spacing: list[SpacingSetting] = Field(
        default_factory=lambda: [SpacingSetting(edition="postcard", after="catalog", days=21)]
    )
    budget: float | None = Field(None, ge=0, description="most the pieces of one campaign may cost (None: no limit)")
    max_pieces: int | None = Field(None, ge=0, description="most pieces of one campaign (None: no limit)")
    capacity: dict[str, int] = Field(default_factory=dict, description="most pieces per edition kind, e.g. {'catalog': 500000}")
    lifetime_value_weight: float = Field(
        0.0, ge=0, description="weight of the change in lifetime value a piece brings, added to its margin"
    )
    value_horizon_days: int = Field(365, ge=1, description="lifetime value horizon (BG/NBD + Gamma-Gamma)")
    solver: Literal["auto", "milp", "lp", "greedy"] = Field(
        "auto", description="milp: scipy's exact solver; lp: the LP relaxation, its few fractional members "
        "decided exactly; greedy: Lagrangian multipliers with the LP bound; auto: milp for a few thousand "
        "members, lp up to milp_max_members, greedy above"
    )
    milp_max_members: int = Field(200_000, ge=1)
    uplift_learner: Literal["x", "two-model"] = "x"
    edition_title_scores: bool = Field(
        False, description="the uplift model also learns from how much the model expects each member to like "
        "their edition's titles (off: on the demo club, whose response follows category affinity, the extra "
        "feature cost true profit in three of three quarters — docs/mailing.md)"
    )
    rotation_editions: int = Field(2, ge=0, description="titles shown in a member's last N editions are not repeated")
    rotation_tolerance: float = Field(
        0.9, ge=0, le=1, description="a title shown in the last editions comes back only when nothing else the "
        "edition may show (the segment catalog, in stock, not bought) scores at least this share of its score"
    )
    plan_by_profit: bool = Field(
        True, description="`bookclub quarter` mails whom the decision by expected incremental profit picks "
        "(False: every eligible member gets the catalog, less the random holdout)"
    )


class ConsoleSettings(BaseModel):
    secret: str = Field(
        "",
        description="key signing the staff console's session cookie; empty = generated once and kept "
        "in DATA_DIR/console_secret (every worker of one DATA_DIR shares it)",
    )
    session_hours: float = Field(12.0, gt=0, description="a console login lasts this long")
    aggregate_seconds: float = Field(
        300.0, ge=0, description="how long the console shows a computed aggregate before recomputing it"
    )
    compare_per_cell: int = Field(
        20, ge=1, description="members sampled per segment and value tier when two model versions are compared"
    )
    reach_members: int = Field(
        1000, ge=10, description="members sampled for 'in how many members' top 20 is this title'"
    )
    sample_seed: int = Field(20_261, description="seeds the console's member samples (same seed, same members)")
    personal_pages: int = Field(
        2, ge=1, description="a member edition's page budget beyond its segment catalog (preflight flags more)"
    )
    preflight_seconds: float = Field(
        1800.0, ge=0, description="how long the catalogs' preflight (every member's picks and edition pages) is "
        "shown before it is computed again (about 2 minutes a run on a 100k-member club)",
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BOOKCLUB_", env_nested_delimiter="__", extra="ignore"
    )

    data_dir: Path = Field(Path("var"), description="database file, models, catalogs")
    database_url: str | None = Field(None, description="default: SQLite file in data_dir")
    sqlite_busy_timeout_seconds: float = Field(
        30.0, gt=0, description="how long a SQLite writer waits for another process's lock before failing"
    )
    shared_data_dir: Path = Field(Path("../shared/data"), description="the public data sets")

    imports: ImportSettings = ImportSettings()
    training: TrainingSettings = TrainingSettings()
    api: ApiSettings = ApiSettings()
    segments: SegmentSettings = SegmentSettings()
    catalog: CatalogSettings = CatalogSettings()
    console: ConsoleSettings = ConsoleSettings()
    campaign: CampaignSettings = CampaignSettings()
    mailing: MailingSettings = MailingSettings()

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'bookclub.db').resolve()}"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def catalogs_dir(self) -> Path:
        return self.data_dir / "catalogs"
