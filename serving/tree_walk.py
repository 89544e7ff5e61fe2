"""Walk every tree of an ensemble at once, in numpy, from one flat table of their nodes.

scikit-learn predicts with one compiled call per tree, and each call costs
microseconds of argument checking before it reads a single node: for 50-100
trees on one row that is most of the time. Here the nodes of all trees are
concatenated into flat arrays, and all (row, tree) pairs take one step down
per numpy operation, ``depth`` steps in all. A leaf points to itself, so pairs
that reached theirs stay put. Each step takes the same decision as the
libraries' own loops: right when ``x > threshold``, else left (inputs with NaN
never get here; see ``tree_fast``).

The walk costs six or seven numpy operations per level, whatever the number of
trees; the libraries' per-tree calls cost one call per tree, whatever the
depth. Measured on the wine data (2 cores): 50 trees of depth 8, one row,
the walk takes 0.3 ms and 50 ``tree_.apply`` calls 0.8 ms; 100 trees of depth
31, 1.7 ms and 1.0 ms; on 1,000 rows the per-tree calls win unless the trees are
shallow (GradientBoosting's depth 3: 3 ms against 11 ms). So
trees that have a compiled ``apply`` (scikit-learn's ``tree_``) use it unless
the request is small and the trees shallow for their number.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

WALK_ROWS = 32  # above this many rows, per-tree compiled calls beat the walk of trees deeper than SHALLOW
SHALLOW = 8
LEVELS_PER_TREE_CALL = 4  # one level of the walk costs about as much as 4 per-tree calls


@dataclass(frozen=True)
class Node:
    """The nodes of one tree, in its own numbering; a leaf has ``left == right == -1``."""

    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    value: np.ndarray  # (nodes, values): what a row that ends in this node contributes
    depth: int
    apply: Callable[[np.ndarray], np.ndarray] | None = None  # the library's own x -> leaf per row, if compiled


@dataclass(frozen=True)
class TreeTable:
    """The nodes of many trees in one numbering of slots, two per node (node ``n`` is slot ``2n``).

    From the node in slot ``s``, a row goes to slot ``next[s + right]``;
    ``feature``, ``threshold`` and ``value`` are indexed by slot too, so a step
    of the walk is six numpy operations.
    """

    next: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    value: np.ndarray
    roots: np.ndarray
    depth: int
    apply: tuple[Callable[[np.ndarray], np.ndarray], ...] = ()

    @classmethod
    def of(cls, trees: Sequence[Node]) -> TreeTable:
        sizes = [len(t.left) for t in trees]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        nexts, features, thresholds = [], [], []
        for tree, offset in zip(trees, offsets, strict=True):
            own = np.arange(len(tree.left), dtype=np.intp) + offset
            leaf = tree.left < 0
            left = np.where(leaf, own, tree.left.astype(np.intp) + offset)
            right = np.where(leaf, own, tree.right.astype(np.intp) + offset)
            nexts.append(2 * np.column_stack([left, right]).ravel())
            features.append(np.where(leaf, 0, tree.feature).astype(np.intp))
            thresholds.append(np.where(leaf, 0.0, tree.threshold).astype(np.float64))
        value = np.concatenate([t.value for t in trees]).astype(np.float64)
        return cls(
            next=np.concatenate(nexts),
            feature=np.repeat(np.concatenate(features), 2),
            threshold=np.repeat(np.concatenate(thresholds), 2),
            value=np.ascontiguousarray(np.repeat(value, 2, axis=0)),
            roots=2 * offsets,
            depth=max(t.depth for t in trees),
            apply=tuple(t.apply for t in trees if t.apply is not None) if all(t.apply for t in trees) else (),
        )

    def walk_pays(self, rows: int) -> bool:
        """Whether walking beats the per-tree compiled calls for ``rows`` rows (always, without them)."""
        if not self.apply:
            return True
        shallow = self.depth * LEVELS_PER_TREE_CALL < len(self.roots)
        return shallow and (rows <= WALK_ROWS or self.depth <= SHALLOW)

    def leaves(self, x: np.ndarray) -> np.ndarray:
        """(rows, trees): the slot of the leaf each row reaches in each tree; ``x`` is 2-D, finite, the trees' dtype."""
        if not self.walk_pays(x.shape[0]):
            return 2 * np.column_stack([apply(x) for apply in self.apply]) + self.roots
        x = np.ascontiguousarray(x)
        flat = x.ravel()
        slot = np.repeat(self.roots[None, :], x.shape[0], axis=0)
        if x.shape[0] == 1:
            for _ in range(self.depth):
                slot = self.next.take(slot + (flat.take(self.feature.take(slot)) > self.threshold.take(slot)))
            return slot
        starts = (np.arange(x.shape[0], dtype=np.intp) * x.shape[1])[:, None]
        for _ in range(self.depth):
            slot = self.next.take(slot + (flat.take(starts + self.feature.take(slot)) > self.threshold.take(slot)))
        return slot

    def values(self, x: np.ndarray) -> np.ndarray:
        """(rows, trees, values): each tree's leaf value for each row."""
        return self.value.take(self.leaves(x), axis=0)


def running_sum(start: np.ndarray, terms: np.ndarray) -> np.ndarray:
    """``start + terms[:, 0] + terms[:, 1] + ...`` added one term at a time, in order, as the libraries add.

    ``terms`` is (rows, terms, outputs), ``start`` (outputs,). ``cumsum`` adds
    sequentially (``sum`` would add pairwise, which changes the last bits).
    """
    stacked = np.empty((terms.shape[0], terms.shape[1] + 1, terms.shape[2]), dtype=np.float64)
    stacked[:, 0, :] = start
    stacked[:, 1:, :] = terms
    return np.cumsum(stacked, axis=1)[:, -1, :]
