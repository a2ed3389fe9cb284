"""Workflows: chain, group and chord, durable in the backend."""

from .canvas import Chain, Chord, Group, chain, chord, group
from .handle import Workflow

__all__ = ["Chain", "Chord", "Group", "Workflow", "chain", "chord", "group"]
