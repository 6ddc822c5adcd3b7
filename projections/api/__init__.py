"""HTTP edge of the read models: product page, search, trending feed, note lists, projection
status."""

from __future__ import annotations

from litestar import Router
from litestar.di import Provide

from projections.api.note_lists import NoteListController
from projections.api.pages import ProductPageController
from projections.api.runtime import ReadModels
from projections.api.search import SearchController
from projections.api.status import projections_status


def read_routes(reads: ReadModels) -> Router:
    """The endpoints, with `reads` injected (redcart.app mounts this router)."""
    return Router(
        path="/",
        route_handlers=[
            ProductPageController,
            SearchController,
            NoteListController,
            projections_status,
        ],
        dependencies={"reads": Provide(lambda: reads, use_cache=True, sync_to_thread=False)},
    )
