"""The session API: the original session-manager endpoints over UserSession objects and Redis.

It never creates Deployments or KEDA objects: it creates, reads and deletes
UserSessions, talks to the sessions' Redis lists, and leaves the rest to the
operator.
"""
