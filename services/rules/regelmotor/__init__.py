"""Regelmotor: a rule-engine service for Norwegian health care."""

__version__ = "0.1.0"
