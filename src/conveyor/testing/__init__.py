"""Helpers for testing code that uses Conveyor, and for testing Conveyor itself."""
