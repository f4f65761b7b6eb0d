"""The ``vlm`` and ``tiny-vlm`` backends: a LLaVA-family image-text-to-text model (RT-Grasp).

The model answers an instruction about the image with reasoning text and one final
``grasp: [x, y, theta_deg, w]`` line (:mod:`embodied_transfer.grasp.reasoning`), parsed
strictly. ``vlm`` is a real LLaVA (e.g. ``llava-hf/llava-1.5-7b-hf``, fp16 on a GPU) with an
optional LoRA adapter from :func:`embodied_transfer.grasp.vlm_train.train_vlm`; ``tiny-vlm``
is the small LLaVA-architecture model of :func:`~embodied_transfer.grasp.vlm_train.build_tiny_vlm`
trained from scratch on the CPU. Both load through exactly the same code
(``AutoProcessor`` + ``AutoModelForImageTextToText``).

Coordinates: the answer is in the pixel frame of the image given to :meth:`VlmBackend.predict`
(the original camera image), and it is parsed in that image's size. The model sees a copy
padded to a square with the processor's mean colour (centred, LLaVA-1.5's ``expand2square``)
and resized by the processor, so nothing is cropped away; mapping that back to pixels is
learnt, hence a model answers correctly only for the image size it was trained on (recorded
in ``grasp_vlm.json`` by the trainer; a different size warns).

Prompt: the processor's chat template when it has one (llava-hf models and the tiny model),
else :data:`FIXED_PROMPT`; training builds its prompts with the same :func:`build_prompt`.

Offline by default: hub ids resolve from the local Hugging Face cache only
(``local_files_only=True`` and ``HF_HUB_OFFLINE`` while loading) unless
``allow_download=True``; a missing model raises :class:`GraspError` saying what to fetch.
"""
from __future__ import annotations

import contextlib
import json
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embodied_transfer.core.hub import hub_offline
from embodied_transfer.grasp.backends.base import (DECODINGS, DEFAULT_DECODING, GraspBackend,
                                                   Prediction, checked_choice)
from embodied_transfer.grasp.errors import GraspError, GraspParseError
from embodied_transfer.grasp.language import normalise_instruction
from embodied_transfer.grasp.mirroring import (FLIP_NAMES, FLIPS, flip_grasp, flip_image,
                                               most_agreed, view_reasoning)
from embodied_transfer.grasp.reasoning import consistent_prefix, parse_answer
from embodied_transfer.grasp.rectangles import Grasp

#: The prompt when the processor has no chat template (LLaVA-1.5's conversation format).
FIXED_PROMPT = "USER: <image>\n{instruction} ASSISTANT:"
#: Training metadata written next to a trained model or adapter.
META_FILE = "grasp_vlm.json"
DEFAULT_MAX_NEW_TOKENS = 160
#: Views (mirrorings, :data:`~embodied_transfer.grasp.mirroring.FLIPS`) a backend answers
#: by default, and how close (px) two views' grasp centres must be to agree.
DEFAULT_VIEWS = {"vlm": 1, "tiny-vlm": 4}
VIEW_AGREEMENT_PX = 20.0


@dataclass(frozen=True)
class Letterbox:
    """An image of another size scaled (aspect kept) and padded (its mean colour) into the
    size a model was trained on; the model's answers map back with :meth:`to_image` (its
    reasoning text keeps the model's own pixels, ``extra["letterbox"]`` says how)."""

    scale: float
    x0: int
    y0: int
    size: tuple[int, int]

    @classmethod
    def of(cls, rgb: np.ndarray, size) -> "Letterbox | None":
        """The letterbox of ``rgb`` into ``size`` (width, height); None when it fits."""
        h, w = rgb.shape[:2]
        tw, th = int(size[0]), int(size[1])
        if (w, h) == (tw, th):
            return None
        scale = min(tw / w, th / h)
        nw, nh = max(int(round(w * scale)), 1), max(int(round(h * scale)), 1)
        return cls(scale, (tw - nw) // 2, (th - nh) // 2, (tw, th))

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        import cv2

        h, w = rgb.shape[:2]
        nw, nh = max(int(round(w * self.scale)), 1), max(int(round(h * self.scale)), 1)
        small = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if self.scale < 1
                           else cv2.INTER_LINEAR)
        out = np.empty((self.size[1], self.size[0], 3), np.uint8)
        out[:] = np.asarray(cv2.mean(rgb)[:3]).round().astype(np.uint8)
        out[self.y0:self.y0 + nh, self.x0:self.x0 + nw] = small
        return out

    def to_image(self, g: Grasp) -> Grasp:
        s = self.scale
        return Grasp((g.x + 0.5 - self.x0) / s - 0.5, (g.y + 0.5 - self.y0) / s - 0.5, g.theta,
                     g.width / s, None if g.height is None else g.height / s)

    def describe(self) -> dict:
        return {"scale": self.scale, "offset": [self.x0, self.y0], "size": list(self.size)}


def _looks_local(ref: str) -> bool:
    """A path rather than a hub id (``owner/name``)."""
    return (ref.startswith((".", "/", "~")) or ref.count("/") > 1 or os.sep != "/" and os.sep in ref
            or Path(ref).expanduser().exists())


def missing_model_message(ref: str, what: str = "model", cause: BaseException | None = None) -> str:
    """Why ``ref`` could not be loaded and how to get it."""
    from huggingface_hub.constants import HF_HUB_CACHE

    if _looks_local(ref):
        path = Path(ref).expanduser()
        state = "has no loadable files" if path.exists() else "does not exist"
        msg = (f"no {what} at {str(path)!r}: the directory {state}. Pass a directory written by "
               "save_pretrained (build_tiny_vlm / train_vlm make one for tiny-vlm), or fetch a "
               f"hub {what} into it: `hf download <owner/name> --local-dir {path}`.")
    else:
        msg = (f"no {what} {ref!r} in the local Hugging Face cache ({HF_HUB_CACHE}) and downloads "
               f"are off. Fetch it on a machine with internet: `hf download {ref}` (into that "
               f"cache; HF_HOME moves it) or `hf download {ref} --local-dir <dir>` and pass "
               "<dir>; or pass allow_download=True.")
    if cause is not None:
        msg += f" ({type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''})"
    return msg


def default_device_dtype(device: str | None = None, dtype=None):
    """CUDA with fp16 when available, else CPU with fp32 (either can be forced)."""
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if dtype is None:
        dtype = torch.float16 if str(device).startswith("cuda") else torch.float32
    elif isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    return device, dtype


def read_meta(path: str | Path | None) -> dict:
    """The trainer's ``grasp_vlm.json`` in a model or adapter directory ({} when none)."""
    if path is None:
        return {}
    f = Path(path).expanduser() / META_FILE
    try:
        return json.loads(f.read_text()) if f.is_file() else {}
    except (OSError, ValueError) as exc:
        raise GraspError(f"unreadable {f}: {exc}") from exc


def load_processor(ref: str | Path, *, allow_download: bool = False):
    """``AutoProcessor`` for ``ref`` (directory or hub id); GraspError when missing."""
    from transformers import AutoProcessor

    ref = str(ref)
    with hub_offline(not allow_download):
        try:
            proc = AutoProcessor.from_pretrained(ref, local_files_only=not allow_download)
        except (OSError, ValueError, KeyError) as exc:
            raise GraspError(missing_model_message(ref, "processor", exc)) from exc
    if not hasattr(proc, "image_processor") or not hasattr(proc, "tokenizer"):
        raise GraspError(f"{ref!r} has no image-text processor (got {type(proc).__name__})")
    return proc


def load_model(ref: str | Path, *, adapter: str | Path | None = None, allow_download: bool = False,
               device: str | None = None, dtype=None, merge: bool = True, trainable: bool = False):
    """``AutoModelForImageTextToText`` (+ an optional LoRA adapter) on ``device``.

    Returns the model in eval mode (``trainable=False``) with the adapter merged (``merge``).
    """
    from transformers import AutoModelForImageTextToText

    ref = str(ref)
    device, dtype = default_device_dtype(device, dtype)
    with hub_offline(not allow_download):
        try:
            # on a GPU the weights load straight onto it (no full CPU copy of a 7B model)
            placement = {"device_map": device} if str(device).startswith("cuda") else {}
            model = AutoModelForImageTextToText.from_pretrained(
                ref, dtype=dtype, local_files_only=not allow_download, **placement)
        except (OSError, ValueError, KeyError) as exc:
            raise GraspError(missing_model_message(ref, "model", exc)) from exc
        if adapter is not None:
            from peft import PeftModel

            adapter = str(adapter)
            try:
                with warnings.catch_warnings():   # peft probes a deprecated transformers attribute
                    warnings.simplefilter("ignore", FutureWarning)
                    model = PeftModel.from_pretrained(model, adapter, is_trainable=trainable)
            except (OSError, ValueError, KeyError) as exc:
                raise GraspError(missing_model_message(adapter, "LoRA adapter", exc)) from exc
            if merge and not trainable:
                model = model.merge_and_unload()
    model.to(device)
    return model.train(trainable)


def build_prompt(processor, instruction: str) -> str:
    """The user turn with one image and the generation prompt (chat template or fixed)."""
    if getattr(processor, "chat_template", None):
        messages = [{"role": "user", "content": [{"type": "image"},
                                                 {"type": "text", "text": instruction}]}]
        return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return FIXED_PROMPT.format(instruction=instruction)


def check_rgb(rgb) -> np.ndarray:
    a = np.asarray(rgb)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8 or a.shape[0] < 1 or a.shape[1] < 1:
        raise GraspError(f"rgb must be an (H, W, 3) uint8 array, got {a.dtype} {a.shape}")
    return a


def prepare_image(rgb, processor=None) -> np.ndarray:
    """``rgb`` padded to a centred square with the processor's mean colour (no cropping)."""
    a = check_rgb(rgb)
    h, w = a.shape[:2]
    if h == w:
        return np.ascontiguousarray(a)      # e.g. a mirrored view (negative strides)
    mean = getattr(getattr(processor, "image_processor", None), "image_mean", None) or (0.5,) * 3
    side = max(h, w)
    out = np.empty((side, side, 3), np.uint8)
    out[:] = np.clip(np.round(np.asarray(mean[:3]) * 255), 0, 255).astype(np.uint8)
    top, left = (side - h) // 2, (side - w) // 2
    out[top:top + h, left:left + w] = a
    return out


def encode_prompt(processor, rgb, instruction: str):
    """Processor tensors (``input_ids``, ``attention_mask``, ``pixel_values``) of the prompt
    for one image, or a batch of them for a list of images (one row each, same length)."""
    images = rgb if isinstance(rgb, (list, tuple)) else [rgb]
    return processor(images=[prepare_image(a, processor) for a in images],
                     text=[build_prompt(processor, instruction)] * len(images),
                     return_tensors="pt")


def image_token_count(processor, rgb=None) -> int:
    """How many image placeholder tokens the processor puts in a prompt."""
    if rgb is None:
        ip = processor.image_processor
        crop = getattr(ip, "crop_size", None) or ip.size
        rgb = np.zeros((int(crop["height"]), int(crop["width"]), 3), np.uint8)
    ids = encode_prompt(processor, rgb, "x")["input_ids"][0]
    return int((ids == processor.image_token_id).sum())


def choose_view(extra: dict, best: int, votes: int) -> tuple[str, str, float]:
    """(text, reasoning, score) of view ``best`` of a multi-view prediction's ``extra``
    (``view_answers`` / ``view_reasonings``, see :meth:`VlmBackend.predict`), which it marks
    as the chosen one (``view``, ``agreeing_views``); score: the fraction of views agreeing,
    NaN for one view."""
    extra.update(view=FLIP_NAMES[best], agreeing_views=votes)
    n = len(extra["view_answers"])
    return (extra["view_answers"][best], view_reasoning(extra["view_reasonings"][best], best),
            votes / n if n > 1 else float("nan"))


class VlmBackend(GraspBackend):
    """LLaVA-family model → reasoning + grasp text → :class:`Prediction` (strictly parsed).

    ``model``: a local directory or a hub id (default: the adapter's base model); ``adapter``:
    a LoRA adapter directory from ``train_vlm(..., lora=True)``. ``max_new_tokens`` bounds the
    greedy answer; ``decoding`` is one of :data:`DECODINGS`; ``views`` how many mirrorings
    of each image are answered (1-4, the first of
    :data:`~embodied_transfer.grasp.mirroring.FLIPS`; default :data:`DEFAULT_VIEWS`), the
    grasp most of them agree on kept (with 2, the original wins unless they agree). Loading
    happens here; a missing model raises :class:`GraspError`.
    """

    name = "vlm"
    uses_instruction = True
    #: Restate instructions in the training phrasing (:mod:`~embodied_transfer.grasp.language`);
    #: a pretrained VLM reads everyday language itself.
    restate_instructions = False

    def __init__(self, model: str | Path | None = None, *, adapter: str | Path | None = None,
                 name: str | None = None, allow_download: bool = False,
                 max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
                 decoding: str = DEFAULT_DECODING, views: int | None = None,
                 device: str | None = None, dtype=None) -> None:
        if name is not None:
            self.name = name
        self.meta = read_meta(adapter) or read_meta(model if model and _looks_local(str(model))
                                                    else None)
        if model is None:
            model = self.meta.get("base_model")
            if model is None:
                if adapter is None:
                    raise GraspError("VlmBackend needs a model (directory or hub id) or an adapter")
                model = self._adapter_base(adapter)
        if max_new_tokens < 1:
            raise GraspError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        self.decoding = checked_choice("decoding", decoding, DECODINGS)
        views = DEFAULT_VIEWS.get(self.name, 1) if views is None else views
        if views not in range(1, len(FLIPS) + 1):
            raise GraspError(f"views must be 1 to {len(FLIPS)} (mirrorings answered), got "
                             f"{views}")
        self.views = views
        self.model_ref, self.adapter = str(model), adapter
        self.max_new_tokens = int(max_new_tokens)
        self.device, self.dtype = default_device_dtype(device, dtype)
        proc_ref = adapter if adapter is not None and self._has_processor(adapter) else model
        self.processor = load_processor(proc_ref, allow_download=allow_download)
        self.model = load_model(model, adapter=adapter, allow_download=allow_download,
                                device=self.device, dtype=self.dtype)
        tok = self.processor.tokenizer
        self._pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    @staticmethod
    def _has_processor(path) -> bool:
        p = Path(path).expanduser()
        return (p / "processor_config.json").is_file() or (p / "preprocessor_config.json").is_file()

    @staticmethod
    def _adapter_base(adapter) -> str:
        cfg = Path(adapter).expanduser() / "adapter_config.json"
        try:
            return json.loads(cfg.read_text())["base_model_name_or_path"]
        except (OSError, ValueError, KeyError) as exc:
            raise GraspError(missing_model_message(str(adapter), "LoRA adapter", exc)) from exc

    def generate(self, rgb: np.ndarray, instruction: str) -> str:
        """The model's answer (special tokens removed, stripped), decoded as ``decoding``."""
        return self.answers([rgb], instruction)[0][0]

    def answers(self, images: list[np.ndarray], instruction: str) -> list[tuple[str, bool]]:
        """(answer, whether its restatement was held to its list: ``consistent`` only) for
        each of ``images``, all answering ``instruction``: one batched greedy decode, then the
        answers whose restatement is held decoded on from their prefixes, batched by prefix
        length (rows of one batch need no padding)."""
        texts = self._decode(images, instruction)
        out = [(text, False) for text in texts]
        if self.decoding != "consistent":
            return out
        by_length: dict[int, list[tuple[int, str, list[int]]]] = {}
        for i, text in enumerate(texts):
            prefix = consistent_prefix(text)
            if prefix is not None:
                ids = self._prefix_ids(prefix)
                by_length.setdefault(len(ids), []).append((i, prefix, ids))
        for rows in by_length.values():
            more = self._decode([images[i] for i, _, _ in rows], instruction,
                                [ids for _, _, ids in rows])
            for (i, prefix, _), tail in zip(rows, more):
                out[i] = (f"{prefix}{tail}".strip(), True)
        return out

    def _prefix_ids(self, prefix: str) -> list[int]:
        """Token ids of answer text, tokenised on its own as in training."""
        return self.processor.tokenizer(prefix, add_special_tokens=False)["input_ids"]

    def _decode(self, images: list[np.ndarray], instruction: str,
                prefixes: list[list[int]] | None = None) -> list[str]:
        """Greedy continuations of the prompt for each of ``images`` in one batch, after that
        row's ``prefixes`` (answer token ids, :meth:`_prefix_ids`) when given. Every row has
        the same prompt and prefixes of one length, hence the same length: no padding."""
        import torch

        inputs = encode_prompt(self.processor, list(images), instruction)
        if prefixes:
            if len(prefixes) != len(images) or len({len(p) for p in prefixes}) != 1:
                raise GraspError(f"_decode needs one prefix per image, all of one token "
                                 f"length; got {[len(p) for p in prefixes]} for "
                                 f"{len(images)} images")
            inputs["input_ids"] = torch.cat(
                [inputs["input_ids"], torch.tensor(prefixes, dtype=inputs["input_ids"].dtype)],
                dim=1)
            inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False,
                                      num_beams=1, pad_token_id=self._pad_id)
        texts = self.processor.tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1]:],
                                                      skip_special_tokens=True)
        return texts if prefixes else [t.strip() for t in texts]

    def predict(self, rgb: np.ndarray, depth: np.ndarray | None, instruction: str) -> Prediction:
        """Answer each of the first ``views`` mirrorings of ``rgb``, mirror their grasps back
        and keep the one most views agree on (:func:`~.mirroring.most_agreed`); ``score`` is
        the fraction of views that agree (NaN for one view). ``text`` is that view's answer,
        its positions in that view's pixels (``extra["view"]`` names it, and ``reasoning``
        says so when it is a mirrored one); ``extra["view_answers"]`` / ``["view_reasonings"]``
        / ``["view_grasps"]`` hold every view's answer, its reasoning (None: unparseable) and
        its grasp, mirrored back."""
        rgb = check_rgb(rgb)
        if not isinstance(instruction, str) or not instruction.strip():
            raise GraspError("the vlm backend needs a non-empty instruction")
        notes: tuple[str, ...] = ()
        if self.restate_instructions:       # everyday words → the phrasing it learnt
            restated = normalise_instruction(instruction)
            instruction, notes = restated.text, restated.notes
        trained = self.meta.get("image_size")
        box = Letterbox.of(rgb, trained) if trained else None
        if box is not None:                 # another camera: the model sees its own size
            rgb = box.apply(rgb)
        h, w = rgb.shape[:2]
        t0 = time.perf_counter()
        answers, grasps, held = [], [], 0
        views = FLIPS[:self.views]
        decoded = self.answers([flip_image(rgb, *flip) for flip in views], instruction)
        for (horizontal, vertical), (text, fixed) in zip(views, decoded):
            held += fixed
            try:
                parsed = parse_answer(text, w, h)
            except GraspParseError as exc:
                answers.append((text, None, str(exc)))
                grasps.append(None)
                continue
            answers.append((text, parsed.reasoning, ""))
            grasps.append(flip_grasp(parsed.grasp, w, h, horizontal, vertical))
        best, votes = most_agreed(grasps, VIEW_AGREEMENT_PX)
        if box is not None:                 # back to the input image's pixels
            grasps = [None if g is None else box.to_image(g) for g in grasps]
        extra = {"ms": (time.perf_counter() - t0) * 1e3, "decoding": self.decoding,
                 "letterbox": None if box is None else box.describe(),
                 "instruction": instruction, "instruction_notes": list(notes),
                 "restatements_held": held, "views": self.views,
                 "view": FLIP_NAMES[best or 0], "agreeing_views": votes,
                 "view_answers": [a[0] for a in answers],
                 "view_reasonings": [a[1] for a in answers], "view_grasps": grasps}
        if best is None:
            text, _, error = answers[0]
            return Prediction(grasp=None, text=text, error=error, extra=extra)
        text, reasoning, score = choose_view(extra, best, votes)
        return Prediction(grasp=grasps[best], text=text, reasoning=reasoning, score=score,
                          extra=extra)

    def close(self) -> None:
        self.model = None
        self.processor = None
        with contextlib.suppress(Exception):
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()


class TinyVlmBackend(VlmBackend):
    """The CPU ``tiny-vlm``: the same loader and prompt, a small model directory."""

    name = "tiny-vlm"
    restate_instructions = True

