"""UserSession operator: per-user workloads that sleep at zero and wake on a Redis list."""

__version__ = "0.1.0"
