"""Generated from protos/regelmotor/v1 by grpc_tools.protoc (see Makefile `protos`); do not edit."""
