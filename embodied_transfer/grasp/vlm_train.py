"""Reasoning tuning (RT-Grasp) of a LLaVA-family model, and the tiny LLaVA built from scratch.

The model reads the image and the instruction (the prompt, exactly as
:class:`~embodied_transfer.grasp.backends.vlm.VlmBackend` builds it) and is trained to
produce the answer: reasoning text, then the final ``grasp: [x, y, theta_deg, w]`` line, then
end-of-sequence. The loss is on the answer tokens only,
``p(A | I, S) = Π p(a_i | I, S, A_<i)``: prompt, image placeholder and padding tokens get the
label -100 (:func:`mask_labels`). The prompt and the answer are tokenised separately and
concatenated, so the prompt tokens are exactly those the backend feeds at inference.

* ``train_vlm(..., lora=True)`` — the ``vlm`` path for GPU workstations: a pretrained LLaVA
  (directory or cached hub id) gets LoRA adapters on its language model's attention
  projections (and a trainable copy of the multimodal projector); only the adapter is saved.
* ``train_vlm(..., lora=False)`` — the ``tiny-vlm`` path: every weight of a model from
  :func:`build_tiny_vlm` is trained; the full model and processor are saved.

Answers are in the training images' pixel frame (see the backend's docstring); the image
size is recorded in ``grasp_vlm.json``. Curves go to ``<out>/training_curves.{png,json}``.

From scratch, the tiny model learns the answer format and the templated sentences within
the first epoch, while looking at the image (which object, where) comes thousands of steps
later, and binding the instruction's words to image tokens later still. Three choices make
the most of a CPU budget: the reasoning first lists every object it sees with its pixel
centre (:func:`~embodied_transfer.grasp.reasoning.scene_text`), so that finding the named
object becomes copying from its own text; the images are normalised around the training
images' mean colour (the table, so the padding and the table are near zero and the objects
stand out); and the training set is mirrored four ways. The defaults: 128 px images, 16 px
patches = 64 image tokens (40 camera pixels each), a 2-layer 128-wide vision tower with
sine/cosine starts for its patch positions, and a 3-layer 128-wide decoder, 1.25 M
parameters. Only the processors saving ``pixel_values`` alone (LLaVA-1.5 style) are
supported by :func:`collate`.
"""
from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from embodied_transfer.grasp.backends.vlm import (FIXED_PROMPT, META_FILE, check_rgb,
                                                  default_device_dtype, encode_prompt,
                                                  image_token_count, load_model, load_processor)
from embodied_transfer.grasp.errors import GraspError
from embodied_transfer.grasp.parallel import DataParallel
from embodied_transfer.grasp.reasoning import (CATEGORY_TEXT, INSTRUCTION_TEMPLATES, ObjectInfo,
                                               answer)
from embodied_transfer.grasp.rectangles import Grasp

IGNORE_INDEX = -100
SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", "<unk>", "<image>")
#: LLaVA-1.5's chat template (as shipped with llava-hf models), for the tiny processor.
LLAVA_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] != 'system' %}"
    "{{ message['role'].upper() + ': '}}{% endif %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ content['text'] + ' '}}{% endfor %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}")
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


# ---------------------------------------------------------------------------- tiny model

def grasp_vocab_texts(colours: Iterable[str] = ("red", "green", "blue", "yellow", "purple",
                                                "white", "black", "orange"),
                      categories: Iterable[str] = tuple(CATEGORY_TEXT)) -> list[str]:
    """Every instruction and reasoning sentence the templates can make (for a tokenizer)."""
    texts = []
    for colour in colours:
        for cat in categories:
            texts += [t.format(colour=colour, category=cat) for t in INSTRUCTION_TEMPLATES]
            for u, v in ((5, 5), (50, 50), (95, 95)):
                obj = ObjectInfo(f"{colour}_{cat}", cat, colour, u, v)
                for others in (0, 1, 2):
                    scene = [obj] + [ObjectInfo(f"o{k}", cat, colour, 90 - 40 * k, 20 * k)
                                     for k in range(others)]
                    texts.append(answer(obj, Grasp(u, v, 0.3, 20), 100, 100, objects=scene))
    return texts


#: With ``number_tokens``, every whole number up to this one is a single token.
NUMBER_TOKENS_MAX = 999


def build_tokenizer(vocab_texts: Iterable[str], vocab_size: int = 512, max_length: int = 512,
                    number_tokens: bool = False):
    """A byte-level BPE tokenizer trained on ``vocab_texts``.

    Digits are single tokens, or with ``number_tokens`` every whole number 0-999 is one
    token (as Llama 3 keeps up to three digits together, or the location tokens of grounding
    VLMs): copying a position is then one token per coordinate; ``vocab_size`` grows by 1000.
    Any text encodes (byte fallback) and decodes back exactly; ``<s>`` is prepended to every
    encoding with special tokens; ``<image>`` is the image placeholder.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=not number_tokens),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    numbers = NUMBER_TOKENS_MAX + 1 if number_tokens else 0
    trainer = trainers.BpeTrainer(vocab_size=vocab_size + numbers,
                                  special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  min_frequency=2, show_progress=False)
    prompts = [FIXED_PROMPT.replace("<image>", "").format(instruction=t) for t in vocab_texts]
    every_number = [" ".join(map(str, range(numbers)))] * 2
    tok.train_from_iterator([*vocab_texts, *prompts, "0123456789 -,.:[]", *every_number],
                            trainer)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", bos)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>", unk_token="<unk>",
                                   extra_special_tokens={"image_token": "<image>"},
                                   model_max_length=max_length)


def build_tiny_vlm(out_dir: str | Path, vocab_texts: Iterable[str] | None = None, *,
                   image_size: int = 128, patch_size: int = 16, vision_hidden: int = 128,
                   vision_layers: int = 2, vision_heads: int = 4, text_hidden: int = 128,
                   text_layers: int = 3, text_heads: int = 4, vocab_size: int = 512,
                   max_positions: int = 512, chat_template: bool = True,
                   position_init: str = "sincos", image_mean: Sequence[float] | None = None,
                   image_std: Sequence[float] | None = None, seed: int = 0,
                   number_tokens: bool = False) -> Path:
    """A small LLaVA (CLIP vision tower, projector, Llama decoder) with random weights.

    Saved with ``save_pretrained`` (model, byte-level BPE tokenizer, ``CLIPImageProcessor``
    resizing to ``image_size`` without a crop, ``LlavaProcessor``) so that
    :class:`VlmBackend` and :func:`train_vlm` load it like any hub LLaVA. The processor
    inserts ``(image_size // patch_size) ** 2`` image tokens: the CLIP tower adds a CLS token
    (``num_additional_image_tokens=1``) that the ``default`` feature strategy drops again.
    ``chat_template=False`` leaves the processor without one (the backend's fixed prompt).

    ``position_init="sincos"`` starts the vision tower's (learnt) patch position embeddings
    at 2-D sine/cosine values as strong as the patch content; CLIP's default small random
    start ("random") leaves where a patch is nearly invisible, and from scratch the model then
    learns the text long before it learns to look (see the module docstring).

    ``image_mean`` / ``image_std`` (0..1 per channel; default CLIP's) normalise the images;
    the padding to a square takes the mean colour. ``number_tokens``: see
    :func:`build_tokenizer`.
    """
    import torch
    from transformers import (CLIPImageProcessor, CLIPVisionConfig, GenerationConfig, LlamaConfig,
                              LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor)

    if image_size % patch_size:
        raise GraspError(f"image_size {image_size} must be a multiple of patch_size {patch_size}")
    out = Path(out_dir)
    texts = list(vocab_texts) if vocab_texts is not None else grasp_vocab_texts()
    tokenizer = build_tokenizer(texts, vocab_size, max_positions, number_tokens)
    norm = {} if image_mean is None else {"image_mean": list(image_mean)}
    if image_std is not None:
        norm["image_std"] = list(image_std)
    image_processor = CLIPImageProcessor(size={"height": image_size, "width": image_size},
                                         crop_size={"height": image_size, "width": image_size},
                                         do_center_crop=False, **norm)
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer,
                               patch_size=patch_size, vision_feature_select_strategy="default",
                               num_additional_image_tokens=1,
                               chat_template=LLAVA_CHAT_TEMPLATE if chat_template else None)
    n_image = (image_size // patch_size) ** 2
    vision = CLIPVisionConfig(hidden_size=vision_hidden, intermediate_size=4 * vision_hidden,
                              num_hidden_layers=vision_layers, num_attention_heads=vision_heads,
                              image_size=image_size, patch_size=patch_size,
                              projection_dim=vision_hidden)
    text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=text_hidden,
                       intermediate_size=int(8 * text_hidden / 3) // 16 * 16 or 16,
                       num_hidden_layers=text_layers, num_attention_heads=text_heads,
                       num_key_value_heads=text_heads, max_position_embeddings=max_positions,
                       bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                       pad_token_id=tokenizer.pad_token_id)
    config = LlavaConfig(vision_config=vision, text_config=text,
                         image_token_index=processor.image_token_id, image_seq_length=n_image,
                         vision_feature_layer=-1, vision_feature_select_strategy="default")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlavaForConditionalGeneration(config)
    if position_init == "sincos":
        _sincos_patch_positions(model, image_size // patch_size, seed)
    elif position_init != "random":
        raise GraspError(f"position_init must be 'sincos' or 'random', got {position_init!r}")
    model.generation_config = GenerationConfig(bos_token_id=tokenizer.bos_token_id,
                                               eos_token_id=tokenizer.eos_token_id,
                                               pad_token_id=tokenizer.pad_token_id)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    if image_token_count(processor) != n_image:    # the contract the tests also check
        raise GraspError("tiny VLM processor and vision tower disagree on the image tokens")
    sizes = {"image_size": image_size, "patch_size": patch_size, "vision_hidden": vision_hidden,
             "vision_layers": vision_layers, "text_hidden": text_hidden,
             "text_layers": text_layers, "vocab": len(tokenizer),
             "position_init": position_init, "number_tokens": number_tokens,
             "image_mean": [float(c) for c in image_processor.image_mean],
             "image_std": [float(c) for c in image_processor.image_std],
             "parameters": sum(p.numel() for p in model.parameters())}
    (out / META_FILE).write_text(json.dumps({"kind": "tiny-vlm", "tiny_vlm": sizes}, indent=1))
    return out


def _sincos_patch_positions(model, grid: int, seed: int = 0) -> None:
    """2-D sine/cosine patch positions (CLS: zero), std matched to the patch embeddings (of
    random patches drawn from their own ``seed``: torch's global seed differs per process)."""
    import torch
    from transformers.models.clip.modeling_clip import CLIPVisionEmbeddings

    emb = next(m for m in model.modules() if isinstance(m, CLIPVisionEmbeddings))
    dim = emb.position_embedding.weight.shape[1]
    quarter = dim // 4
    freqs = np.pi / grid * np.geomspace(0.5, grid, quarter)   # wavelengths 4·grid … 2 patches
    rows, cols = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
    table = np.zeros((grid * grid + 1, dim), np.float32)
    for i, coord in enumerate((cols.ravel(), rows.ravel())):
        phase = (coord[:, None] + 0.5) * freqs[None, :]
        table[1:, 2 * i * quarter:(2 * i + 1) * quarter] = np.sin(phase)
        table[1:, (2 * i + 1) * quarter:(2 * i + 2) * quarter] = np.cos(phase)
    with torch.no_grad():
        x = torch.randn(64, 3, emb.patch_size, emb.patch_size,
                        generator=torch.Generator().manual_seed(seed))
        content = emb.patch_embedding(x).std().item()
        scale = content / max(float(table[1:].std()), 1e-6)
        emb.position_embedding.weight.copy_(torch.from_numpy(table * scale))


# ---------------------------------------------------------------------------- data

def mask_labels(input_ids: Sequence[int], prompt_len: int) -> list[int]:
    """Labels for ``input_ids`` = prompt (+ image tokens) then answer: -100 on the prompt."""
    if not 0 <= prompt_len <= len(input_ids):
        raise GraspError(f"prompt length {prompt_len} outside 0..{len(input_ids)}")
    return [IGNORE_INDEX] * prompt_len + [int(t) for t in input_ids[prompt_len:]]


def encode_example(processor, rgb, instruction: str, answer_text: str) -> dict:
    """One training sequence: the backend's prompt tokens, then answer tokens and EOS."""
    enc = encode_prompt(processor, check_rgb(rgb), instruction)
    return _with_answer(processor, enc["input_ids"][0].tolist(), enc["pixel_values"][0],
                        answer_text)


def _with_answer(processor, prompt: list[int], pixel_values, answer_text: str) -> dict:
    tok = processor.tokenizer
    if tok.eos_token_id is None:
        raise GraspError("the tokenizer has no end-of-sequence token")
    ans = tok(answer_text, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    ids = prompt + ans
    return {"input_ids": ids, "labels": mask_labels(ids, len(prompt)),
            "pixel_values": pixel_values}


def encode_examples(processor, triples: Sequence[tuple]) -> list[dict]:
    """:func:`encode_example` for every (rgb, instruction, answer), computed once.

    Each distinct image is processed once (e.g. one scene's instructed samples share it) and
    its tensor stored in half precision (``collate`` returns float32, within 1e-3); prompt
    tokens are reused per (instruction, image size), as LLaVA-1.5-style processors insert a
    fixed number of image tokens.
    """
    import hashlib

    import torch

    images: dict[bytes, object] = {}
    prompts: dict[tuple, list[int]] = {}
    out = []
    for rgb, instruction, answer_text in triples:
        a = np.ascontiguousarray(check_rgb(rgb))
        key = hashlib.blake2b(a.tobytes(), digest_size=16, person=str(a.shape).encode()[:16])
        key = key.digest()
        pkey = (instruction, a.shape)
        if key not in images or pkey not in prompts:
            enc = encode_prompt(processor, a, instruction)
            images.setdefault(key, enc["pixel_values"][0].to(torch.float16))
            prompts.setdefault(pkey, enc["input_ids"][0].tolist())
        out.append(_with_answer(processor, prompts[pkey], images[key], answer_text))
    return out


def collate(features: Sequence[dict], pad_id: int) -> dict:
    """Right-padded batch: padding has attention 0 and label -100."""
    import torch

    n = max(len(f["input_ids"]) for f in features)
    ids = torch.full((len(features), n), int(pad_id), dtype=torch.long)
    labels = torch.full((len(features), n), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(features), n), dtype=torch.long)
    for i, f in enumerate(features):
        k = len(f["input_ids"])
        ids[i, :k] = torch.tensor(f["input_ids"])
        labels[i, :k] = torch.tensor(f["labels"])
        mask[i, :k] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels,
            "pixel_values": torch.stack([f["pixel_values"] for f in features]).float()}


def _as_triple(example) -> tuple[np.ndarray, str, str]:
    t = example.as_tuple() if hasattr(example, "as_tuple") else tuple(example)
    if len(t) != 3 or not isinstance(t[1], str) or not isinstance(t[2], str):
        raise GraspError("an example is (rgb uint8 array, instruction, answer text)")
    return check_rgb(t[0]), t[1], t[2]


# ---------------------------------------------------------------------------- training

def _lora_model(model, r: int, alpha: int, dropout: float, targets, train_projector: bool):
    from peft import LoraConfig, get_peft_model

    names = "|".join(targets or LORA_TARGETS)
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout,
                        target_modules=rf".*language_model.*\.({names})",
                        modules_to_save=["multi_modal_projector"] if train_projector else None)
    with warnings.catch_warnings():   # peft probes a deprecated transformers attribute
        warnings.simplefilter("ignore", FutureWarning)
        return get_peft_model(model, config)


def plot_curves(curves: dict[str, list[float]], out: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    loss = np.asarray(curves["loss"])
    k = max(1, len(loss) // 50)
    axes[0].plot(loss, alpha=0.35, label="step")
    if k > 1:
        axes[0].plot(np.arange(k - 1, len(loss)), np.convolve(loss, np.ones(k) / k, "valid"),
                     label=f"mean of {k}")
    axes[0].set_yscale("log")
    axes[0].set_title("answer-token loss", fontsize=10)
    axes[0].set_xlabel("step")
    axes[0].legend(fontsize=7)
    axes[1].plot(curves["lr"])
    axes[1].set_title("learning rate", fontsize=10)
    axes[1].set_xlabel("step")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def train_vlm(model_dir_or_id: str | Path, examples: Sequence, out_dir: str | Path, *, lora: bool,
              epochs: int = 3, batch_size: int = 8, lr: float | None = None, seed: int = 0,
              progress: bool = True, allow_download: bool = False, lora_r: int = 16,
              lora_alpha: int = 32, lora_dropout: float = 0.05,
              lora_targets: Sequence[str] | None = None, train_projector: bool = True,
              warmup: float = 0.05, max_grad_norm: float = 1.0, weight_decay: float = 0.0,
              device: str | None = None, dtype=None, threads: int = 0,
              gradient_checkpointing: bool | None = None, cache: bool = True,
              freeze_vision: bool = False) -> dict[str, Path]:
    """Reasoning-tune ``model_dir_or_id`` on ``examples`` ((rgb, instruction, answer) each).

    ``cache``: encode every example once before training (:func:`encode_examples`: images
    shared by several examples are processed and stored once) instead of in every epoch.

    ``lora``: adapters on the language model (saved alone, with ``base_model`` in
    ``grasp_vlm.json``) or every weight (full model + processor saved); ``freeze_vision``
    keeps the vision tower as it is (LLaVA's recipe; for a tiny model after
    :func:`~embodied_transfer.grasp.vision_pretrain.pretrain_vision`). ``lr`` defaults to
    2e-4 (LoRA) or 1e-3 (full); linear warm-up over ``warmup`` of the steps, then cosine
    decay to 10 %. Deterministic for a ``seed`` on the CPU. Under ``accelerate launch`` the
    batches are shared among the processes (:mod:`~embodied_transfer.grasp.parallel`) and
    ``device`` is each process's; only the main process writes. Returns the paths written
    (``model``, ``curves``, ``curves_json``, ``meta``).
    """
    import torch

    triples = [_as_triple(e) for e in examples]
    if not triples:
        raise GraspError("train_vlm needs at least one example")
    if epochs < 1 or batch_size < 1:
        raise GraspError(f"epochs and batch_size must be >= 1, got {epochs}, {batch_size}")
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    parallel = DataParallel()
    parallel.check_batch(batch_size)
    device, _ = default_device_dtype(parallel.device if parallel.world > 1 else device, None)
    cuda = str(device).startswith("cuda")
    if dtype is None:   # LoRA on a GPU: bf16 base weights (the adapter stays fp32)
        dtype = (torch.bfloat16 if lora and cuda and torch.cuda.is_bf16_supported()
                 else torch.float32)
    ref = str(model_dir_or_id)
    processor = load_processor(ref, allow_download=allow_download)
    model = load_model(ref, allow_download=allow_download, device=device, dtype=dtype,
                       trainable=True)
    if gradient_checkpointing if gradient_checkpointing is not None else (lora and cuda):
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if freeze_vision:
        model.model.vision_tower.requires_grad_(False)
    if lora:
        model = _lora_model(model, lora_r, lora_alpha, lora_dropout, lora_targets, train_projector)
    model.train()
    net = parallel.prepare(model)          # `model` itself stays the module that is saved
    params = [p for p in model.parameters() if p.requires_grad]
    lr = lr if lr is not None else (2e-4 if lora else 1e-3)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    per_epoch = math.ceil(len(triples) / batch_size)
    total = per_epoch * epochs
    n_warm = max(1, int(round(warmup * total)))

    def schedule(step: int) -> float:
        if step < n_warm:
            return (step + 1) / n_warm
        t = (step - n_warm) / max(1, total - n_warm)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    tok = processor.tokenizer
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    rng = np.random.default_rng(seed)
    curves: dict[str, list[float]] = {"loss": [], "lr": [], "epoch_loss": []}
    t0 = time.perf_counter()
    bar = tqdm(total=total, desc="vlm lora" if lora else "vlm full", unit="step",
               disable=not progress or not parallel.main, leave=False)
    encoded = encode_examples(processor, triples) if cache else None
    for _ in range(epochs):
        order = rng.permutation(len(triples))
        losses = []
        for b in range(per_epoch):
            chosen = parallel.share(order[b * batch_size:(b + 1) * batch_size])
            batch = collate([encoded[i] if encoded is not None
                             else encode_example(processor, *triples[i]) for i in chosen], pad_id)
            batch = {k: v.to(device) for k, v in batch.items()}
            batch["pixel_values"] = batch["pixel_values"].to(dtype)
            loss = net(**batch).loss
            opt.zero_grad(set_to_none=True)
            parallel.backward(loss)
            if max_grad_norm:
                torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
            opt.step()
            curves["lr"].append(sched.get_last_lr()[0])
            sched.step()
            curves["loss"].append(parallel.mean(loss))
            losses.append(curves["loss"][-1])
            bar.update()
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        curves["epoch_loss"].append(float(np.mean(losses)))
    bar.close()
    seconds = time.perf_counter() - t0
    model.eval()
    out = Path(out_dir)
    paths = {"model": out, "curves": out / "training_curves.png",
             "curves_json": out / "training_curves.json", "meta": out / META_FILE}
    if parallel.main:
        _save(model, processor, out, lora, ref, curves, {
            "examples": len(triples), "epochs": epochs, "batch_size": batch_size, "lr": lr,
            "seed": seed, "steps": total, "seconds": round(seconds, 1),
            "processes": parallel.world, "vision_frozen": freeze_vision,
            "image_size": _image_size(triples)}, {
            "r": lora_r, "alpha": lora_alpha, "dropout": lora_dropout,
            "targets": list(lora_targets or LORA_TARGETS), "train_projector": train_projector})
    parallel.end()                   # the others go on once the model is written
    return paths


def _image_size(triples) -> list[int] | None:
    sizes = {(int(r.shape[1]), int(r.shape[0])) for r, _, _ in triples}
    return list(sizes.pop()) if len(sizes) == 1 else None


def _save(model, processor, out: Path, lora: bool, ref: str, curves: dict, run: dict,
          lora_config: dict) -> None:
    """Write the trained model (or adapter), its ``grasp_vlm.json`` and training curves."""
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    if not lora:
        processor.save_pretrained(out)
    meta = read_source_meta(ref) if not lora else {}
    meta.update({"kind": "lora-adapter" if lora else meta.get("kind", "full"), "lora": lora,
                 **run, "final_epoch_loss": curves["epoch_loss"][-1]})
    if lora:
        meta["base_model"] = ref
        meta["lora_config"] = lora_config
    else:
        meta["initialised_from"] = ref
    (out / META_FILE).write_text(json.dumps(meta, indent=1) + "\n")
    (out / "training_curves.json").write_text(json.dumps(curves) + "\n")
    plot_curves(curves, out / "training_curves.png")


def read_source_meta(ref: str) -> dict:
    """The source's ``grasp_vlm.json`` (tiny-model sizes) when ``ref`` is a directory."""
    path = Path(ref).expanduser()
    if not path.is_dir() or not (path / META_FILE).is_file():
        return {}
    meta = json.loads((path / META_FILE).read_text())
    return {k: meta[k] for k in ("kind", "tiny_vlm") if k in meta}
