"""Suanli (算力): the per-node GPU and CPU monitor agent for AI computing centers."""

__version__ = "0.1.0"
