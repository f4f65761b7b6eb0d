"""Real2Sim inference, offline and frame by frame, with one set of rules for both.

:class:`Converter` turns frames (physical units, CHANNELS order) into simulator-domain
frames from a causal window; :class:`Classifier` labels a frame from ``past`` frames before
and ``future`` after; :class:`RepCounter` counts Down→Up cycles from a label stream,
ignoring runs shorter than ``min_run`` frames and cycles sooner than ``min_rep`` frames
after the last. The ROS nodes feed the same objects one frame at a time, so a replayed
recording gives what ``squat evaluate`` computes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from embodied_transfer.core.shipped import shipped_model
from embodied_transfer.squat.config import MIN_REP, MIN_RUN
from embodied_transfer.squat.errors import SquatDataError
from embodied_transfer.squat.inference import ClassifierNet, ConverterNet, softmax
from embodied_transfer.squat.models import Checkpoint
from embodied_transfer.squat.phases import DOWN, STOP, UP, PhaseFilter, read_phase_filters
from embodied_transfer.squat.signals import AdaptiveStandardizer, windows

#: Shipped checkpoints (reproduce with the command in their MODEL_CARD.md).
DEFAULT_MODELS = shipped_model("squat")
CONVERTERS = {"vae": "plain_vae", "proposed": "multi_encoder_vae"}


class Converter:
    """A converter checkpoint (plain or multi-encoder VAE) applied to physical frames.

    When the checkpoint carries an :class:`~.signals.InputAdaptation`, every stream (a
    recording here, a stream of the node) is first standardised with its own running
    statistics, frame by frame and causally.
    """

    def __init__(self, checkpoint: Checkpoint) -> None:
        if checkpoint.output_normalizer is None or not hasattr(checkpoint.model, "convert"):
            raise SquatDataError("checkpoint is not a converter")
        self.ckpt = checkpoint
        self.past = checkpoint.cfg.past
        self.net = ConverterNet(checkpoint.model)

    def adapter(self) -> AdaptiveStandardizer | None:
        """Fresh per-stream input adaptation state (None: the fixed normaliser only)."""
        ad = self.ckpt.adaptation
        return ad.stream(self.ckpt.normalizer) if ad else None

    @classmethod
    def load(cls, directory: str | Path) -> "Converter":
        return cls(Checkpoint.load(directory))

    def convert_windows(self, w: np.ndarray) -> np.ndarray:
        """(B, past+1, 7) physical windows → (B, 7) physical sim-domain last frames."""
        return self.ckpt.output_normalizer.inverse(self.net(self.ckpt.normalizer(w)))

    def convert(self, x: np.ndarray, batch: int = 4096) -> np.ndarray:
        """A whole recording (N, 7) → (N, 7), each frame from its causal window."""
        if self.ckpt.adaptation:
            x = self.ckpt.adaptation.apply(x, self.ckpt.normalizer)
        w = windows(x, self.past, 0)
        return np.concatenate([self.convert_windows(w[i:i + batch])
                               for i in range(0, len(w), batch)])


class Classifier:
    """The sim-trained Bi-GRU phase classifier applied to physical (sim-domain) frames."""

    def __init__(self, checkpoint: Checkpoint) -> None:
        if checkpoint.cfg.kind != "phase_classifier":
            raise SquatDataError(f"checkpoint is a {checkpoint.cfg.kind}, not a phase classifier")
        self.ckpt = checkpoint
        self.past, self.future = checkpoint.cfg.past, checkpoint.cfg.future
        self.net = ClassifierNet(checkpoint.model)

    @classmethod
    def load(cls, directory: str | Path) -> "Classifier":
        return cls(Checkpoint.load(directory, kind="phase_classifier"))

    def probabilities_windows(self, w: np.ndarray) -> np.ndarray:
        """(B, past+1+future, 7) physical windows → (B, 3) probabilities of the centre frame."""
        return softmax(self.net(self.ckpt.normalizer(w)))

    def probabilities(self, x: np.ndarray, batch: int = 4096, filtered: bool = True
                      ) -> np.ndarray:
        """Probabilities (N, 3) of every frame of a recording (N, 7); ``filtered``: through
        the checkpoint's :class:`~.phases.PhaseFilter`, as the stream does, if it has one."""
        w = windows(x, self.past, self.future)
        p = np.concatenate([self.probabilities_windows(w[i:i + batch])
                            for i in range(0, len(w), batch)])
        return self.filter(p) if filtered else p

    @property
    def phase_filter(self) -> PhaseFilter | None:
        return self.ckpt.phase_filter

    def filter(self, probabilities: np.ndarray) -> np.ndarray:
        """One stream's per-frame probabilities through the phase filter (if any)."""
        pf = self.phase_filter
        return pf.apply(probabilities) if pf is not None else probabilities


class RepCounter:
    """Counts Down→Up cycles; a phase counts once it has lasted ``min_run`` frames, and a
    cycle completed fewer than ``min_rep`` frames after the last counted one is
    ``suppressed`` instead (``min_rep`` = 0: never)."""

    def __init__(self, min_run: int = MIN_RUN, min_rep: int = MIN_REP) -> None:
        if min_run < 1 or min_rep < 0:
            raise SquatDataError(f"min_run ({min_run}) must be >= 1 and min_rep ({min_rep}) "
                                 f">= 0")
        self.min_run, self.min_rep = int(min_run), int(min_rep)
        self.reset()

    def reset(self) -> None:
        self.count = self.suppressed = 0
        self._confirmed = STOP         # last confirmed moving phase (DOWN or UP)
        self._run_phase, self._run = STOP, 0
        self._frame, self._last_rep = 0, None    # frames fed; frame of the last counted rep

    def update(self, phase: int) -> int:
        """Feed one frame's phase; returns the repetitions completed so far."""
        self._frame += 1
        if phase == self._run_phase:
            self._run += 1
        else:
            self._run_phase, self._run = phase, 1
        if self._run == self.min_run and phase in (DOWN, UP):
            if phase == UP and self._confirmed == DOWN:
                if self._last_rep is None or self._frame - self._last_rep >= self.min_rep:
                    self.count += 1
                    self._last_rep = self._frame
                else:
                    self.suppressed += 1
            self._confirmed = phase
        return self.count

    def count_all(self, phases: np.ndarray) -> int:
        self.reset()
        for p in np.asarray(phases).tolist():
            self.update(int(p))
        return self.count


#: Pipeline(phase_filter=...) default: the classifier checkpoint's own filter.
CLASSIFIERS_FILTER = "classifier"


class Pipeline:
    """Converter (or none: raw) → classifier → phase filter, for whole recordings. The
    filter is the classifier checkpoint's unless the pipeline is given its own (a
    :class:`~.phases.PhaseFilter`, or None for none)."""

    def __init__(self, classifier: Classifier, converter: Converter | None = None,
                 phase_filter: PhaseFilter | None | str = CLASSIFIERS_FILTER) -> None:
        self.classifier, self.converter = classifier, converter
        self.phase_filter = (classifier.phase_filter if phase_filter == CLASSIFIERS_FILTER
                             else phase_filter)

    def filter(self, probabilities: np.ndarray) -> np.ndarray:
        """One stream's per-frame probabilities through this pipeline's filter (if any)."""
        pf = self.phase_filter
        return pf.apply(probabilities) if pf is not None else probabilities

    def run(self, x: np.ndarray, filtered: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Physical frames (N, 7) → (sim-domain frames, probabilities (N, 3))."""
        sim = self.converter.convert(x) if self.converter else x
        probs = self.classifier.probabilities(sim, filtered=False)
        return sim, self.filter(probs) if filtered else probs


def load_pipelines(models: str | Path = DEFAULT_MODELS) -> dict[str, Pipeline]:
    """``raw``, ``vae`` and ``proposed`` pipelines from a models directory, each with its
    own phase filter from ``phase_filters.json`` where the directory has one."""
    models = Path(models)
    classifier = Classifier.load(models / "classifier")
    filters = read_phase_filters(models)
    converters = {"raw": None, **{c: Converter.load(models / d) for c, d in CONVERTERS.items()}}
    return {c: Pipeline(classifier, conv, filters.get(c, CLASSIFIERS_FILTER))
            for c, conv in converters.items()}
