"""Waking fast: the poll of every session's lists, the reactor that hears keyspace
events between polls, and KEDA's external-push scaler (gRPC) that tells KEDA at
once. KEDA still does the scaling. Imports queues/, state, metrics and session/;
never reconcile/ (the controller calls in, not the other way round).
"""
