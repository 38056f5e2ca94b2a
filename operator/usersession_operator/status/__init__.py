"""Status, computed: a pure function from what the operator observed (an
Observation from its watches and the last Redis reading) to the status it
should write, with the phase, the conditions and their Warning events, a
session's pods, drift of a child, and expiry. No I/O; imports only session/ and
state.
"""
