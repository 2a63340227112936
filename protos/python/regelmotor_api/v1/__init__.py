"""Generated from protos/regelmotor/v1 by protos/python/generate_stubs.py (`make protos`); do not edit."""
