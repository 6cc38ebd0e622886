"""What a trained model holds: :class:`ModelParts` (saved and loaded by
``training.artifact``) and the :class:`Recommendation` it answers with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from recsys.affinity import AffinityProfile, CategoryIndex
from recsys.idmap import IdMap

FloatArray = npt.NDArray[np.float32]
WARM = -2  # placement of a title that had sales: it has its own factors


@dataclass(frozen=True)
class Recommendation:
    title_id: str
    score: float
    reason: str
    reason_kind: str  # 'history' | 'new_in_category' | 'category_popular' | 'popular'
    because: tuple[str, ...]
    reason_zh: str = ""  # the same reason in Chinese, for the printed catalogs


@dataclass
class ModelParts:
    """Everything a trained model holds; ``training.artifact`` saves and loads it."""

    kind: str  # 'als' | 'bpr' (factors) | 'item_knn' (similarity) | 'blend' (both) | 'popularity' | …
    params: dict[str, Any]  # the recommender's; a blend's: {'weight', 'als': {…}, 'item_knn': {…}}
    members: IdMap
    titles: IdMap
    title_names: list[str]
    member_factors: FloatArray  # members × k (may be a read-only memmap)
    title_factors: FloatArray  # titles × k, cold titles placed
    member_titles: sp.csr_matrix  # members × titles, confidence
    categories: CategoryIndex
    title_categories: sp.csr_matrix  # titles × categories, all levels
    affinity: AffinityProfile
    popularity: FloatArray  # per title
    placement: npt.NDArray[np.int64]  # per title: WARM, a category column, or -1 (all titles)
    thin_history: float = 3.0
    min_titles: int = 3
    threads: int = 1
    extra_title_ids: list[str] = field(default_factory=list)  # added after training
    # item_knn: titles × titles similarity of the titles trained on (score = history @ similarity);
    # the factor arrays of a model without factors are members × 0 and titles × 0; a blend holds
    # both, its ALS factors and its item-kNN similarity
    similarity: sp.csr_matrix | None = None

    @property
    def factor_params(self) -> dict[str, Any]:
        """The settings its factors were fitted with (a blend's ALS component's)."""
        if self.kind == "blend":
            als: dict[str, Any] = self.params.get("als", {})
            return als
        return self.params


FACTOR_KINDS = frozenset({"als", "bpr"})
SERVED_KINDS = ("als", "bpr", "item_knn", "blend", "popularity", "category_popularity")
