"""The package version, in a module of its own so every layer can read it without
importing the package's top (which imports every layer)."""

__version__ = "0.1.0"
