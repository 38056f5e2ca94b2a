"""Has someone changed a child by hand? A pure comparison of desired vs live.

Only the fields the operator sets are compared: the API server adds defaults
and other controllers add their own fields, none of which is drift. A false
positive (e.g. a quantity the API server normalised, "1000m" -> "1") costs one
no-op apply, never a loop: an apply that changes nothing emits no watch event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_COMPARED_METADATA = ("labels", "annotations", "ownerReferences")


def drifted(desired: Mapping[str, Any], live: Mapping[str, Any]) -> bool:
    desired_meta = desired.get("metadata", {})
    live_meta = live.get("metadata", {})
    for key in _COMPARED_METADATA:
        if key in desired_meta and not _contains(live_meta.get(key), desired_meta[key]):
            return True
    return not _contains(live.get("spec"), desired.get("spec", {}))


def _contains(live: Any, desired: Any) -> bool:
    if live is None and _empty(desired):
        # The API server omits empty values of built-in kinds (omitempty): an env
        # var's value "", a toleration's value "", an empty map or list.
        return True
    if isinstance(desired, Mapping):
        return isinstance(live, Mapping) and all(
            _contains(live.get(key), value) for key, value in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(live) == len(desired)
            and all(_contains(lv, dv) for lv, dv in zip(live, desired, strict=True))
        )
    return bool(live == desired)


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | Mapping | list) and not value)
