"""Parents before children: the order in which ``merge`` and ``migrate`` bring in the models
of another file, so that each model's parent is there when the model arrives."""

from __future__ import annotations


def parents_first(parents: dict[int, int | None]) -> tuple[list[int], set[int]]:
    """The model ids of ``parents`` (model id -> parent id, in the order to follow), each
    after its parent, and the models that cannot come after theirs (a parent cycle).

    A depth-first walk: each model in turn, preceded by those of its ancestors not placed
    yet, topmost first. A parent that is not in ``parents`` puts no model before the child.
    A cycle is broken where the walk closes it: the model whose parent is already on the
    walk comes first, and its link cannot be kept. (Merge assigns new ids in this order:
    changing it changes the ids a merge gives.) Iterative, so that a lineage thousands of
    models deep needs no recursion.
    """
    ordered: list[int] = []
    placed: set[int] = set()
    cut: set[int] = set()
    for start in parents:
        walk: list[int] = []
        on_walk: set[int] = set()
        node: int | None = start
        while node is not None and node in parents and node not in placed and node not in on_walk:
            walk.append(node)
            on_walk.add(node)
            node = parents[node]
        if node is not None and node in on_walk:
            cut.add(walk[-1])
        for model in reversed(walk):
            placed.add(model)
            ordered.append(model)
    return ordered, cut
