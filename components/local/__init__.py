"""The local rung: the developer's own Docker engine, no cloud account."""

from components.local.stack import LocalStack, LocalStackArgs

__all__ = ["LocalStack", "LocalStackArgs"]
