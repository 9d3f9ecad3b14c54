"""``mtl_lab.train`` moved to :mod:`mtl_lab.training`;
this name is kept so that older notebooks and scripts still run.

Importing it warns once (``FutureWarning``) with the new path; it will be removed in a later version.
"""

import warnings

from mtl_lab.training import (  # noqa: F401
    DEVICES,
    GRADIENT_PATHS,
    NONFINITE_CHECKS,
    OPTIMIZERS,
    SCHEDULES,
    Event,
    EventStream,
    NonFiniteLossError,
    RunHandle,
    TrainConfig,
    Trainer,
    build_trainer,
    check_architecture_options,
    plain,
    resolve_device,
    train,
)

warnings.warn("mtl_lab.train has moved to mtl_lab.training: import from mtl_lab.training instead",
              FutureWarning, stacklevel=2)
