"""Settings and the database session factory: the lowest layer, imported by everything."""

from config.settings import Settings, get_settings

__all__ = ["Settings", "get_settings"]
