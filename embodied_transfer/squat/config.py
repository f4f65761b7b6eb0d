"""Settings of the Real2Sim nodes (``real2sim_converter``, ``squat_phase_classifier``).

The one source of these settings: node parameters, ``config/<node>.yaml`` and the docs'
parameter tables are made from these dataclasses (:mod:`embodied_transfer.core.config`).
"""
from __future__ import annotations

from dataclasses import dataclass

from embodied_transfer.core.config import LifecycleSettings, duration, setting
from embodied_transfer.squat.range_gate import MAX_JUMP_M

#: Frames (at 20 Hz) a phase must last before it counts towards a repetition: 0.4 s, chosen
#: on the fine-tuning recordings 1-2 (fewest miscounts over raw, vae and proposed with the
#: shipped models among 3-12 frames; 8 is best, with one miscount, by the plain VAE).
MIN_RUN = 8
#: Frames (at 20 Hz) from one counted repetition to the next at least: 2.4 s, the shortest
#: simulated descent (1.2 s) plus the shortest simulated ascent (1.2 s), pauses left out. The
#: classifier has never seen a faster squat; a Down→Up flicker sooner than that after a
#: counted repetition is not counted (it is reported as ``suppressed``).
MIN_REP = 48


@dataclass
class ConverterNodeConfig(LifecycleSettings):
    """``real2sim_converter``: watch IMU + UWB range in, simulator-domain features out."""

    model_path: str = setting(
        "", "Directory of the converter checkpoint (config.json + model.safetensors); "
            "empty: the package's models/squat/multi_encoder_vae")
    max_uwb_wait_s: float = duration(
        1.0, "Longest an IMU frame waits (in stamp time) for a later UWB reading before it "
             "is emitted with the last range held")
    max_uwb_age_s: float = duration(
        5.0, "Frames whose last UWB reading is older than this (or that have none after "
             "max_uwb_wait_s) are converted from the watch alone, the range marked missing "
             "(mode imu_only)")
    max_uwb_jump_m: float = setting(
        MAX_JUMP_M, "A UWB range further than this from the median of the last readings is "
                    "rejected as multipath (uwb_multipath); 0: keep every reading",
        unit="m", low=0.0)
    queue_size: int = setting(256, "Most IMU frames held and UWB readings kept", low=1)
    new_stream_gap_s: float = duration(
        1.0, "An IMU stamp gap longer than this starts a new stream (windows restart)")
    flush_after_s: float = duration(
        0.5, "Time without input after which held frames are flushed (end of stream): on "
             "the node's clock (sim time under use_sim_time), on the wall clock while that "
             "clock stands still")
    max_imu_rate_hz: float = setting(
        200.0, "IMU stamp rate above which diagnostics warn (frames are still processed)",
        unit="Hz", low=0.0)
    frame_id: str = setting("", "frame_id of the features; empty: the IMU frame's")
    imu_includes_gravity: bool = setting(
        True, "imu linear_acceleration includes gravity (REP-145); it is removed with the "
              "message's orientation, or without one by a gyro-aided filter. false: the "
              "input is user acceleration already (the real watch's CSV and its bags)")
    gravity_time_constant_s: float = duration(
        0.5, "Time constant of the gravity filter for IMUs without orientation")
    placement_check: bool = setting(
        True, "Tell from the stream whether the phone lies above the wrist (the range grows "
              "going down) and then mirror the range, as squat evaluate does; runs a "
              "watch-only converter + classifier beside the stream until it has decided")
    placement_classifier_path: str = setting(
        "", "Classifier checkpoint of the placement check; empty: the package's "
            "models/squat/classifier")
    placement_min_frames: int = setting(
        40, "Down and Up frames each the placement check waits for before it decides",
        unit="frames", low=1)


@dataclass
class ClassifierNodeConfig(LifecycleSettings):
    """``squat_phase_classifier``: Stop / Down / Up per frame and the repetition count."""

    model_path: str = setting(
        "", "Directory of the phase classifier checkpoint (config.json + model.safetensors); "
            "empty: the package's models/squat/classifier")
    min_run: int = setting(MIN_RUN, "Frames a phase must last to count in the repetitions",
                           unit="frames", low=1)
    min_rep: int = setting(
        MIN_REP, "Frames from one counted repetition to the next at least (0: no limit); a "
                 "quicker Down-Up cycle is reported as suppressed_reps, not counted",
        unit="frames", low=0)
    flush_after_s: float = duration(
        1.0, "Time without features after which the last frames are labelled (end padded), "
             "on the node's clock as the converter's; keep it above the converter's "
             "flush_after_s")
    new_stream_gap_s: float = duration(
        1.0, "A stamp gap longer than this ends the stream (flush) and starts a new window")
