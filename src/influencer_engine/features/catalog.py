"""The feature catalog: every feature's name, group and one-line meaning. Names are built from parameters."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "EWM_HALF_LIVES",
    "HISTORY_METRICS",
    "LAGS",
    "SLOPE_DAYS",
    "WINDOWS",
    "FeatureSpec",
    "catalog",
    "history_name",
]

# Last-N-posts windows of the history group (most recent posts before the as-of time).
WINDOWS = (5, 20)
HISTORY_METRICS = ("impressions", "views", "reach", "likes", "comments", "shares", "saves", "interactions")
SPONSORED_GAP_WINDOW = 50
CADENCE_DAYS = 90
SHRINK_PSEUDO_POSTS = 5
# Lags and exponentially weighted means of log(1 + interactions): the short memory a median of 5 or 20 posts blurs.
LAGS = (1, 2, 3)
EWM_HALF_LIVES = (3, 10)  # in posts
SLOPE_DAYS = 30  # the trend is reported per this many days


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    group: str
    meaning: str


def history_name(metric: str, stat: str, window: int) -> str:
    """'likes', 'median', 5 -> 'likes_median_last5'."""
    return f"{metric}_{stat}_last{window}"


def catalog() -> list[FeatureSpec]:
    """Every feature the builder emits, in output order."""
    specs: list[FeatureSpec] = []
    h = "history"
    specs += [
        FeatureSpec("posts_before", h, "posts published before the as-of time"),
        FeatureSpec("history_days", h, "days between the first post and the as-of time"),
        FeatureSpec("days_since_last_post", h, "days between the latest post and the as-of time (recency)"),
        FeatureSpec(f"posts_per_week_last{CADENCE_DAYS}d", h, f"posting cadence over the {CADENCE_DAYS} days before"),
    ]
    for m in HISTORY_METRICS:
        for w in WINDOWS:
            specs.append(FeatureSpec(history_name(m, "median", w), h, f"median {m} per post over the last {w} posts"))
        specs.append(
            FeatureSpec(history_name(m, "mean", WINDOWS[-1]), h, f"mean {m} per post, last {WINDOWS[-1]} posts")
        )
    lo, hi = WINDOWS[0], WINDOWS[-1]
    specs += [
        FeatureSpec(
            f"interactions_trend_{lo}v{hi}", h, f"log ratio of median interactions, last {lo} vs last {hi} posts"
        ),
        FeatureSpec(f"interactions_cv_last{hi}", h, f"coefficient of variation of interactions, last {hi} posts"),
        *(
            FeatureSpec(f"log_interactions_lag{k}", h, f"log(1 + interactions) of the latest post but {k - 1}")
            for k in LAGS
        ),
        *(
            FeatureSpec(
                f"log_interactions_ewm{hl}",
                h,
                f"exponentially weighted mean of log(1 + interactions) over the last {hi} posts, half-life {hl} posts",
            )
            for hl in EWM_HALF_LIVES
        ),
        FeatureSpec(
            f"log_interactions_sd_last{hi}", h, f"standard deviation of log(1 + interactions), last {hi} posts"
        ),
        FeatureSpec(
            f"log_interactions_slope_last{hi}",
            h,
            f"least-squares trend of log(1 + interactions) per {SLOPE_DAYS} days, last {hi} posts",
        ),
        FeatureSpec(
            "log_interactions_last_same_format",
            h,
            "log(1 + interactions) of the latest post in the planned post's format",
        ),
        FeatureSpec("days_between_last_two_posts", h, "days between the latest post and the one before it"),
        FeatureSpec("posts_last7d", h, "posts in the 7 days before the as-of time"),
        FeatureSpec(
            f"sponsored_gap_last{SPONSORED_GAP_WINDOW}",
            h,
            f"log ratio of median interactions, sponsored vs organic, last {SPONSORED_GAP_WINDOW} posts",
        ),
        FeatureSpec("sponsored_share", h, "share of past posts that were sponsored"),
        FeatureSpec("interactions_median_same_format", h, "median interactions of past posts in the brief's format"),
        FeatureSpec("same_format_share", h, "share of past posts in the brief's format"),
        FeatureSpec(f"er_median_last{hi}", h, f"median interactions over the last {hi} posts per follower"),
        FeatureSpec(
            f"er_last{hi}_shrunk",
            h,
            f"er_median_last{hi} shrunk toward its platform x tier median ({SHRINK_PSEUDO_POSTS} pseudo-posts)",
        ),
        FeatureSpec(
            "interactions_anchor",
            h,
            f"followers x er_median_last{hi} shrunk toward peers with weight {SHRINK_PSEUDO_POSTS} / (posts + "
            f"{SHRINK_PSEUDO_POSTS}): the interactions per post the creator's own history points to",
        ),
    ]
    specs += [
        FeatureSpec("fit_age", "audience_fit", "share of the audience in the brief's age bands"),
        FeatureSpec("fit_gender", "audience_fit", "share of the audience of the brief's genders"),
        FeatureSpec("fit_country", "audience_fit", "share of the audience in the brief's countries"),
        FeatureSpec("audience_fit", "audience_fit", "fit_age x fit_gender x fit_country: share inside the target"),
        FeatureSpec("affinity", "affinity", "share of the audience whose main interest is the brand's category"),
        FeatureSpec(
            "category_rank", "affinity", "2 if the brand's category is the creator's main niche, 1 if listed, 0 if not"
        ),
        FeatureSpec("audience_credibility", "quality", "share of followers that are real people (reported)"),
        FeatureSpec("er_vs_peers", "quality", "engagement rate over the median of same platform and tier (anomaly)"),
        FeatureSpec(f"comments_per_like_last{hi}", "quality", f"median comments over median likes, last {hi} posts"),
        FeatureSpec("following_per_follower", "quality", "accounts followed per follower (follow-for-follow signal)"),
        FeatureSpec("followers", "scale", "followers now"),
        FeatureSpec("log10_followers", "scale", "log10 of followers"),
        FeatureSpec("real_followers_est", "scale", "followers x audience credibility"),
        FeatureSpec("tier", "scale", "size tier (nano, micro, mid, macro, mega)"),
        FeatureSpec("price", "price", "list price of one post in the brief's format (USD)"),
        FeatureSpec("price_per_follower", "price", "price / followers"),
        FeatureSpec(
            "price_per_expected_view", "price", f"price / median views (else impressions, reach), last {hi} posts"
        ),
        FeatureSpec("price_per_expected_interaction", "price", f"price / median interactions, last {hi} posts"),
        FeatureSpec("platform", "context", "platform"),
        FeatureSpec("format", "context", "format of the planned post"),
        FeatureSpec("brand_category", "context", "the brief's brand category (null without a brief)"),
        FeatureSpec("month", "context", "month of the as-of date (1-12)"),
        FeatureSpec("season", "context", "0 winter (Dec-Feb), 1 spring, 2 summer, 3 autumn"),
        FeatureSpec("holiday_season", "context", "1 in November and December (saturated feeds)"),
    ]
    return specs
