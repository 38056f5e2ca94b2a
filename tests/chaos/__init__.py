"""The chaos run: faults injected into the real local stack while sessions get work."""
