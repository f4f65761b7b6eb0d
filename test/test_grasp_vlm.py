"""The vlm / tiny-vlm backend and reasoning tuning, on a tiny LLaVA built from config.

The tiny model goes through exactly the loading code a hub LLaVA does (AutoProcessor +
AutoModelForImageTextToText from a save_pretrained directory); nothing is downloaded.
"""
from __future__ import annotations

import json
import math
import os
import socket

import cv2
import numpy as np
import pytest
import torch

from embodied_transfer.grasp.backends.base import GraspBackend, Prediction
from embodied_transfer.grasp.backends.vlm import (FIXED_PROMPT, TinyVlmBackend, VlmBackend,
                                                  build_prompt, encode_prompt, image_token_count,
                                                  load_processor, prepare_image)
from embodied_transfer.grasp.errors import GraspError
from embodied_transfer.grasp.reasoning import ObjectInfo, answer, instruction, parse_answer
from embodied_transfer.grasp.rectangles import Grasp
from embodied_transfer.grasp.vlm_train import (IGNORE_INDEX, build_tiny_vlm, collate,
                                               encode_example, encode_examples, mask_labels,
                                               train_vlm)

SIZE, PATCH = 32, 8
COLOURS = {"red": (210, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 210)}


# ------------------------------------------------------------- a small synthetic generator

def make_example(rng: np.random.Generator, size: int = SIZE, reasoning: bool = True):
    """Coloured boxes / cans on a table: (rgb, instruction, answer), the objects, GT grasps."""
    img = np.empty((size, size, 3), np.uint8)
    img[:] = (150, 110, 75)
    objects, truths = [], []
    n = int(rng.integers(1, 3))
    for k, colour in enumerate(rng.permutation(list(COLOURS))[:n]):
        cx, cy = (size * (0.3 + 0.4 * k) + rng.uniform(-2, 2), size * rng.uniform(0.3, 0.7))
        if rng.random() < 0.5:
            a, b, phi = size * 0.3, size * 0.18, rng.uniform(0, math.pi)
            box = cv2.boxPoints(((cx, cy), (a, b), math.degrees(phi)))
            cv2.fillConvexPoly(img, np.round(box).astype(np.int32), COLOURS[colour])
            category, grasps = "box", [Grasp(cx, cy, phi + math.pi / 2, b + 3),
                                       Grasp(cx, cy, phi, a + 3)]
        else:
            r = size * 0.12
            cv2.circle(img, (round(cx), round(cy)), round(r), COLOURS[colour], -1)
            category = "can"
            grasps = [Grasp(cx, cy, j * math.pi / 6, 2 * r + 3) for j in range(6)]
        objects.append(ObjectInfo(f"{colour}_{category}", category, str(colour), cx, cy))
        truths.append(grasps)
    t = int(rng.integers(n))
    text = answer(objects[t], truths[t][0], size, size, reasoning=reasoning, objects=objects)
    return (img, instruction(objects[t], rng), text), objects, truths[t]


def examples(n: int, seed: int = 0) -> list[tuple[np.ndarray, str, str]]:
    rng = np.random.default_rng(seed)
    return [make_example(rng)[0] for _ in range(n)]


TINY = dict(image_size=SIZE, patch_size=PATCH, vision_hidden=16, vision_layers=1, vision_heads=2,
            text_hidden=32, text_layers=1, text_heads=2, vocab_size=300, max_positions=256)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data():
    return examples(8)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory, data):
    texts = [t for _, i, a in examples(40, seed=1) for t in (i, a)]
    return build_tiny_vlm(tmp_path_factory.mktemp("tiny") / "model", texts, **TINY)


@pytest.fixture(scope="module")
def backend(tiny_dir):
    return VlmBackend(tiny_dir, name="tiny-vlm", max_new_tokens=8, device="cpu")


def test_generator_answers_parse(data):
    rng = np.random.default_rng(3)
    for _ in range(10):
        (rgb, instr, text), objects, truths = make_example(rng)
        assert rgb.shape == (SIZE, SIZE, 3) and rgb.dtype == np.uint8
        assert any(o.label() in instr for o in objects)
        assert parse_answer(text, SIZE, SIZE).grasp.inside(SIZE, SIZE)
        assert text.splitlines()[0].startswith("I see ")


# ------------------------------------------------------------- building and loading

def test_tiny_vlm_loads_through_the_hub_code_path(tiny_dir, backend):
    from transformers import LlavaForConditionalGeneration, LlavaProcessor

    names = {p.name for p in tiny_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"} <= names
    assert isinstance(backend, GraspBackend) and backend.name == "tiny-vlm"
    assert isinstance(backend.model, LlavaForConditionalGeneration)
    assert isinstance(backend.processor, LlavaProcessor)
    assert backend.model.dtype == torch.float32 and backend.device == "cpu"
    assert TinyVlmBackend.name == "tiny-vlm" and VlmBackend.name == "vlm"


def test_image_token_count_matches_the_vision_tower(backend, data):
    proc, model = backend.processor, backend.model
    n = (SIZE // PATCH) ** 2
    assert image_token_count(proc) == n == model.config.image_seq_length
    enc = encode_prompt(proc, data[0][0], data[0][1])
    assert int((enc["input_ids"] == model.config.image_token_id).sum()) == n
    with torch.no_grad():           # LLaVA checks placeholders against the image features
        feats = model.get_image_features(pixel_values=enc["pixel_values"])
        feats = getattr(feats, "pooler_output", feats)
        feats = feats[0] if isinstance(feats, (list, tuple)) else feats
        assert feats.reshape(-1, feats.shape[-1]).shape[0] == n
        out = model(**enc)
    assert out.logits.shape[:2] == enc["input_ids"].shape


def test_chat_template_and_fixed_prompt_agree(tiny_dir, tmp_path, backend):
    with_template = build_prompt(backend.processor, "pick up the red box")
    assert with_template == FIXED_PROMPT.format(instruction="pick up the red box")
    bare = build_tiny_vlm(tmp_path / "bare", ["pick up the red box"], chat_template=False, **TINY)
    proc = load_processor(bare)
    assert not getattr(proc, "chat_template", None)
    assert build_prompt(proc, "pick up the red box") == with_template
    assert image_token_count(proc) == (SIZE // PATCH) ** 2


def test_tiny_vlm_records_its_image_normalisation(tmp_path):
    d = build_tiny_vlm(tmp_path / "norm", ["pick up the red box"],
                       image_mean=(0.7, 0.6, 0.5), image_std=(0.25, 0.25, 0.25), **TINY)
    proc = load_processor(d)
    assert list(proc.image_processor.image_mean) == [0.7, 0.6, 0.5]
    assert list(proc.image_processor.image_std) == [0.25] * 3
    meta = json.loads((d / "grasp_vlm.json").read_text())["tiny_vlm"]
    assert meta["image_mean"] == [0.7, 0.6, 0.5] and meta["image_std"] == [0.25] * 3


def test_number_tokens_make_every_coordinate_one_token_and_decode_back(tmp_path):
    from embodied_transfer.grasp.vlm_train import build_tokenizer, grasp_vocab_texts

    text = answer(ObjectInfo("w", "sphere", "white", 289, 128), Grasp(289, 128, -0.33, 25),
                  320, 240)
    digits = build_tokenizer(grasp_vocab_texts())
    numbers = build_tokenizer(grasp_vocab_texts(), number_tokens=True)
    assert all(len(numbers(str(n), add_special_tokens=False).input_ids) == 1
               for n in range(1000))
    assert len(digits("289", add_special_tokens=False).input_ids) == 3
    ids = numbers(text).input_ids
    assert numbers.decode(ids, skip_special_tokens=True) == text
    assert len(ids) < len(digits(text).input_ids)
    d = build_tiny_vlm(tmp_path / "n", ["pick up the red box"], number_tokens=True, **TINY)
    assert json.loads((d / "grasp_vlm.json").read_text())["tiny_vlm"]["number_tokens"] is True
    tok = load_processor(d).tokenizer
    assert tok.convert_ids_to_tokens(tok("(172, 47)").input_ids)[2:6] == ["172", ",", "Ġ", "47"]


def test_tiny_vlm_build_is_the_same_in_every_process(tmp_path):
    """torch's global seed differs per process: nothing in the build may draw from it."""
    import subprocess
    import sys

    code = ("import sys; from embodied_transfer.grasp.vlm_train import build_tiny_vlm; "
            f"build_tiny_vlm(sys.argv[1], ['pick up the red box'], **{TINY!r})")
    for name in ("a", "b"):
        subprocess.run([sys.executable, "-c", code, str(tmp_path / name)], check=True,
                       capture_output=True, timeout=120)
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == \
        (tmp_path / "b" / "model.safetensors").read_bytes()


def test_encode_examples_matches_encode_example_and_shares_images(backend, data):
    proc = backend.processor
    triples = [data[0], (data[0][0].copy(), "grab the red box", data[1][2]), data[2],
               (data[2][0][:, ::-1], data[2][1], data[2][2])]
    cached = encode_examples(proc, triples)
    for c, t in zip(cached, triples):
        ref = encode_example(proc, *t)
        assert c["input_ids"] == ref["input_ids"] and c["labels"] == ref["labels"]
        assert c["pixel_values"].dtype == torch.float16
        torch.testing.assert_close(c["pixel_values"].float(), ref["pixel_values"],
                                   atol=2e-3, rtol=1e-3)
    assert cached[0]["pixel_values"] is cached[1]["pixel_values"]      # same image, stored once
    assert cached[2]["pixel_values"] is not cached[3]["pixel_values"]  # a mirror is another image
    assert collate(cached, proc.tokenizer.pad_token_id)["pixel_values"].dtype == torch.float32


def test_prepare_image_pads_to_a_centred_square(backend):
    rgb = np.full((20, 32, 3), 200, np.uint8)
    sq = prepare_image(rgb, backend.processor)
    assert sq.shape == (32, 32, 3)
    assert (sq[6:26] == 200).all() and (sq[:6] != 200).all() and (sq[26:] != 200).all()
    with pytest.raises(GraspError):
        prepare_image(np.zeros((8, 8), np.float32))


# ------------------------------------------------------------- labels

def test_mask_labels_keeps_only_the_answer():
    assert mask_labels([5, 6, 7, 8, 9], 3) == [IGNORE_INDEX] * 3 + [8, 9]
    assert mask_labels([5, 6], 0) == [5, 6]
    with pytest.raises(GraspError):
        mask_labels([1, 2], 3)


def test_encoded_labels_mask_prompt_image_and_padding(backend, data):
    proc = backend.processor
    tok = proc.tokenizer
    feats = [encode_example(proc, *ex) for ex in data[:3]]
    for f, (rgb, instr, text) in zip(feats, data):
        prompt_len = encode_prompt(proc, rgb, instr)["input_ids"].shape[1]
        ids, labels = f["input_ids"], f["labels"]
        assert all(l == IGNORE_INDEX for l in labels[:prompt_len])
        assert labels[prompt_len:] == ids[prompt_len:]
        assert labels[-1] == tok.eos_token_id
        assert tok.decode(labels[prompt_len:-1]) == text          # the exact answer text
        assert proc.image_token_id not in labels
    batch = collate(feats, tok.pad_token_id)
    lengths = [len(f["input_ids"]) for f in feats]
    assert batch["input_ids"].shape == (3, max(lengths))
    assert batch["pixel_values"].shape == (3, 3, SIZE, SIZE)
    for i, k in enumerate(lengths):
        assert batch["attention_mask"][i, :k].all() and not batch["attention_mask"][i, k:].any()
        assert (batch["labels"][i, k:] == IGNORE_INDEX).all()
        assert (batch["input_ids"][i, k:] == tok.pad_token_id).all()
    answer_tokens = (batch["labels"] != IGNORE_INDEX).sum().item()
    assert answer_tokens == sum(len(tok(t, add_special_tokens=False)["input_ids"]) + 1
                                for _, _, t in data[:3])


# ------------------------------------------------------------- training

def _losses(paths) -> list[float]:
    return json.loads(paths["curves_json"].read_text())["loss"]


def test_full_training_lowers_the_loss_and_saves_a_loadable_model(tiny_dir, tmp_path, data):
    batch = data[:4]
    paths = train_vlm(tiny_dir, batch, tmp_path / "full", lora=False, epochs=8, batch_size=4,
                      lr=1e-2, seed=0, progress=False)
    loss = _losses(paths)
    assert len(loss) == 8 and loss[-1] < 0.8 * loss[0]
    assert paths["curves"].is_file() and paths["curves"].suffix == ".png"
    meta = json.loads(paths["meta"].read_text())
    assert meta["lora"] is False and meta["image_size"] == [SIZE, SIZE]
    assert (tmp_path / "full" / "model.safetensors").is_file()
    again = train_vlm(tiny_dir, batch, tmp_path / "again", lora=False, epochs=8, batch_size=4,
                      lr=1e-2, seed=0, progress=False)
    assert _losses(again) == loss                                     # deterministic per seed
    b = VlmBackend(paths["model"], name="tiny-vlm", max_new_tokens=4)
    assert isinstance(b.predict(batch[0][0], None, batch[0][1]), Prediction)


def test_lora_training_saves_an_adapter_that_loads(tiny_dir, tmp_path, data):
    out = tmp_path / "lora"
    paths = train_vlm(tiny_dir, data[:4], out, lora=True, epochs=6, batch_size=4, lr=1e-2,
                      seed=0, progress=False, lora_r=4, lora_alpha=8)
    loss = _losses(paths)
    assert loss[-1] < loss[0]
    names = {p.name for p in out.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors"} <= names
    assert "model.safetensors" not in names                          # the adapter only
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert "language_model" in str(cfg["target_modules"])
    assert json.loads(paths["meta"].read_text())["base_model"] == str(tiny_dir)
    for b in (VlmBackend(adapter=out, max_new_tokens=4),             # base from the metadata
              VlmBackend(tiny_dir, adapter=out, max_new_tokens=4)):
        assert b.model_ref == str(tiny_dir)
        assert isinstance(b.predict(data[0][0], None, data[0][1]), Prediction)


# ------------------------------------------------------------- prediction and parsing

def test_unparseable_answer_gives_no_grasp_the_raw_text_and_the_error(backend, data, monkeypatch):
    rgb, instr, _ = data[0]
    raw = "The red box is a box. I would grasp it gently."
    monkeypatch.setattr(backend, "_decode", lambda images, *a: [raw] * len(images))
    p = backend.predict(rgb, None, instr)
    assert p.grasp is None and p.text == raw and "grasp" in p.error
    real = VlmBackend._decode.__get__(backend)([rgb, rgb[::-1]], instr)   # the untrained model
    assert len(real) == 2 and all(isinstance(t, str) for t in real)


def test_views_decoded_in_one_batch_match_one_at_a_time(backend, data):
    rgb, instr, _ = data[0]
    views = [rgb, rgb[::-1], rgb[:, ::-1]]
    decode = VlmBackend._decode.__get__(backend)
    assert decode(views, instr) == [decode([v], instr)[0] for v in views]
    see = backend._prefix_ids("I see")
    assert decode(views, instr, [see] * 3) == [decode([v], instr, [see])[0] for v in views]
    rows = [see, see[::-1], see]                  # other prefixes of the same length
    assert decode(views, instr, rows) == [decode([v], instr, [p])[0] for v, p in zip(views, rows)]
    with pytest.raises(GraspError, match="one prefix per image"):
        decode(views, instr, [see, see + see[:1], see])


def test_answers_are_parsed_in_the_original_image_size(backend, monkeypatch):
    rgb = np.zeros((20, 48, 3), np.uint8)                             # W=48, H=20
    reason = "Reason.\ngrasp: [40, 10, -30, 12]"
    monkeypatch.setattr(backend, "_decode", lambda images, *a: [reason] * len(images))
    p = backend.predict(rgb, None, "pick up the red box")
    assert p.grasp is not None and (p.grasp.x, p.grasp.y, p.grasp.width) == (40, 10, 12)
    assert math.isclose(math.degrees(p.grasp.theta), -30) and p.reasoning == "Reason."
    outside = "grasp: [10, 30, 0, 12]"                                   # y >= H
    monkeypatch.setattr(backend, "_decode", lambda images, *a: [outside] * len(images))
    p = backend.predict(rgb, None, "pick up the red box")
    assert p.grasp is None and "outside" in p.error
    with pytest.raises(GraspError):
        backend.predict(rgb, None, "  ")


def test_consistent_decoding_decodes_on_from_the_quoted_list_position(backend, data,
                                                                      monkeypatch):
    rgb, instr, _ = data[0]
    first = ("I see a red mug at (20, 25) and a blue can at (10, 5). The red mug at "
             "(20, 5) is a mug.\ngrasp: [20, 5, 0, 8]")
    calls = []

    def scripted(images, instruction, prefixes=None):
        calls.append(prefixes)
        return [first if not prefixes else " is a mug.\ngrasp: [20, 24, 0, 8]"] * len(images)

    monkeypatch.setattr(backend, "_decode", scripted)
    monkeypatch.setattr(backend, "views", 1)
    p = backend.predict(rgb, None, instr)
    quoted = "I see a red mug at (20, 25) and a blue can at (10, 5). The red mug at (20, 25)"
    assert calls == [None, [backend._prefix_ids(quoted)]] and p.extra["restatements_held"] == 1
    assert p.text == quoted + " is a mug.\ngrasp: [20, 24, 0, 8]" and p.grasp.y == 24
    monkeypatch.setattr(backend, "decoding", "free")                  # as the model wrote it
    calls.clear()
    p = backend.predict(rgb, None, instr)
    assert calls == [None] and p.text == first and p.extra["restatements_held"] == 0
    monkeypatch.undo()
    # the real model decodes on from a prefix (its tokens appended to the prompt's)
    more = VlmBackend._decode.__get__(backend)([rgb, rgb], instr,
                                               [backend._prefix_ids(quoted)] * 2)
    assert len(more) == 2 and isinstance(more[0], str)
    with pytest.raises(GraspError, match="decoding"):
        VlmBackend(backend.model_ref, decoding="beam")


def test_held_restatements_of_all_views_decode_on_in_batches_of_one_prefix_length(
        backend, data, monkeypatch):
    rgb, instr, _ = data[0]
    short = "I see a red mug at (20, 25). The red mug at (2, 5) is a mug."
    long = "I see a red mug at (20, 25) and a blue can at (10, 5). The red mug at (2, 5) is a mug."
    first = [short, long, "The mug.\ngrasp: [1, 2, 0, 8]", short]    # view 2: nothing held
    calls = []

    def scripted(images, instruction, prefixes=None):
        calls.append(prefixes)
        if prefixes is None:
            return first[:len(images)]
        return [f" tail {len(p)}" for p in prefixes]

    monkeypatch.setattr(backend, "_decode", scripted)
    out = backend.answers([rgb] * 4, instr)
    quoted = {t: t[:t.index(" at (2, 5)")] + " at (20, 25)" for t in (short, long)}
    ids = {t: backend._prefix_ids(q) for t, q in quoted.items()}
    assert len(ids[short]) != len(ids[long])
    assert calls == [None, [ids[short]] * 2, [ids[long]]]       # one batch per length
    assert out == [(f"{quoted[short]} tail {len(ids[short])}", True),
                   (f"{quoted[long]} tail {len(ids[long])}", True),
                   (first[2], False), (f"{quoted[short]} tail {len(ids[short])}", True)]


def test_views_are_mirrored_back_and_the_grasp_most_agree_on_kept(backend, monkeypatch):
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[2, 3] = 255                                    # tells the scripted model its view
    lines = {(2, 3): "[10, 12, 30, 8]", (2, 60): "[53, 12, -30, 8]",      # original, l-r
             (61, 3): "[10, 51, -30, 8]", (61, 60): "[10, 10, 0, 8]"}     # t-b, both (off)

    def scripted(images, instruction, prefixes=None):
        calls.append(len(images))
        out = []
        for view in images:
            r, c = np.unravel_index(np.asarray(view)[..., 0].argmax(), (64, 64))
            out.append(f"View {r} {c}.\ngrasp: {lines[int(r), int(c)]}")
        return out

    calls = []

    monkeypatch.setattr(backend, "_decode", scripted)
    assert backend.views == 4                          # the tiny VLM's default
    p = backend.predict(rgb, None, "pick up the red box")
    assert (p.grasp.x, p.grasp.y) == (10, 12) and math.isclose(math.degrees(p.grasp.theta), 30)
    assert p.extra["agreeing_views"] == 3 and p.extra["view"] == "original"
    assert calls == [4]                                # every view in one batch
    assert p.score == 0.75 and p.reasoning == "View 2 3."
    lines[2, 3] = "[50, 5, 0, 8]"                      # the original view now disagrees
    p = backend.predict(rgb, None, "pick up the red box")
    assert (p.grasp.x, p.grasp.y) == (10, 12) and math.isclose(math.degrees(p.grasp.theta), 30)
    assert p.extra["view"] == "left-right" and p.text == "View 2 60.\ngrasp: [53, 12, -30, 8]"
    assert p.reasoning == "[answer to the image mirrored left-right] View 2 60." and p.score == 0.5
    monkeypatch.setattr(backend, "views", 1)
    p = backend.predict(rgb, None, "pick up the red box")
    assert (p.grasp.x, p.grasp.y) == (50, 5) and p.extra["views"] == 1 and math.isnan(p.score)
    with pytest.raises(GraspError, match="views"):
        VlmBackend(backend.model_ref, views=5)


def test_real_generation_is_parsed_or_reported(backend, data):
    rgb, instr, _ = data[0]
    p = backend.predict(rgb, None, instr)
    assert isinstance(p, Prediction) and p.extra["ms"] > 0
    assert (p.grasp is None) == bool(p.error)


# ------------------------------------------------------------- missing models, offline

def test_missing_model_directory_says_what_to_fetch(tmp_path):
    with pytest.raises(GraspError) as err:
        VlmBackend(tmp_path / "no" / "such" / "model")
    msg = str(err.value)
    assert "does not exist" in msg and "hf download" in msg and str(tmp_path) in msg
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(GraspError, match="hf download"):
        VlmBackend(empty)
    with pytest.raises(GraspError):
        VlmBackend()                                                  # neither model nor adapter


def test_missing_hub_model_never_touches_the_network(monkeypatch, tmp_path):
    import huggingface_hub.constants as hub_constants

    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))              # an empty cache
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    before = hub_constants.HF_HUB_OFFLINE
    with pytest.raises(GraspError) as err:
        VlmBackend("nobody-here/no-such-llava")
    msg = str(err.value)
    assert "hf download nobody-here/no-such-llava" in msg and "allow_download=True" in msg
    assert attempts == []
    assert "HF_HUB_OFFLINE" not in os.environ and hub_constants.HF_HUB_OFFLINE == before


def test_loader_sets_offline_mode_unless_downloads_are_allowed(monkeypatch, tiny_dir):
    import huggingface_hub.constants as hub_constants
    import transformers

    seen = []

    def spy(ref, **kwargs):
        seen.append((os.environ.get("HF_HUB_OFFLINE"), hub_constants.HF_HUB_OFFLINE,
                     kwargs.get("local_files_only")))
        raise OSError("stop here")

    monkeypatch.setattr(transformers.AutoProcessor, "from_pretrained", spy)
    for allow in (False, True):
        with pytest.raises(GraspError):
            VlmBackend(tiny_dir, allow_download=allow)
    assert seen[0] == ("1", True, True)
    assert seen[1][2] is False and seen[1][1] == hub_constants.HF_HUB_OFFLINE
