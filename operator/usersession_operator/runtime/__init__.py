"""The process around the controller, free of the operator's domain: background
tasks, event-loop lag, giving freed memory back, and kopf's per-object
bookkeeping kept in memory. Imports only metrics.
"""
