"""Regelmotor's engine core: a plain library with no gRPC in it.

Public facade: load rulesets, select the version in force, evaluate facts into explained decisions.
"""
