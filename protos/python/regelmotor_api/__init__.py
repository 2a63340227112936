"""Regelmotor's API for Python callers: the generated gRPC stubs (`regelmotor_api.v1`) and the facts-file
reader (`regelmotor_api.facts`) that the client and the server's `regelmotor evaluate` share."""
