"""The security contexts of a session's pod: Pod Security "restricted" unless the
session says otherwise.

Namespaces labelled pod-security.kubernetes.io/enforce=restricted admit a pod
only if it runs as non-root, with the runtime's seccomp profile, without
privilege escalation and with every capability dropped. These defaults meet
that; a session's spec.workload.securityContext / podSecurityContext is laid
over them key by key, so setting runAsUser keeps the seccomp profile, and
setting runAsNonRoot: false is the one way back to root (which restricted
namespaces then refuse, as they should).
"""

from __future__ import annotations

import copy
from typing import Any

from usersession_operator.session.model import Workload

RESTRICTED_POD: dict[str, Any] = {
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESTRICTED_CONTAINER: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}


def pod_security_context(workload: Workload) -> dict[str, Any]:
    return copy.deepcopy({**RESTRICTED_POD, **workload.pod_security_context})


def container_security_context(workload: Workload) -> dict[str, Any]:
    return copy.deepcopy({**RESTRICTED_CONTAINER, **workload.security_context})
