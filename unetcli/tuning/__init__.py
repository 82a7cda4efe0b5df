"""Measuring the fastest correct hardware setting for a run, like cudnn.benchmark does for
convolutions: precision, memory layout, torch.compile (CUDA), threads against loader workers.

`training_runtime(cfg)` (the trainer) and `inference_runtime(cfg, command)`
(evaluate, predict) return the `Runtime` to use; see conf/hardware/auto.yaml.
"""

from unetcli.tuning.inference import inference_runtime
from unetcli.tuning.training import training_runtime

__all__ = ["inference_runtime", "training_runtime"]
