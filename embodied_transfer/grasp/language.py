"""Everyday instructions in the words the tiny VLM was trained on.

The tiny VLM learnt one phrasing per object (``pick up the red mug``): a colour of the
tabletop palette and a category name. People say ``grab the crimson cup`` or ``hand me that
ball``. :func:`normalise_instruction` finds a category word (or a synonym of one: ball →
sphere, cup → mug, cube/block → box, tin → can, ...) and a colour word (or a shade of one:
crimson → red, navy → blue, ...) anywhere in the text and restates the instruction in the
training phrasing (an instruction already in one of the trained phrasings is kept as it
is). Unknown colour words are dropped (the category alone is asked for) and
reported; an instruction with no known category is returned unchanged and reported, so the
answer that follows is judged on its own. Pure text, no model.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from embodied_transfer.grasp.reasoning import INSTRUCTION_TEMPLATES

#: Category names of the tabletop (and the reasoning), with the words people use for them.
CATEGORY_WORDS: dict[str, tuple[str, ...]] = {
    "box": ("box", "boxes", "cube", "cubes", "block", "blocks", "carton", "package"),
    "cylinder": ("cylinder", "cylinders", "tube", "pipe", "roll"),
    "sphere": ("sphere", "spheres", "ball", "balls", "orb"),
    "mug": ("mug", "mugs", "cup", "cups", "teacup", "coffee cup"),
    "bottle": ("bottle", "bottles", "flask", "jar"),
    "bowl": ("bowl", "bowls", "basin"),
    "can": ("can", "cans", "tin", "tins", "soda can"),
    "plate": ("plate", "plates", "dish", "dishes", "saucer"),
}
#: Palette colours and their shades.
COLOUR_WORDS: dict[str, tuple[str, ...]] = {
    "red": ("red", "crimson", "scarlet", "maroon", "burgundy", "ruby", "cherry"),
    "green": ("green", "lime", "olive", "emerald", "mint", "teal"),
    "blue": ("blue", "navy", "azure", "cyan", "turquoise", "cobalt", "sky blue"),
    "yellow": ("yellow", "gold", "golden", "lemon", "mustard"),
    "orange": ("orange", "amber", "tangerine", "peach", "apricot"),
    "purple": ("purple", "violet", "lilac", "lavender", "magenta", "plum", "mauve"),
    "white": ("white", "ivory", "cream", "snow white"),
    "black": ("black", "charcoal", "ebony", "jet black"),
}
#: Openings of a request, dropped before looking for words ("can you ..." names no can).
POLITE = re.compile(r"^(please |(can|could|would|will) (you|u) (please )?)+")
#: Words that look like colours but name none of the palette's (reported when dropped).
OTHER_COLOURS = ("pink", "brown", "grey", "gray", "silver", "beige", "tan", "rose")


@dataclass(frozen=True)
class Normalised:
    """An instruction restated in the training phrasing, and what was changed or missing."""

    text: str
    category: str | None
    colour: str | None
    notes: tuple[str, ...] = ()


def _find(words: dict[str, tuple[str, ...]], text: str) -> tuple[str | None, str | None]:
    """(canonical name, the word found) of the first match, longest phrases first."""
    best = None
    for name, synonyms in words.items():
        for word in synonyms:
            m = re.search(rf"\b{re.escape(word)}\b", text)
            if m and (best is None or (m.start(), -len(word)) < (best[0], -len(best[2]))):
                best = (m.start(), name, word)
    return (best[1], best[2]) if best else (None, None)


def normalise_instruction(text: str) -> Normalised:
    """``text`` as ``pick up the <colour> <category>`` (see the module docstring)."""
    lowered = " ".join(text.lower().replace("-", " ").split())
    lowered = POLITE.sub("", lowered)         # "can you ..." names no can
    category, said_category = _find(CATEGORY_WORDS, lowered)
    if category is None:
        return Normalised(text, None, None, ("no object category recognised",))
    colour, said_colour = _find(COLOUR_WORDS, lowered)
    notes = []
    if said_category != category:
        notes.append(f"'{said_category}' read as '{category}'")
    if colour is None:
        other = next((w for w in OTHER_COLOURS if re.search(rf"\b{w}\b", lowered)), None)
        if other:
            notes.append(f"colour '{other}' is not one the model knows; asked by category")
    elif said_colour != colour:
        notes.append(f"'{said_colour}' read as '{colour}'")
    if colour and lowered in {t.format(colour=colour, category=category)
                              for t in INSTRUCTION_TEMPLATES}:
        return Normalised(text, category, colour)       # a phrasing it was trained on
    phrase = f"pick up the {colour} {category}" if colour else f"pick up the {category}"
    return Normalised(phrase, category, colour, tuple(notes))
