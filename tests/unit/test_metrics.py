from __future__ import annotations

from usersession_operator import __version__, metrics


def _value(name: str, labels: dict[str, str] | None = None) -> float | None:
    return metrics.REGISTRY.get_sample_value(name, labels or {})


def test_depths_are_gauges_under_both_names_for_one_release() -> None:
    metrics.set_depths(7, 2)
    assert (_value("usersession_queue_depth"), _value("usersession_processing_depth")) == (7, 2)
    assert _value("usersession_queue_depth_total") == 7  # deprecated
    assert _value("usersession_processing_depth_total") == 2  # deprecated


def test_only_counters_end_in_total_except_the_deprecated_names() -> None:
    deprecated = {"usersession_queue_depth_total", "usersession_processing_depth_total"}
    for family in metrics.REGISTRY.collect():
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.name not in deprecated:
                assert family.type == "counter", sample.name


def test_build_info_names_the_version() -> None:
    families = {f.name: f for f in metrics.REGISTRY.collect()}
    [sample] = families["usersession_build_info"].samples
    assert sample.value == 1
    assert sample.labels["version"] == __version__
    assert _value("process_resident_memory_bytes") is not None
