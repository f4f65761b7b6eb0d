"""Zero-shot concept editing: time one CLIP-guided inpainting edit (denoising steps per second).

* ``tiny cpu``: tiny random models built from config (``embodied_transfer.editing.tiny``) on
  the CPU, one torch thread, 64x64 image, with and without directional guidance (guidance adds
  a VAE decode + BiomedCLIP forward/backward per step).
* ``real gpu``: BiomedCLIP + SD inpainting at 512 px, fp16, only when a GPU is present and both
  models are in the local Hugging Face cache (no download); otherwise the notes say so.

No targets: the tiny models measure the plumbing, not edit quality.
"""
from __future__ import annotations

import tempfile

STEPS = 10
REAL_STEPS = 25
PROMPTS = dict(source_prompt="tumor breast", target_prompt="healthy breast")


def _time_edit(pipe, clip, image, mask, steps: int, guidance: float, size=None) -> dict:
    from embodied_transfer.editing.inpaint import guided_inpaint

    guided_inpaint(pipe, clip, image, mask, guidance_scale=guidance, steps=1, seed=0,
                   size=size, **PROMPTS)                                   # warm-up
    r = guided_inpaint(pipe, clip, image, mask, guidance_scale=guidance, steps=steps, seed=0,
                       size=size, **PROMPTS)
    return {"steps": steps, "seconds": round(r.seconds, 3),
            "steps_per_second": round(steps / r.seconds, 2), "l_dir": round(r.l_dir, 4),
            "image": f"{image.shape[1]}x{image.shape[0]}"}


def _real_case() -> tuple[dict | None, str]:
    import torch

    if not torch.cuda.is_available():
        return None, "no GPU: real BiomedCLIP + SD inpainting not timed"
    from embodied_transfer.editing.clip import load_clip
    from embodied_transfer.editing.errors import EditError
    from embodied_transfer.editing.inpaint import load_inpaint

    try:
        clip = load_clip()
        pipe = load_inpaint()
    except EditError as exc:
        return None, f"GPU present but real models not cached, not timed: {exc}"
    import numpy as np

    yy, xx = np.mgrid[0:512, 0:512] / 512
    image = np.repeat((((xx - .5) ** 2 + (yy - .5) ** 2) < .16).astype(np.float32)[..., None]
                      * 0.5, 3, -1)
    mask = ((xx - .6) ** 2 + (yy - .45) ** 2) < .02
    return {"guided": _time_edit(pipe, clip, image, mask, REAL_STEPS, 1.0),
            "unguided": _time_edit(pipe, clip, image, mask, REAL_STEPS, 0.0)}, \
        f"real models on {torch.cuda.get_device_name()} (fp16)"


def run() -> dict:
    import torch

    from embodied_transfer.editing.clip import load_clip
    from embodied_transfer.editing.inpaint import load_image, load_inpaint, load_mask
    from embodied_transfer.editing.tiny import build_tiny_models, write_demo_inputs

    torch.set_num_threads(1)
    cases: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        clip_dir, inpaint_dir = build_tiny_models(tmp)
        image_path, mask_path = write_demo_inputs(f"{tmp}/inputs", size=64)
        image = load_image(image_path)
        mask = load_mask(mask_path, (image.shape[1], image.shape[0]))
        clip, pipe = load_clip(str(clip_dir), "cpu"), load_inpaint(str(inpaint_dir), "cpu")
        cases["tiny cpu guided"] = _time_edit(pipe, clip, image, mask, STEPS, 1.0)
        cases["tiny cpu unguided"] = _time_edit(pipe, clip, image, mask, STEPS, 0.0)
    real, note = _real_case()
    if real:
        cases.update({f"real gpu {k}": v for k, v in real.items()})
    return {"cases": cases, "targets": {},
            "notes": f"tiny random models, CPU, one torch thread, {STEPS} DDIM steps, cfg 7.5; "
                     + note}


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
