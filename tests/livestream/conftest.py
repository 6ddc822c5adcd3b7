from .harness import live_server, open_viewer

__all__ = ["live_server", "open_viewer"]
