"""The Meilisearch test server helper: skip on a laptop, fail in CI, when missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.meili_server import (
    BINARY_VARIABLE,
    REQUIRE_VARIABLE,
    require_meilisearch_binary,
)


def test_missing_binary_skips_with_install_hint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(BINARY_VARIABLE, str(tmp_path / "no-such-meilisearch"))
    monkeypatch.delenv(REQUIRE_VARIABLE, raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"scripts/install-meilisearch\.sh"):
        require_meilisearch_binary()


def test_missing_binary_fails_when_ci_requires_meilisearch(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(BINARY_VARIABLE, str(tmp_path / "no-such-meilisearch"))
    monkeypatch.setenv(REQUIRE_VARIABLE, "1")
    with pytest.raises(pytest.fail.Exception, match="forbids skipping"):
        require_meilisearch_binary()
