"""Forecasting: next frames of a movie and next positions of tracked cells, always beside baselines.

Frames (:mod:`dynacell.forecast.frames`): K-frame windows → the next frame; baselines
persistence, smoothed persistence, linear extrapolation and optical-flow warping; the method
``frames-mc-linear`` (:mod:`dynacell.forecast.motion`: motion-aligned past frames combined by
least squares fitted on the movie's own past). Positions
(:mod:`dynacell.forecast.positions`): the last positions of a track → its next positions;
baselines constant position, constant velocity and a Kalman filter.
:func:`predict_next_positions` gives the predicted positions of every track of a table (a motion
prior for linking). Models load with :func:`from_pretrained` / :func:`from_folder`.

No torch import at package import time.
"""

from dynacell.forecast.evaluate import evaluate_frames, evaluate_positions
from dynacell.forecast.frames import (
    BASELINES,
    baseline_forecast,
    gapless_targets,
    load_frames,
    make_windows,
    normalize_movie,
)
from dynacell.forecast.models import (
    DEFAULT_FRAME_MODEL,
    DEFAULT_POSITION_MODEL,
    FRAME_METHODS,
    FrameForecastCard,
    FrameForecaster,
    PositionForecastCard,
    PositionForecaster,
    available_models,
    from_folder,
    from_pretrained,
    resolve_model,
)
from dynacell.forecast.motion import MotionCompensatedForecaster
from dynacell.forecast.positions import (
    POSITION_BASELINES,
    KalmanParams,
    PRWParams,
    baseline_positions,
    fit_kalman,
    fit_prw_kalman,
    history_windows,
    kalman_forecast,
    predict_next_positions,
    prw_kalman_forecast,
    read_tracks_csv,
    tracks_from_lineage,
)

__all__ = [
    "BASELINES",
    "DEFAULT_FRAME_MODEL",
    "DEFAULT_POSITION_MODEL",
    "FRAME_METHODS",
    "POSITION_BASELINES",
    "FrameForecastCard",
    "FrameForecaster",
    "KalmanParams",
    "MotionCompensatedForecaster",
    "PRWParams",
    "PositionForecastCard",
    "PositionForecaster",
    "available_models",
    "baseline_forecast",
    "baseline_positions",
    "evaluate_frames",
    "evaluate_positions",
    "fit_kalman",
    "fit_prw_kalman",
    "from_folder",
    "from_pretrained",
    "history_windows",
    "kalman_forecast",
    "gapless_targets",
    "load_frames",
    "make_windows",
    "normalize_movie",
    "predict_next_positions",
    "prw_kalman_forecast",
    "read_tracks_csv",
    "resolve_model",
    "tracks_from_lineage",
]
