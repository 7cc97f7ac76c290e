"""The scale-out tests' cluster: one per test module (`WORKERS` in the module, default 2), on a
fresh PostgreSQL database of its own; `healed` starts again any worker a test killed and takes
the model's latency back to none."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.scale.cluster import Cluster


@pytest.fixture(scope="module")
def cluster(
    request: pytest.FixtureRequest, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    size = int(getattr(request.module, "WORKERS", 2))
    with Cluster.start(postgres_url, tmp_path_factory.mktemp("scale"), workers=size) as running:
        yield running


@pytest.fixture
def healed(cluster: Cluster) -> Iterator[Cluster]:
    """The module's cluster with every worker running and the model answering at once."""
    cluster.heal()
    cluster.llm.latency_s = 0.0
    yield cluster
    cluster.llm.latency_s = 0.0
