"""Check of the idea: do state directions (e.g. healthy − tumor) agree across organs?"""
from __future__ import annotations

from itertools import combinations
from typing import Sequence

import torch
import torch.nn.functional as F

from embodied_transfer.editing.clip import DEFAULT_TEMPLATES, BiomedClip
from embodied_transfer.editing.errors import EditError


def direction_table(clip: BiomedClip, organs: Sequence[str], states: Sequence[str],
                    templates: Sequence[str] = DEFAULT_TEMPLATES) -> dict:
    """Cosine similarities of differences of text embeddings V("{state} {organ}").

    * ``state``: for each pair (a, b) of states, the organs × organs matrix of
      cos(V(a o1) − V(b o1), V(a o2) − V(b o2)): does the state shift transfer across organs?
    * ``organ``: for each pair (o1, o2) of organs, the states × states matrix of
      cos(V(s1 o1) − V(s1 o2), V(s2 o1) − V(s2 o2)): e.g. is V(healthy brain) − V(healthy
      breast) close to V(tumor brain) − V(tumor breast)?
    """
    if len(organs) < 2 or len(states) < 2:
        raise EditError("give at least two organs and two states")
    emb = {(s, o): clip.text_embedding(f"{s} {o}", templates) for s in states for o in organs}

    def cos_matrix(vectors: list[torch.Tensor]) -> list[list[float]]:
        v = F.normalize(torch.stack(vectors), dim=-1)
        return (v @ v.T).tolist()

    state_tables = {f"{a} - {b}": cos_matrix([emb[a, o] - emb[b, o] for o in organs])
                    for a, b in combinations(states, 2)}
    organ_tables = {f"{o1} - {o2}": cos_matrix([emb[s, o1] - emb[s, o2] for s in states])
                    for o1, o2 in combinations(organs, 2)}
    return {"organs": list(organs), "states": list(states), "state": state_tables,
            "organ": organ_tables}


def format_table(labels: Sequence[str], matrix: list[list[float]], title: str) -> str:
    """A plain-text square table of cosines."""
    width = max(8, *(len(x) for x in labels)) + 1
    lines = [title, " " * width + "".join(f"{x:>{width}}" for x in labels)]
    for label, row in zip(labels, matrix):
        lines.append(f"{label:<{width}}" + "".join(f"{v:>{width}.3f}" for v in row))
    return "\n".join(lines)


def format_report(table: dict) -> str:
    """All tables of :func:`direction_table` as text."""
    parts = [format_table(table["organs"], m, f"state direction {k} (rows/cols: organs)")
             for k, m in table["state"].items()]
    parts += [format_table(table["states"], m, f"organ direction {k} (rows/cols: states)")
              for k, m in table["organ"].items()]
    return "\n\n".join(parts)
