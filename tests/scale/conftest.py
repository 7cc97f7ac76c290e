"""The scale-out tests' cluster: one per test session, as many workers as the largest `WORKERS`
of the collected modules (a worker's start costs seconds of CPU on a 2-core machine, so it is
paid once), on a fresh PostgreSQL database of its own. A module with `WORKERS = N` runs on the
first N (the others stopped); one without keeps whatever runs. `healed` starts again any worker
a test killed and takes the model's latency back to none. The schedule is planned as the first
scale test starts, so that its wait for the next minute overlaps the other modules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.scale.cluster import Cluster
from tests.scale.schedule import Planned, plan_schedule

DEFAULT_WORKERS = 2


@pytest.fixture(scope="session")
def scale_cluster(
    request: pytest.FixtureRequest, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    modules = {item.module for item in request.session.items if item.module is not None}
    size = max(
        int(getattr(module, "WORKERS", DEFAULT_WORKERS))
        for module in modules
        if module.__name__.startswith("tests.scale.")
    )
    with Cluster.start(postgres_url, tmp_path_factory.mktemp("scale"), workers=size) as running:
        yield running


@pytest.fixture(scope="session", autouse=True)
def planned(scale_cluster: Cluster) -> Planned:
    return plan_schedule(scale_cluster)


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest, scale_cluster: Cluster) -> Cluster:
    size = getattr(request.module, "WORKERS", None)
    if size is not None:
        scale_cluster.resize(int(size))
    return scale_cluster


@pytest.fixture
def healed(cluster: Cluster) -> Iterator[Cluster]:
    """The module's cluster with every worker running and the model answering at once."""
    cluster.heal()
    cluster.llm.latency_s = 0.0
    yield cluster
    cluster.llm.latency_s = 0.0
