"""A file of precomputed vectors keyed by content hash (numpy .npz, no pickles).

Shipped for the demo's research records (market/data/), so that tests and a first
`make run` get their vectors without minutes of embedding. Vectors are stored as
float16 (half the size; a cosine with the float32 original stays above 0.9999) and
renormalised when read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from search.embedding.base import EmbeddingError, Encoding, Vectors, as_encoding, unit_rows

FORMAT_VERSION = 1


@dataclass(frozen=True)
class VectorCacheFile:
    model_id: str
    dimensions: int
    encoding: Encoding
    hashes: list[str]
    vectors: Vectors  # (len(hashes), dimensions), unit rows

    def by_hash(self) -> dict[str, Vectors]:
        return dict(zip(self.hashes, self.vectors, strict=True))


def write_cache_file(path: Path, cache: VectorCacheFile) -> None:
    if cache.vectors.shape != (len(cache.hashes), cache.dimensions):
        raise ValueError("one vector of the declared dimensions per hash")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        np.savez_compressed(
            out,
            format_version=np.array(FORMAT_VERSION),
            model_id=np.array(cache.model_id),
            encoding=np.array(cache.encoding),
            hashes=np.array(cache.hashes, dtype="U64"),
            vectors=cache.vectors.astype(np.float16),
        )


def read_cache_file(path: Path) -> VectorCacheFile:
    try:
        with np.load(path, allow_pickle=False) as data:
            if int(data["format_version"]) != FORMAT_VERSION:
                raise EmbeddingError(f"{path}: unknown vector cache format")
            hashes = [str(value) for value in data["hashes"]]
            raw = data["vectors"]
            dimensions = int(raw.shape[1]) if raw.ndim == 2 else -1
            return VectorCacheFile(
                model_id=str(data["model_id"]),
                dimensions=dimensions,
                encoding=as_encoding(str(data["encoding"])),
                hashes=hashes,
                vectors=unit_rows(raw, len(hashes), dimensions),
            )
    except (OSError, KeyError, ValueError) as error:
        raise EmbeddingError(f"{path}: not a readable vector cache ({error})") from error
