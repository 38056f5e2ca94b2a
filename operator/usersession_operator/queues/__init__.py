"""The one gate to Redis: where a session's lists live (targets and key names),
connections per server with their credentials (password, ACL user, TLS), queue
depths for thousands of sessions in few round trips, key cleanup, keyspace
events, and the session API's pushes and replies. No other package imports
`redis`. Imports session/, settings and state; credentials come from a reader
passed in (kube/'s), never from the Kubernetes API directly.
"""
