"""The demo app used by ``conveyor demo``."""

#: The demo's app, as ``-A`` takes it: what another terminal names to look at the demo.
APP = "conveyor.demo.tasks:app"
