"""Integrations with frameworks: ``conveyor.contrib.django``."""
