"""Every read model, and which application's notification log each of its feeds follows.

The one list that `redcart migrate`, the in-process runners, `redcart worker projections`,
`redcart projections status` and `redcart projections rebuild` all read, so a read model is
added in one place. To add one, append a `View` to `VIEWS`:

    VIEWS.append(View("attribution", (Feed("attribution", COMMERCE, lambda gen: Attribution()),),
                      generational=False))

- A `Feed` is one projection (the `projections.runner.Projection` protocol: name, topics,
  schema, apply): it follows exactly one application's log and has its own tracking row.
- A `View` is the tables that are read together and rebuilt together. A page fed by two logs
  (the product page: catalogue and orders from Commerce, live sessions from Livestream) is one
  view with two feeds; each feed owns its own tables, so the two never write the same rows.
- `generational=True` views are rebuilt blue/green (projections.rebuild): their feeds are built
  for a `Generation` and must name their tables and tracking rows with `gen.name(...)`.
  `generational=False` views keep fixed table names; they migrate and run, but cannot be rebuilt
  under a new name.
- `inprocess=False`: something else already runs the feed inside the API process (CommerceLists
  is run by `CommerceRuntime.lists`, whose position read-your-writes waits on, and whose
  current generation names the tables list reads use).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from commerce.domain.pricing import CbecPolicy, FreightRates
from projections.attribution_view import AttributionView
from projections.commerce_lists import CommerceLists
from projections.dashboards import LiveAnalytics, MerchantDashboard
from projections.note_lists import NoteLists
from projections.product_page import ProductPage
from projections.product_page_live import ProductPageLive
from projections.read.ranking import NoteRankingConfig, TrendingConfig
from projections.runner import Projection
from projections.search_index import SearchFeed
from projections.trending import Trending, trending_config_from_env

COMMERCE = "Commerce"  # eventsourcing Application.name of each context: whose log a feed reads
LIVESTREAM = "Livestream"


@dataclass(frozen=True)
class ReadConfig:
    """What projections need from settings. Values folded into stored rows (freight, tax,
    trending weights) take effect for old events only after a rebuild, which is cheap."""

    freight: FreightRates = field(default_factory=FreightRates)
    cbec: CbecPolicy = field(default_factory=CbecPolicy)
    trending: TrendingConfig = field(default_factory=lambda: trending_config_from_env({}))
    notes: NoteRankingConfig = field(default_factory=NoteRankingConfig)
    batch_size: int = 1000
    page_cache_seconds: float = 1.0  # how long one process reuses a rendered product page

    @classmethod
    def from_env(
        cls,
        freight: FreightRates | None = None,
        cbec: CbecPolicy | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ReadConfig:
        """REDCART_TRENDING_WEIGHTS (JSON, e.g. {"save": 6}), REDCART_TRENDING_HALF_LIFE_HOURS,
        REDCART_PROJECTION_BATCH_SIZE, REDCART_PAGE_CACHE_SECONDS (0 turns the cache off); the
        rest comes from the application's settings."""
        env = os.environ if env is None else env
        return cls(
            freight=freight or FreightRates(),
            cbec=cbec or CbecPolicy(),
            trending=trending_config_from_env(env),
            batch_size=int(env.get("REDCART_PROJECTION_BATCH_SIZE", "1000")),
            page_cache_seconds=float(env.get("REDCART_PAGE_CACHE_SECONDS", "1.0")),
        )


@dataclass(frozen=True)
class Generation:
    """One build of a view: generation `number`, tables and tracking rows suffixed `_g<n>`."""

    number: int
    dialect: str
    config: ReadConfig

    def name(self, base: str) -> str:
        return f"{base}_g{self.number}"


@dataclass(frozen=True)
class Feed:
    name: str  # base name; a generational projection is called gen.name(name)
    source: str  # COMMERCE or LIVESTREAM
    build: Callable[[Generation], Projection]


@dataclass(frozen=True)
class View:
    name: str
    feeds: tuple[Feed, ...]
    generational: bool = True
    inprocess: bool = True


VIEWS: list[View] = [
    View("commerce_lists", (Feed("commerce_lists", COMMERCE, CommerceLists),), inprocess=False),
    View(
        "product_page",
        (
            Feed("product_page", COMMERCE, ProductPage),
            Feed("product_page_live", LIVESTREAM, ProductPageLive),
        ),
    ),
    View("search", (Feed("search", COMMERCE, SearchFeed),)),
    View("trending", (Feed("trending", COMMERCE, Trending),)),
    View("note_lists", (Feed("note_lists", COMMERCE, NoteLists),)),
    View("attribution", (Feed("attribution", COMMERCE, AttributionView.for_generation),)),
    View(
        "dashboards",
        (
            Feed("merchant_dashboard", COMMERCE, MerchantDashboard.for_generation),
            Feed("live_analytics", LIVESTREAM, LiveAnalytics.for_generation),
        ),
    ),
]


def find(name: str) -> View:
    for view in VIEWS:
        if view.name == name:
            return view
    raise KeyError(f"no read model named {name!r}; known: {', '.join(v.name for v in VIEWS)}")
