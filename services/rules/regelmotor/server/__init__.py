"""The gRPC service: a thin layer over regelmotor.core."""
