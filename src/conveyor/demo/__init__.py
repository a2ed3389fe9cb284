"""The demo app used by ``conveyor demo``."""
