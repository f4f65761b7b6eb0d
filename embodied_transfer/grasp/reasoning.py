"""Reasoning-tuning text: instructions, template reasoning, one numeric grasp format, a strict
parser.

An answer is reasoning sentences followed by one final line in a fixed format::

    I see a blue can at (164, 41), a red mug at (83, 154) and an orange bowl at (257, 117).
    The red mug at (83, 154) is a cylinder with a handle, at the centre left of the table.
    Mugs are grasped by the rim or the handle, not across the whole body.
    grasp: [85, 140, -30, 12]

with the centre column and row and the opening in whole pixels and the closing-axis angle in
whole degrees in (-90, 90] (see :mod:`embodied_transfer.grasp.rectangles`). The numbers-only
ablation answers with the final line alone.

The reasoning is a chain of thought in three steps: what is on the table and where (every
object, colour, category and approximate pixel centre, in reading order: rows of a sixth of
the image height, then left to right; :func:`scene_text`), which of those the instruction
names (its entry repeated), and how such an object is grasped. Looking at the image happens in
the first step, object by object; picking the named object is then a lookup in the text the
model has just written, and the grasp line is read off near that position.
"""
from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from embodied_transfer.grasp.errors import GraspParseError
from embodied_transfer.grasp.rectangles import Grasp

#: How each category is described and grasped (the "common sense" the reasoning carries).
CATEGORY_TEXT: dict[str, tuple[str, str]] = {
    "box": ("a rectangular box", "boxes are grasped across their two parallel faces"),
    "cylinder": ("an upright cylinder", "cylinders are grasped across their diameter"),
    "sphere": ("a ball", "balls are grasped across the middle"),
    "mug": ("a cylinder with a handle",
            "mugs are grasped by the rim or the handle, not across the whole body"),
    "bottle": ("a tall narrow cylinder with a neck",
               "bottles are grasped across the body below the neck"),
    "bowl": ("a wide open hemisphere", "bowls are grasped by the rim"),
    "can": ("a short cylinder", "cans are grasped across their diameter"),
    "plate": ("a flat disc", "plates are grasped by the edge"),
}

INSTRUCTION_TEMPLATES: tuple[str, ...] = (
    "pick up the {colour} {category}",
    "grasp the {colour} {category}",
    "hand me the {colour} {category}",
    "grab the {colour} {category}",
    "get the {colour} {category} from the table",
)

GRASP_LINE = re.compile(r"^grasp: \[(-?\d{1,5}), (-?\d{1,5}), (-?\d{1,3}), (\d{1,5})\]$")


@dataclass(frozen=True)
class ObjectInfo:
    """What the reasoning may say about one object (from scene metadata or annotations)."""

    name: str
    category: str
    colour: str
    u: float            # centre column in the image, px
    v: float            # centre row in the image, px

    def label(self) -> str:
        return f"{self.colour} {self.category}"


def instruction(obj: ObjectInfo, rng: np.random.Generator) -> str:
    """A random instruction naming ``obj`` by colour and category."""
    template = INSTRUCTION_TEMPLATES[int(rng.integers(len(INSTRUCTION_TEMPLATES)))]
    return template.format(colour=obj.colour, category=obj.category)


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _at(obj: ObjectInfo) -> str:
    return f"at ({int(round(obj.u))}, {int(round(obj.v))})"


#: The scene list's reading order: rows of ``height / SCENE_ROWS``, then left to right.
SCENE_ROWS = 6


def reading_order(objects: Sequence[ObjectInfo], height: int) -> list[ObjectInfo]:
    """``objects`` in reading order (row bands of ``height / SCENE_ROWS``, then column)."""
    band = height / SCENE_ROWS
    return sorted(objects, key=lambda o: (int(o.v // band), o.u, o.v, o.name))


#: Answer formats (:func:`scene_text`): ``restate`` lists every object in reading order and
#: places the named one again after the list; ``scan`` lists in reading order up to the named
#: object, marks it and stops, so the grasp line follows the position written last.
ANSWER_FORMATS = ("restate", "scan")
PICK_MARK = ": the one to pick"


def scene_text(objects: Sequence[ObjectInfo], height: int, target: ObjectInfo | None = None,
               answer_format: str = "restate") -> str:
    """"I see a red can at (181, 181), ... and an orange bowl at (257, 117)." (reading order).

    ``scan`` (needs ``target``, one of ``objects``): the list stops at the target and marks
    it: "I see a red can at (181, 181), an orange bowl at (257, 117): the one to pick."
    """
    if not objects:
        raise GraspParseError("a scene description needs at least one object", "")
    if answer_format not in ANSWER_FORMATS:
        raise GraspParseError(f"unknown answer format {answer_format!r} "
                              f"(one of {', '.join(ANSWER_FORMATS)})", "")
    ordered = reading_order(objects, height)
    items = [f"{_article(o.colour)} {o.label()} {_at(o)}" for o in ordered]
    if answer_format == "scan":
        names = [o.name for o in ordered]
        if target is None or target.name not in names:
            raise GraspParseError("a scan answer needs its target among the objects", "")
        return f"I see {', '.join(items[:names.index(target.name) + 1])}{PICK_MARK}."
    listed = items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
    return f"I see {listed}."


SCENE_ITEM = re.compile(r"\ban? (\w+) (\w+) at \((-?\d{1,5}), (-?\d{1,5})\)")


def parse_scene(reasoning: str) -> list[ObjectInfo]:
    """The objects listed in a reasoning's "I see ..." sentence (empty when there is none).

    Names are ``colour_category``; positions are the whole pixels written there.
    """
    if not isinstance(reasoning, str):
        return []
    start = reasoning.find("I see ")
    if start < 0:
        return []
    end = reasoning.find(".", start)
    sentence = reasoning[start:end if end >= 0 else len(reasoning)]
    return [ObjectInfo(f"{colour}_{category}", category, colour, float(u), float(v))
            for colour, category, u, v in SCENE_ITEM.findall(sentence)]


#: The ``restate`` answer's second mention of the named object: "The red mug at (83, 154)".
RESTATEMENT = re.compile(r"The (\w+) (\w+) at \((-?\d{1,5}), (-?\d{1,5})\)")


def consistent_prefix(text: str) -> str | None:
    """Self-consistent restatement: where a ``restate`` answer places the named object again
    at another position than its own "I see ..." list gives that label, the answer up to the
    restatement with the listed position quoted instead (for the model to decode on from).
    When no listed object has the restated label, the only listed object of its colour is
    quoted (the tiny VLM reads colours far more reliably than categories: a misread
    category leaves the label unlisted, and the model then makes a position up).

    None when the answer already quotes its list, has no restatement (numbers-only, ``scan``),
    or lists no object, or several, with that label (or, failing that, with that colour).
    Only the model's own text is used.
    """
    if not isinstance(text, str):
        return None
    m = RESTATEMENT.search(text)
    if m is None:
        return None
    colour, category, u, v = m.groups()
    items = parse_scene(text[:m.start()])
    listed = ([o for o in items if o.name == f"{colour}_{category}"]
              or [o for o in items if o.colour == colour])
    if len(listed) != 1 or (int(listed[0].u), int(listed[0].v)) == (int(u), int(v)):
        return None
    return (f"{text[:m.start()]}The {colour} {category} at "
            f"({int(listed[0].u)}, {int(listed[0].v)})")


def _where(obj: ObjectInfo, width: int, height: int) -> str:
    col = ("left" if obj.u < width / 3 else "right" if obj.u > 2 * width / 3 else "middle")
    row = ("back" if obj.v < height / 3 else "front" if obj.v > 2 * height / 3 else "centre")
    return f"at the {row} {col} of the table"


def reasoning_text(obj: ObjectInfo, width: int, height: int,
                   objects: Sequence[ObjectInfo] | None = None,
                   answer_format: str = "restate") -> str:
    """Template reasoning: what is on the table and where (``objects``, default ``obj``
    alone, :func:`scene_text`), which of them is the named object and where it is (placed
    again after the list in the ``restate`` format, marked in the list by ``scan``), its
    shape, how such objects are grasped."""
    shape, strategy = CATEGORY_TEXT.get(obj.category, ("an object", "grasp it across its body"))
    scene = scene_text(list(objects) if objects else [obj], height, obj, answer_format)
    named = "It is" if answer_format == "scan" else f"The {obj.label()} {_at(obj)} is"
    return (f"{scene} {named} {shape}, {_where(obj, width, height)}. "
            f"{strategy[0].upper()}{strategy[1:]}.")


def format_grasp(grasp: Grasp) -> str:
    """The fixed numeric line for a grasp (whole pixels and degrees)."""
    deg = int(round(math.degrees(grasp.theta)))
    if deg <= -90:
        deg += 180
    return (f"grasp: [{int(round(grasp.x))}, {int(round(grasp.y))}, {deg}, "
            f"{max(1, int(round(grasp.width)))}]")


def answer(obj: ObjectInfo, grasp: Grasp, width: int, height: int, *, reasoning: bool = True,
           objects: Sequence[ObjectInfo] | None = None, answer_format: str = "restate") -> str:
    """The training answer: reasoning (about ``obj`` among ``objects``, see
    :func:`reasoning_text`) then the grasp line (or the grasp line alone)."""
    line = format_grasp(grasp)
    return (f"{reasoning_text(obj, width, height, objects, answer_format)}\n{line}"
            if reasoning else line)


@dataclass(frozen=True)
class ParsedAnswer:
    grasp: Grasp
    reasoning: str


def parse_answer(text: str, width: int, height: int) -> ParsedAnswer:
    """The grasp in a model's answer, strictly: exactly one well-formed final grasp line.

    Raises :class:`GraspParseError` (holding the raw text) when the line is missing, appears
    more than once, is malformed, or the grasp lies outside a ``width`` × ``height`` image.
    """
    if not isinstance(text, str):
        raise GraspParseError(f"answer is not text: {type(text).__name__}", repr(text))
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        raise GraspParseError("empty answer", text)
    if sum(ln.startswith("grasp:") for ln in lines) != 1:
        raise GraspParseError("answer must hold exactly one 'grasp:' line", text)
    m = GRASP_LINE.match(lines[-1])
    if m is None:
        raise GraspParseError("the last line is not 'grasp: [x, y, theta_deg, width]' "
                              "with whole numbers", text)
    x, y, deg, w = (int(g) for g in m.groups())
    if not (0 <= x < width and 0 <= y < height):
        raise GraspParseError(f"grasp centre ({x}, {y}) lies outside the {width}x{height} "
                              "image", text)
    if not -90 < deg <= 90:
        raise GraspParseError(f"grasp angle {deg}° is outside (-90, 90]", text)
    if not 0 < w <= math.hypot(width, height):
        raise GraspParseError(f"grasp width {w} px is not in (0, image diagonal]", text)
    return ParsedAnswer(Grasp(float(x), float(y), math.radians(deg), float(w)),
                        " ".join(lines[:-1]))
