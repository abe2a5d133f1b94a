"""Eichrecht charge point daemon."""

__version__ = "0.1.0"
