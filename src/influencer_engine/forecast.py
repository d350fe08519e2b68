"""The one forecast path: a candidate base and a brief -> every KPI with P10/P50/P90, cost figures, reasons on demand.

Every interface goes through here: ``ie forecast``, ``ie plan`` and ``ie whatif`` (``forecast_brief``), each chunk of
``ie score`` (``candidate_base`` -> ``featurize`` -> ``forecast_features``, split so the next chunk's features are
built while the models score this one), the planner evaluation and every endpoint of the server (a base loaded once,
``forecast_base`` per brief). The steps:

1. ``candidate_base``: validate creators and their posts against the contracts (rejects with reasons).
2. ``featurize``: point-in-time features of every valid creator as of the brief's start.
3. ``forecast_features``: the model's forecasts (rows the model cannot score are rejected with a reason), revenue
   from the brief's order value, and the cost figures.

A ``BriefForecast`` keeps what it was made from, so it gives each creator's reasons when asked, and its candidates'
audience shares for the planner's overlap model: nothing is read twice.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import polars as pl

from influencer_engine.brief import Brief
from influencer_engine.config import TierConfig
from influencer_engine.dataset import find_table
from influencer_engine.errors import InputError
from influencer_engine.features.build import base_peers, build_features, rates_from_history, request_history
from influencer_engine.features.creator import blend_peers
from influencer_engine.features.requests import brief_requests
from influencer_engine.io import collect_table, scan_table
from influencer_engine.modeling.completion import ASSUMPTION_KINDS, Completion, needs, widen
from influencer_engine.modeling.costs import per_cost
from influencer_engine.modeling.explain import Reason
from influencer_engine.modeling.forecaster import Forecast, reach_within_impressions
from influencer_engine.modeling.matrix import check_features
from influencer_engine.modeling.predictor import Predictor
from influencer_engine.registry import GOALS, KPI_NAMES
from influencer_engine.schema import (
    AGE_BANDS,
    AUDIENCE_COUNTRIES,
    CONTRACTS,
    GENDERS,
    REJECT_SCHEMA,
    ValidationResult,
    audience_columns,
    check_references,
    validate,
)

F64 = npt.NDArray[np.float64]

__all__ = [
    "AUDIENCE_GROUPS",
    "NO_POSTS",
    "BriefForecast",
    "CandidateBase",
    "CreatorForecast",
    "Featurized",
    "OwnPeers",
    "band_errors",
    "brief_as_of",
    "candidate_base",
    "candidate_peers",
    "describe_target",
    "featurize",
    "forecast_base",
    "forecast_brief",
    "forecast_creator",
    "forecast_features",
    "load_candidate_base",
]

# the audience shares the planner's overlap model reads
AUDIENCE_GROUPS = ("audience_age", "audience_country", "audience_interest")
NO_POSTS = pl.DataFrame(schema=CONTRACTS["posts"].schema)  # posts are optional: a base without any is valid


def describe_target(brief: Brief) -> str:
    """'25-34 women in US' style words for a brief's target audience."""
    t = brief.target
    bands = [a.replace("_plus", "+").replace("_", "-") for a in t.age]
    age = "all ages" if set(t.age) == set(AGE_BANDS) else "/".join(bands)
    gender = "" if set(t.gender) == set(GENDERS) else (" women" if t.gender == ("female",) else " men")
    where = "" if set(t.countries) == set(AUDIENCE_COUNTRIES) else f" in {', '.join(t.countries)}"
    return f"{age}{gender}{where}"


# ---------------------------------------------------------------------------------------------- 1. candidates
@dataclass(frozen=True)
class CandidateBase:
    """Creators and their posts, validated once; forecast for any number of briefs."""

    source: str
    creators: pl.DataFrame  # valid creator rows, every contract column
    posts: pl.DataFrame  # valid post rows of those creators
    rejects: pl.DataFrame  # creator rows that cannot be forecast, with reasons
    post_rejects: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=REJECT_SCHEMA))
    posts_in: int = 0  # post rows read (= valid posts + post_rejects)
    # the base the peers are read from (creators, posts), when it is larger than this one (a subset's parent)
    peer_source: tuple[pl.DataFrame, pl.DataFrame] | None = field(default=None, repr=False, compare=False)

    def subset(self, creator_ids: Sequence[str]) -> CandidateBase:
        """The valid rows of ``creator_ids`` only, taken from memory (nothing read or validated again); its peers
        stay those of this whole base."""
        keep = pl.col("creator_id").is_in(list(creator_ids))
        posts = self.posts.filter(keep)
        return CandidateBase(self.source, self.creators.filter(keep), posts, self.rejects.head(0),
                             self.post_rejects.head(0), posts.height, peer_source=self.peer_frames)  # fmt: skip

    @property
    def peer_frames(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(creators, posts) the base's peers are computed from: its parent's for a subset, else its own."""
        return self.peer_source if self.peer_source is not None else (self.creators, self.posts)

    @functools.cached_property
    def audience(self) -> pl.DataFrame:
        """creator_id, followers and the audience shares (age, country, interest) unique reach is estimated from."""
        cols = [c for g in AUDIENCE_GROUPS for c in audience_columns()[g]]
        return self.creators.select("creator_id", "followers", *cols)


def profile_urls(frame: pl.DataFrame) -> pl.Series:
    """The public profile address of each row's (platform, handle): ``registry.Platform.profile_url`` filled in."""
    from influencer_engine.registry import PLATFORM_TABLE

    tpl = pl.col("platform").replace_strict({p.code: p.profile_url for p in PLATFORM_TABLE}, default="")
    handle = pl.col("handle").cast(pl.String).str.strip_chars().str.strip_chars_start("@")
    url = pl.when(handle.is_not_null() & (handle != "") & (tpl != "")).then(
        tpl.str.replace("{handle}", handle, literal=True)
    )
    return frame.select(url.alias("url")).to_series()


def candidate_base(creators: pl.DataFrame, posts: pl.DataFrame | None, *, source: str,
                   posts_source: str | None = None) -> CandidateBase:  # fmt: skip
    """Validate creator rows and their posts; posts of rejected or unknown creators are rejected with a reason."""
    return _with_posts(source, validate(creators, "creators", source=source), posts, posts_source or source)


def _with_posts(
    source: str, creators: ValidationResult, posts: pl.DataFrame | None, posts_source: str
) -> CandidateBase:
    """Validated creators and their posts, validated and checked against those creators."""
    if posts is None:
        return CandidateBase(source, creators.valid, NO_POSTS, creators.rejects)
    pv = validate(posts, "posts", source=posts_source)
    ids = creators.valid["creator_id"]
    checked = check_references(pv, "creator_id", ids, table="posts", source=posts_source, key=("post_id",))
    return CandidateBase(source, creators.valid, checked.valid, creators.rejects, checked.rejects, checked.rows_in)


def load_candidate_base(data: Path) -> CandidateBase:
    """Read and validate the creators and their posts of the dataset folder ``data``."""
    cpath, ppath = find_table(data, "creators"), find_table(data, "posts")
    if cpath is None:
        raise InputError(
            f"{data} has no creators table.", fix="point --data at a folder from `ie simulate` or `ie import`"
        )
    cv = validate(collect_table(scan_table(cpath), cpath), "creators", source=str(cpath))
    if ppath is None:
        return _with_posts(str(data), cv, None, str(data))
    return _with_posts(str(data), cv, collect_table(scan_table(ppath), ppath), str(ppath))


# ---------------------------------------------------------------------------------------------- 2. features
def brief_as_of(brief: Brief) -> datetime:
    """The moment a brief's features are computed at: midnight (UTC) of its start date."""
    d = brief.start_date
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def candidate_peers(creators: pl.LazyFrame, posts: pl.LazyFrame, brief: Brief, tiers: TierConfig,
                    reference: pl.DataFrame | None) -> pl.DataFrame:  # fmt: skip
    """The peers the candidates are compared with for ``brief``: the base's own engagement rates per platform x tier
    blended with the model's ``reference`` (``features.creator.blend_peers``). Every creator's features then depend on
    the whole base, never on the chunk it is scored in: ``ie score`` computes them once, before its chunks."""
    return base_peers(creators, posts, brief_as_of(brief), tiers, reference)


@dataclass(frozen=True)
class Featurized:
    """A base's feature rows for a brief: everything but the model's work.

    ``base`` holds the creators as completed for this brief (estimated prices, assumed audiences and estimated
    credibility where the input had none); ``provenance`` says, per creator, which values were given and which
    were completed (see ``modeling.completion.Completion.complete``).
    """

    base: CandidateBase
    brief: Brief
    features: pl.DataFrame  # one row per valid creator, the request keys then every catalog feature
    provenance: pl.DataFrame  # one row per creator: price_source, price_p10/p90, credibility_source, ...


# The feature rows are one wide query of joins and a hundred column expressions over a chunk's rows: polars' in-memory
# engine runs it in 40-60% less CPU than its streaming engine, the default of Polars 2 (a 50k chunk of `ie score`:
# 0.17 -> 0.07 s), with the same rows. The queries over a chunk's millions of posts keep the default: it is cheaper
# there (the posts before each request's as-of: 0.067 against 0.080 s).
FEATURES_ENGINE: Final = "in-memory"
_NO_COMPLETION = Completion(price=None, credibility=None, audience_mix=pl.DataFrame())


@dataclass(frozen=True)
class OwnPeers:
    """``featurize``'s peers when the base being featurized is the whole base: its own engagement rates blended with
    ``reference`` (what ``candidate_peers`` gives), read from the history ``featurize`` builds anyway instead of
    ranking every post a second time."""

    reference: pl.DataFrame | None


def featurize(base: CandidateBase, brief: Brief, tiers: TierConfig, *, peers: pl.DataFrame | OwnPeers | None,
              completion: Completion | None = None, fmt: str | None = None,
              history: pl.DataFrame | None = None) -> Featurized:  # fmt: skip
    """Features of every creator of ``base`` as of the brief's start, in its base format (or ``fmt``).

    ``peers`` are the platform x tier engagement rates every creator is compared with (``candidate_peers``: the
    whole base's, blended with the model's; ``OwnPeers`` when ``base`` is that whole base): given once for the
    whole base, each row is independent of the other rows, so a base scored in chunks gives the same rows as a base
    scored whole. ``completion`` (the bundle's) fills what a creator's row lacks; those creators' features are built
    again from the completed row (their history group, which reads only posts, is reused). ``history``: the history
    group of these requests built earlier (``features.build.request_history``; ``ie score``'s first pass keeps it),
    so ``base`` need not hold the posts.
    """
    requests = brief_requests(brief, base.creators.lazy())
    if fmt is not None:
        requests = requests.with_columns(pl.lit(fmt).alias("format"))
    if history is None:
        history = request_history(base.creators.lazy(), base.posts.lazy(), requests)
    if isinstance(peers, OwnPeers):
        peers = blend_peers(peers.reference, rates_from_history(base.creators.lazy(), requests, history, tiers))
    feats = build_features(base.creators.lazy(), base.posts.lazy(), requests, tiers, peers=peers,
                           history=history).collect(engine=FEATURES_ENGINE)  # fmt: skip
    need = needs(base.creators, feats)
    done, provenance = (completion or _NO_COMPLETION).complete(base.creators, feats)
    provenance = _with_history_source(provenance, requests, history)
    if completion is None or not need.any():
        return Featurized(base, brief, feats, provenance)
    ids = base.creators.filter(need).select("creator_id")
    rebuilt = build_features(
        done.join(ids, on="creator_id", how="semi").lazy(), base.posts.lazy(),
        requests.join(ids.lazy(), on="creator_id", how="semi"), tiers, peers=peers, history=history,
    ).collect(engine=FEATURES_ENGINE)  # fmt: skip
    kept = feats.join(ids, on="creator_id", how="anti")
    merged = feats.select("request_id").join(pl.concat([kept, rebuilt]), on="request_id", how="left",
                                             maintain_order="left")  # fmt: skip
    completed = dataclasses.replace(base, creators=done)
    return Featurized(completed, brief, merged, provenance)


def _with_history_source(provenance: pl.DataFrame, requests: pl.LazyFrame, history: pl.DataFrame) -> pl.DataFrame:
    """``provenance`` with ``history_source``: what each creator's history was read from ("posts", "averages": its
    export's averages per post, "none"; ``features.build.request_history``)."""
    if "history_source" not in history.columns:
        return provenance.with_columns(pl.lit(None, dtype=pl.String).alias("history_source"))
    source = (
        requests.select("request_id", "creator_id").collect()
        .join(history.select("request_id", "history_source"), on="request_id", how="inner")
        .unique("creator_id", keep="first")
        .select("creator_id", "history_source")
    )  # fmt: skip
    return provenance.join(source, on="creator_id", how="left", maintain_order="left").with_columns(
        pl.col("history_source").fill_null("none")
    )


# ---------------------------------------------------------------------------------------------- 3. forecasts
@dataclass(frozen=True)
class BriefForecast:
    """Every scored creator's KPIs with bands and cost figures for a brief, and what they were made from."""

    brief: Brief
    base: CandidateBase
    table: pl.DataFrame  # creator_id, platform, tier, format, price, audience_fit, KPIs + bands, cost figures
    features: pl.DataFrame  # the scored feature rows, aligned with table
    rejects: pl.DataFrame  # creator rows and feature rows that could not be forecast, with reasons
    notes: list[str]
    emv_cpm_usd: float  # the CPM earned media value is priced at
    predictor: Predictor = field(repr=False, compare=False)

    @property
    def audience(self) -> pl.DataFrame:
        """The candidates' audience shares (see ``CandidateBase.audience``)."""
        return self.base.audience

    def reasons(self, creator_ids: Sequence[str], kpi: str, top: int = 5) -> list[list[Reason]]:
        """The ``top`` plain-word reasons behind ``kpi``'s forecast, for each of ``creator_ids``."""
        if not creator_ids:
            return []
        rows = pl.DataFrame({"creator_id": list(creator_ids)}, schema={"creator_id": pl.String}).join(
            self.features.unique("creator_id", keep="first"), on="creator_id", how="left", maintain_order="left"
        )  # fmt: skip
        missing = [c for c, ok in zip(creator_ids, rows["request_id"].is_not_null().to_list(), strict=True) if not ok]
        if missing:
            raise InputError(f"no forecast for creator(s) {', '.join(missing[:5])}.",
                             fix="check the rejects for why they were not scored")  # fmt: skip
        every = self.predictor.explain(kpi, rows, target=describe_target(self.brief), top=len(rows.columns))
        prov = pl.DataFrame({"creator_id": list(creator_ids)}, schema={"creator_id": pl.String}).join(
            self.table.select("creator_id", "audience_source", "price_source", "credibility_source")
            .unique("creator_id", keep="first"), on="creator_id", how="left", maintain_order="left",
        )  # fmt: skip
        return [
            _flag_assumptions(rs, p, r, self.brief, top)
            for rs, p, r in zip(every, prov.iter_rows(named=True), rows.iter_rows(named=True), strict=True)
        ]

    def reason_texts(self, creator_ids: Sequence[str], kpi: str, top: int) -> list[str]:
        """``reasons`` as one line per creator (the planner's explain callback)."""
        return ["; ".join(r.text for r in rs) for rs in self.reasons(creator_ids, kpi, top)]


def _flag_assumptions(reasons: list[Reason], prov: dict[str, Any], row: dict[str, Any], brief: Brief,
                      top: int) -> list[Reason]:  # fmt: skip
    """The ``top`` reasons, saying plainly what rests on an assumption.

    An assumed audience is one reason, first, with no signed effect in its words: the model only sees the platform's
    (or the category's) average audience, so the effect says how that average compares with the creators it was
    trained on, not anything about this creator. An estimated price or credibility is named as estimated.
    """
    out: list[Reason] = []
    audience = prov.get("audience_source")
    if audience in ("assumed", "unknown"):
        merged = [r for r in reasons if r.group in ("audience_fit", "affinity")]
        effect = math.prod(1.0 + r.effect for r in merged) - 1.0
        fit, aff = row.get("audience_fit"), row.get("affinity")
        what = (f"{row.get('platform')} average assumed ({_share(fit)} in target, {_share(aff)} mainly into "
                f"{brief.brand_category})" if audience == "assumed" else "no average known to assume")  # fmt: skip
        out.append(Reason(group="audience_fit", text=f"audience unknown: {what}", effect=effect,
                          features=tuple(f for r in merged for f in r.features)))  # fmt: skip
        reasons = [r for r in reasons if r.group not in ("audience_fit", "affinity")]
    for r in reasons:
        text = r.text
        if r.group == "price" and prov.get("price_source") == "estimated":
            text = text.replace("(list price", "(estimated list price")
        if r.group == "quality" and prov.get("credibility_source") == "estimated":
            text = text.replace("(credibility", "(estimated credibility")
        out.append(Reason(group=r.group, text=text, effect=r.effect, features=r.features))
    return out[:top]


def _share(v: Any) -> str:
    return "unknown" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{float(v):.0%}"


def _with_order_value(fc: Forecast, brief: Brief, notes: list[str]) -> Forecast:
    """Revenue from the brief's average order value when it states one; else the revenue model's, whose value per
    conversion was learned from past campaigns' brands, and a note says what that assumes."""
    if "conversions" not in fc.mean:
        return fc
    if not brief.average_order_value:
        if "revenue" in fc.mean:
            conv, rev = np.asarray(fc.mean["conversions"]), np.asarray(fc.mean["revenue"])
            ok = np.isfinite(conv) & np.isfinite(rev)
            if ok.any() and conv[ok].sum() > 0:
                notes.append(
                    f"revenue assumes the value per conversion of past campaigns' brands (about "
                    f"${rev[ok].sum() / conv[ok].sum():,.2f} a conversion over these candidates): set "
                    "average_order_value in the brief to use your own"
                )
        return fc
    aov = float(brief.average_order_value)
    notes.append(f"revenue = conversions x the brief's average order value ${aov:,.2f}")
    return Forecast(
        mean={**fc.mean, "revenue": fc.mean["conversions"] * aov},
        quantiles={**fc.quantiles, "revenue": fc.quantiles["conversions"] * aov},
        levels=fc.levels,
    )


PROVENANCE_SCHEMA: dict[str, pl.DataType] = {
    "creator_id": pl.String(), "price_source": pl.String(), "price_p10": pl.Float64(), "price_p90": pl.Float64(),
    "credibility_source": pl.String(), "audience_source": pl.String(), "history_posts": pl.Int64(),
    "history_source": pl.String(),
}  # fmt: skip


def _provenance(featurized: Featurized, frame: pl.DataFrame) -> pl.DataFrame:
    """The provenance row of each scored row (what was given and what was completed), aligned with ``frame``."""
    prov = featurized.provenance
    return frame.select("creator_id").join(prov.unique("creator_id", keep="first"), on="creator_id", how="left",
                                           maintain_order="left").cast(pl.Schema(PROVENANCE_SCHEMA))  # fmt: skip


def assumed_kinds(provenance: pl.DataFrame) -> dict[str, np.ndarray]:
    """For each assumption kind, which rows rest on it (audience assumed or unknown, credibility or price estimated)."""
    return {
        "audience": provenance["audience_source"].is_in(["assumed", "unknown"]).fill_null(False).to_numpy(),
        "credibility": (provenance["credibility_source"] == "estimated").fill_null(False).to_numpy(),
        "price": (provenance["price_source"] == "estimated").fill_null(False).to_numpy(),
        "history": (provenance["history_source"] == "none").fill_null(False).to_numpy()
        if "history_source" in provenance.columns
        else np.zeros(provenance.height, dtype=bool),
    }


def _widened(fc: Forecast, provenance: pl.DataFrame, completion: Completion | None) -> Forecast:
    """Bands of rows that rest on assumptions, widened by the spread each assumption was measured to add."""
    if completion is None or not completion.widening or provenance.height == 0:
        return fc
    kinds = assumed_kinds(provenance)
    quantiles = {kpi: widen(q, np.sqrt(_assumed_var(kinds, completion, kpi))) for kpi, q in fc.quantiles.items()}
    # reach's band can widen more than impressions': capped again, as the forecaster caps its own bands (uncapped,
    # 88 of 200k scored candidates had a reach P90 above their impressions P90)
    return Forecast(mean=fc.mean, quantiles=reach_within_impressions(quantiles), levels=fc.levels)


def _assumed_var(kinds: dict[str, np.ndarray], completion: Completion, kpi: str) -> F64:
    """The log-scale variance the assumptions of each row add to ``kpi``'s band (``_widened``)."""
    var = np.zeros(len(next(iter(kinds.values()))) if kinds else 0)
    for kind in ASSUMPTION_KINDS:
        var += kinds[kind] * completion.widening.get(kind, {}).get(kpi, 0.0) ** 2
    return var


def band_errors(forecast: BriefForecast, table: pl.DataFrame) -> dict[str, F64]:
    """What each row's band of each KPI shares with the other creators of a roster, for ``table`` (rows of
    ``forecast.table``): (rows, 2) per KPI, the share of the band's base variance that is error common to a
    campaign's creators (``intervals.ErrorSplit``), then the log-scale variance the row's assumptions added (its own).
    Revenue from the brief's order value shares what conversions share."""
    # a forecast table made without a model (a test's, a caller's own) shares nothing
    models = getattr(getattr(forecast.predictor, "forecaster", None), "models_", {})
    completion = getattr(forecast.predictor, "completion", None)
    widening = completion is not None and bool(completion.widening) and table.height > 0
    kinds = assumed_kinds(table) if widening else {}
    out: dict[str, F64] = {}
    for kpi in KPI_NAMES:
        source = "conversions" if kpi == "revenue" and forecast.brief.average_order_value else kpi
        if source not in models:
            continue
        added = np.zeros(table.height)
        if widening and completion is not None:
            added = _assumed_var(kinds, completion, source)
        out[kpi] = np.column_stack([np.full(table.height, models[source].error_split.common), added])
    return out


def forecast_features(predictor: Predictor, featurized: Featurized) -> BriefForecast:
    """Forecast feature rows (rows the model cannot use become rejects); revenue uses the brief's order value."""
    base, brief = featurized.base, featurized.brief
    checked = check_features(featurized.features, predictor.features, source=f"features of {base.source}")
    frame = checked.valid
    notes: list[str] = []
    provenance = _provenance(featurized, frame)
    fc = _with_order_value(_widened(predictor.predict(frame), provenance, predictor.completion), brief, notes)
    price = frame["price"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    costs = per_cost(fc, price, emv_cpm_usd=predictor.emv_cpm_usd)
    keys = frame.select(
        "creator_id",
        pl.col("platform").cast(pl.String),
        pl.col("tier").cast(pl.String),
        pl.col("format").cast(pl.String),
        pl.col("price").cast(pl.Float64),
        pl.col("audience_fit").cast(pl.Float64),
        pl.col("affinity").cast(pl.Float64),
        pl.col("audience_credibility").cast(pl.Float64),
    )
    table = pl.concat([keys, provenance.drop("creator_id"), fc.to_frame(), costs], how="horizontal")
    rejects = pl.concat([base.rejects, checked.rejects], how="vertical_relaxed")
    return BriefForecast(brief=brief, base=base, table=table, features=frame, rejects=rejects, notes=notes,
                         emv_cpm_usd=predictor.emv_cpm_usd, predictor=predictor)  # fmt: skip


def forecast_base(predictor: Predictor, base: CandidateBase, brief: Brief, tiers: TierConfig, *,
                  fmt: str | None = None) -> BriefForecast:  # fmt: skip
    """Forecast every creator of ``base`` for ``brief`` (in the creator's base format, or ``fmt``)."""
    peers: pl.DataFrame | OwnPeers
    if base.peer_source is None:  # the base is its own peers: read from the history its features are built from
        peers = OwnPeers(predictor.peers)
    else:
        creators, posts = base.peer_source
        peers = candidate_peers(creators.lazy(), posts.lazy(), brief, tiers, predictor.peers)
    return forecast_features(
        predictor, featurize(base, brief, tiers, peers=peers, completion=predictor.completion, fmt=fmt)
    )


def forecast_brief(
    predictor: Predictor,
    data: Path,
    brief: Brief,
    tiers: TierConfig,
    *,
    creator_ids: Sequence[str] | None = None,
    fmt: str | None = None,
) -> BriefForecast:
    """Forecast creators of the dataset folder ``data`` for ``brief`` (all creators, or ``creator_ids``).

    The whole folder is read and validated either way: a creator's features compare it with the base's peers.
    """
    base = load_candidate_base(data)
    if creator_ids is not None:
        found = set(base.creators["creator_id"].to_list())
        unknown = [c for c in creator_ids if c not in found]
        if unknown:
            raise InputError(f"creator(s) {', '.join(unknown[:5])} not found (or invalid) in {data}.",
                             fix="check the id with `ie summary` or the creators table")  # fmt: skip
        base = base.subset(creator_ids)
    return forecast_base(predictor, base, brief, tiers, fmt=fmt)


@dataclass(frozen=True)
class CreatorForecast:
    """One creator's forecast for a brief, with the reasons behind its goal's KPI (``ie forecast``, the API)."""

    row: dict[str, Any]  # every KPI with P10/P50/P90, cost figures, price, audience fit, ...
    goal_kpi: str
    goal_base: str  # what the goal's KPI is a rate of: "followers" or an earlier KPI's forecast
    reasons: list[Reason]
    notes: list[str]

    def json_dict(self) -> dict[str, Any]:
        """The one JSON form (NaN as null, dates as ISO text)."""

        def clean(v: Any) -> Any:
            if isinstance(v, float) and not math.isfinite(v):
                return None
            return v.isoformat() if hasattr(v, "isoformat") else v

        return {"creator": {k: clean(v) for k, v in self.row.items()}, "goal_kpi": self.goal_kpi,
                "goal_base": self.goal_base,
                "reasons": [{k: clean(v) for k, v in r.to_dict().items()} for r in self.reasons],
                "notes": list(self.notes)}  # fmt: skip


def forecast_creator(forecast: BriefForecast, creator_id: str, *, top: int = 5) -> CreatorForecast:
    """``creator_id``'s row of ``forecast`` with the reasons for its brief's goal; InputError if it was not scored."""
    row = forecast.table.filter(pl.col("creator_id") == creator_id)
    if row.height == 0:
        why = forecast.rejects.filter(pl.col("key").str.contains(creator_id, literal=True))["reason"].to_list()
        raise InputError(f"creator {creator_id} cannot be forecast ({', '.join(why[:3]) or 'not in the candidates'}).",
                         fix="fix the creator's row in the candidate data")  # fmt: skip
    kpi = GOALS[forecast.brief.goal].kpi
    return CreatorForecast(row=row.row(0, named=True), goal_kpi=kpi, goal_base=forecast.predictor.base_of(kpi),
                           reasons=forecast.reasons([creator_id], kpi, top)[0], notes=list(forecast.notes))  # fmt: skip
