"""Checks before the operator starts: is the cluster ready for it?

Without its CRD, or with a kubeconfig that cannot be loaded, kopf would start
and retry for ever, logging the same error each minute; one clear line on stderr
and exit code 2 say what to do instead.
"""

from __future__ import annotations

from kubernetes import client, config

from usersession_operator.kube.client import ApiException, load_api_client
from usersession_operator.session.model import GROUP, PLURAL, VERSION

CRD_NAME = f"{PLURAL}.{GROUP}"


def missing_crd(
    api_client: client.ApiClient | None = None,
    group: str = GROUP,
    version: str = VERSION,
    plural: str = PLURAL,
) -> str | None:
    """What to say when the cluster does not serve `plural`; None when it does.

    Any other failure (the API server unreachable, a 403) is raised: kopf retries
    those and reports them itself.
    """
    api = client.CustomObjectsApi(api_client or load_api_client())
    try:
        resources = api.get_api_resources(group, version).resources
    except ApiException as exc:
        if exc.status != 404:
            raise
        resources = []
    if any(resource.name == plural for resource in resources):
        return None
    return (
        f"usersession-operator: this cluster does not serve {plural}.{group}/{version}: "
        "install the CRD first (kubectl apply --server-side -f crds/, or the Helm chart, "
        "which carries it)"
    )


def problem() -> str | None:
    """What stops the operator from working on this cluster at all; None if nothing
    does. Transient failures (unreachable, forbidden) are raised, as above."""
    try:
        api_client = load_api_client()
    except config.ConfigException as exc:
        return f"usersession-operator: cannot load the cluster configuration: {exc}"
    return missing_crd(api_client)
