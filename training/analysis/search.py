"""Visual similarity search over design signatures, and how good it is.

The index is an embeddings folder (``autostop embed``: ``vectors.npy`` + ``embeddings.json``) plus
``index.json`` naming the distance metric. Neighbours are found with scikit-learn's ``NearestNeighbors``
(a well-kept library: ball trees / brute force chosen by size, not hand-rolled). On load the search
structure is rebuilt from the vectors rather than unpickled: building takes milliseconds for the sizes here,
and nothing executable is ever read from an index folder, so an index from elsewhere is safe to open.

``autostop similar <model-or-index> <design id | folder of views> -k 5`` prints the k nearest designs with
their distances. A design id is looked up in the index and excluded from its own results; a folder of
views (``view_00.png`` ...) is embedded with the model first and nothing is excluded -- the folder of an
indexed design finds that design first, at distance ~0.

``autostop evaluate`` measures retrieval on held-out designs (designs the model was not trained on), by
family. Definitions, for a set of N labelled designs and a cut-off k:

- Leave-one-out: every design is a query once; its ranked list is all OTHER designs of the set, by
  increasing distance to it (ties kept in the index's order). A result is *relevant* when it has the
  query's family. Queries whose family has no other design in the set are skipped (and counted).
- precision@k of a query = (relevant results among the first k) / k, where k is capped at the number of
  other designs.
- average precision (AP) of a query = (1 / R) * sum over ranks r = 1..N-1 with a relevant result of
  precision@r, where R is the number of relevant results (designs of its family minus itself): 1.0 when
  all designs of the family come before any other.
- Per family: the mean of precision@k and of AP over that family's queries. Overall: the mean over all
  queries (mAP is the overall mean AP); ``macro_*`` averages the family means instead (equal when the
  families are the same size).
- By group (``evaluate_by_group``, e.g. the hard dataset's trained vs held-out families): each group's
  designs are evaluated among themselves, as if the index held that group alone -- "how well are new
  families told apart from each other" is not diluted by designs of families the model was trained on.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from training.analysis import embeddings as embeddings_module

INDEX_FILE = "index.json"
METRICS = ("euclidean", "cosine")
DEFAULT_METRIC = "euclidean"
DEFAULT_K = 5


class SearchError(ValueError):
    """An index, query or evaluation input cannot be used; the message says why."""


@dataclasses.dataclass(frozen=True)
class Neighbour:
    rank: int
    design_id: str
    family: str
    distance: float


class SimilarityIndex:
    """Nearest-neighbour search over an ``EmbeddingSet`` (scikit-learn ``NearestNeighbors``)."""

    def __init__(self, embeddings: embeddings_module.EmbeddingSet, *, metric: str = DEFAULT_METRIC) -> None:
        if metric not in METRICS:
            raise SearchError(f"unknown metric {metric!r}: expected one of {', '.join(METRICS)}")
        if len(embeddings) == 0:
            raise SearchError("cannot index an empty set of embeddings")
        if not np.all(np.isfinite(embeddings.vectors)):
            raise SearchError("the embeddings contain NaN or infinite values (was the model trained to NaN?)")
        from sklearn.neighbors import NearestNeighbors

        self.embeddings = embeddings
        self.metric = metric
        self._positions = {design_id: index for index, design_id in enumerate(embeddings.design_ids)}
        self._search = NearestNeighbors(metric=metric).fit(embeddings.vectors)

    def __len__(self) -> int:
        return len(self.embeddings)

    @property
    def model(self) -> str | None:
        model = self.embeddings.source.get("model")
        return str(model) if model else None

    def vector_of(self, design_id: str) -> npt.NDArray[np.float32]:
        try:
            return self.embeddings.vectors[self._positions[design_id]]
        except KeyError:
            raise SearchError(f"design {design_id!r} is not in the index ({len(self)} designs)") from None

    def ranked(self, vectors: npt.ArrayLike, count: int) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
        """(distances, positions) of the ``count`` nearest indexed designs of each query vector."""
        queries = np.atleast_2d(np.asarray(vectors, np.float32))
        if queries.shape[1] != self.embeddings.vectors.shape[1]:
            raise SearchError(
                f"query vectors have {queries.shape[1]} dimensions, the index "
                f"{self.embeddings.vectors.shape[1]}: were they made by the same model?"
            )
        return self._search.kneighbors(queries, n_neighbors=min(count, len(self)))  # type: ignore[no-any-return]

    def query(
        self, vector: npt.ArrayLike, k: int = DEFAULT_K, *, exclude: Sequence[str] = ()
    ) -> list[Neighbour]:
        """The k nearest designs of one vector, nearest first, leaving out the designs in ``exclude``."""
        if k <= 0:
            raise SearchError(f"k must be > 0, got {k}")
        excluded = {self._positions[design_id] for design_id in exclude if design_id in self._positions}
        distances, positions = self.ranked(vector, k + len(excluded))
        neighbours: list[Neighbour] = []
        for distance, position in zip(distances[0], positions[0], strict=True):
            if int(position) in excluded:
                continue
            neighbours.append(
                Neighbour(
                    rank=len(neighbours) + 1,
                    design_id=self.embeddings.design_ids[position],
                    family=self.embeddings.families[position],
                    distance=float(distance),
                )
            )
            if len(neighbours) == k:
                break
        return neighbours

    def neighbours_of(self, design_id: str, k: int = DEFAULT_K) -> list[Neighbour]:
        """The k designs most similar to an indexed design (itself excluded)."""
        return self.query(self.vector_of(design_id), k, exclude=[design_id])

    def save(self, directory: str | os.PathLike[str]) -> Path:
        out = self.embeddings.save(directory)
        (out / INDEX_FILE).write_text(
            json.dumps(
                {"metric": self.metric, "designs": len(self), "library": "sklearn.neighbors.NearestNeighbors"}
            ),
            encoding="utf-8",
        )
        return out


def is_index(path: str | os.PathLike[str]) -> bool:
    folder = Path(path)
    return folder.is_dir() and (folder / embeddings_module.METADATA_FILE).is_file()


def load_index(directory: str | os.PathLike[str], *, metric: str | None = None) -> SimilarityIndex:
    """An index folder (or a plain embeddings folder: euclidean unless ``metric`` says otherwise)."""
    folder = Path(directory)
    stored = DEFAULT_METRIC
    if (folder / INDEX_FILE).is_file():
        try:
            stored = str(json.loads((folder / INDEX_FILE).read_text(encoding="utf-8"))["metric"])
        except (ValueError, KeyError, TypeError) as error:
            raise SearchError(f"cannot read {folder / INDEX_FILE}: {error}") from None
    return SimilarityIndex(embeddings_module.EmbeddingSet.load(folder), metric=metric or stored)


# --- retrieval quality --------------------------------------------------------------------------------------


def precision_at_k(relevant: Sequence[bool], k: int) -> float:
    """Relevant results among the first k of a ranked list, over k (k capped at the list's length)."""
    if k <= 0:
        raise ValueError(f"k must be > 0, got {k}")
    cut = min(k, len(relevant))
    if cut == 0:
        raise ValueError("precision@k of an empty ranking is undefined")
    return sum(bool(flag) for flag in relevant[:cut]) / cut


def average_precision(relevant: Sequence[bool]) -> float:
    """Mean of precision@r over the ranks r of the relevant results of a full ranking."""
    hits = 0
    total = 0.0
    for rank, flag in enumerate(relevant, start=1):
        if flag:
            hits += 1
            total += hits / rank
    if hits == 0:
        raise ValueError("average precision needs at least one relevant result")
    return total / hits


@dataclasses.dataclass(frozen=True)
class FamilyScores:
    family: str
    queries: int
    precision_at_k: float
    average_precision: float


@dataclasses.dataclass(frozen=True)
class RetrievalReport:
    k: int
    metric: str
    designs: int
    queries: int
    skipped: int  # designs without a family, or alone in their family
    precision_at_k: float  # mean over queries
    mean_average_precision: float  # mean over queries
    macro_precision_at_k: float  # mean over families
    macro_mean_average_precision: float
    families: tuple[FamilyScores, ...]

    def to_json_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def markdown(self) -> str:
        lines = [
            f"| family | queries | precision@{self.k} | AP |",
            "|---|---|---|---|",
            *(
                f"| {scores.family} | {scores.queries} | {scores.precision_at_k:.3f} | "
                f"{scores.average_precision:.3f} |"
                for scores in self.families
            ),
            f"| **all** | {self.queries} | **{self.precision_at_k:.3f}** | "
            f"**mAP {self.mean_average_precision:.3f}** |",
        ]
        return "\n".join(lines)


def evaluate_retrieval(
    embeddings: embeddings_module.EmbeddingSet, *, k: int = DEFAULT_K, metric: str = DEFAULT_METRIC
) -> RetrievalReport:
    """Leave-one-out precision@k and mAP by family over a set of held-out designs (module docstring)."""
    if k <= 0:
        raise SearchError(f"k must be > 0, got {k}")
    families = embeddings.families
    sizes: dict[str, int] = {}
    for family in families:
        if family:
            sizes[family] = sizes.get(family, 0) + 1
    queries = [index for index, family in enumerate(families) if family and sizes[family] >= 2]
    if not queries:
        raise SearchError(
            f"nothing to evaluate among {len(families)} designs: every query needs a family label and at "
            "least one other design of its family"
        )
    index = SimilarityIndex(embeddings, metric=metric)
    distances, positions = index.ranked(embeddings.vectors[queries], len(index))
    per_family: dict[str, list[tuple[float, float]]] = {}
    for query, row_distances, row_positions in zip(queries, distances, positions, strict=True):
        # Equal distances in index order, whatever order the search structure returned them in.
        ranking = row_positions[np.lexsort((row_positions, row_distances))]
        others = [int(position) for position in ranking if int(position) != query]
        relevant = [families[position] == families[query] for position in others]
        scores = (precision_at_k(relevant, k), average_precision(relevant))
        per_family.setdefault(families[query], []).append(scores)
    family_scores = tuple(
        FamilyScores(
            family=family,
            queries=len(scores),
            precision_at_k=statistics.fmean(score[0] for score in scores),
            average_precision=statistics.fmean(score[1] for score in scores),
        )
        for family, scores in sorted(per_family.items())
    )
    everything = [score for scores in per_family.values() for score in scores]
    return RetrievalReport(
        k=k,
        metric=metric,
        designs=len(families),
        queries=len(everything),
        skipped=len(families) - len(everything),
        precision_at_k=statistics.fmean(score[0] for score in everything),
        mean_average_precision=statistics.fmean(score[1] for score in everything),
        macro_precision_at_k=statistics.fmean(scores.precision_at_k for scores in family_scores),
        macro_mean_average_precision=statistics.fmean(scores.average_precision for scores in family_scores),
        families=family_scores,
    )


def evaluate_by_group(
    embeddings: embeddings_module.EmbeddingSet,
    groups: Mapping[str, str],
    *,
    k: int = DEFAULT_K,
    metric: str = DEFAULT_METRIC,
) -> dict[str, RetrievalReport]:
    """Retrieval within each group of families (``groups`` maps family -> group), in group-name order.

    A family that ``groups`` does not name is an error: silently leaving designs out would change the
    figures without saying so.
    """
    unknown = sorted({family for family in embeddings.families if family not in groups})
    if unknown:
        raise SearchError(f"no group given for families: {', '.join(repr(name) for name in unknown)}")
    reports = {}
    for group in sorted({groups[family] for family in embeddings.families}):
        rows = [index for index, family in enumerate(embeddings.families) if groups[family] == group]
        subset = embeddings_module.EmbeddingSet(
            vectors=embeddings.vectors[rows],
            design_ids=tuple(embeddings.design_ids[row] for row in rows),
            families=tuple(embeddings.families[row] for row in rows),
            source=embeddings.source,
        )
        try:
            reports[group] = evaluate_retrieval(subset, k=k, metric=metric)
        except SearchError as error:
            raise SearchError(f"group {group!r}: {error}") from None
    return reports


def groups_markdown(reports: Mapping[str, RetrievalReport]) -> str:
    """One row per group of ``evaluate_by_group``: its designs, families, precision@k and mAP."""
    k = next(iter(reports.values())).k if reports else DEFAULT_K
    lines = [
        f"| group | designs | families | queries | precision@{k} | mAP |",
        "|---|---:|---:|---:|---:|---:|",
        *(
            f"| {group} | {report.designs} | {len(report.families)} | {report.queries} | "
            f"{report.precision_at_k:.3f} | {report.mean_average_precision:.3f} |"
            for group, report in reports.items()
        ),
    ]
    return "\n".join(lines)
