"""The one gate to the Kubernetes API, with the official client: the client itself
(configuration, timeouts, error descriptions, a 404 read as None), the operator's
writes (server-side apply, status, events), list+watch by label (also behind the
session API's cache), the one Secret and ConfigMap reader, and the Lease and
EndpointSlice calls of leadership/. No other package imports `kubernetes`.
Imports session/ and builders/ for names and kinds, nothing above them.
"""
