"""A small Python client for Regelmotor's gRPC API, with a command line."""

from .client import DecisionError, RegelmotorClient

__all__ = ["DecisionError", "RegelmotorClient"]
