"""The controller: reconcile one session (its children applied where they differ),
react to its children's and pods' watch events, and act on each poll (status
writes, expiry, sessions kopf never handed over); the status writer; the
finalizer. The only package that ties the others together; entry points import it.
"""
