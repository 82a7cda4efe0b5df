"""Measuring the fastest correct hardware setting for a run, like cudnn.benchmark does for
convolutions: precision, memory layout, torch.compile (CUDA), threads against loader workers.

`unetcli.tuning.training.training_runtime(cfg)` (the trainer) and
`unetcli.tuning.inference.inference_runtime(cfg, command)` (evaluate, predict)
return the `Runtime` to use; see conf/hardware/auto.yaml. The package imports
neither here, so the trainer's import does not pull in `unetcli.inference`.
"""
