"""Opening model.onnx with onnxruntime: a damaged file is one clear paragraph, not a traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from unetcli.errors import UnetError

PIXELS = "pixels"


class Graph:
    """An onnxruntime session: uint8 pixels (N, H, W, C) in, float32 probabilities out."""

    def __init__(self, path: str | Path, threads: int = 0) -> None:
        path = Path(path)
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise UnetError(
                'the ONNX runner needs onnxruntime: pip install onnxruntime (or "unetcli[export]")'
            ) from err
        if not path.is_file():
            raise UnetError(
                f"model file {path} does not exist; pass the model.onnx `unet export` wrote"
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # onnxruntime raises its own types for damaged files
            raise UnetError(
                f"cannot load {path} with onnxruntime: the file is truncated, damaged or not an "
                f"ONNX model ({type(err).__name__}: {str(err).splitlines()[0][:160]}). Export "
                "the checkpoint again with `unet export checkpoint=PATH`."
            ) from err
        names = [i.name for i in self.session.get_inputs()]
        if names != [PIXELS]:
            raise UnetError(
                f"{path} takes inputs {names}, not the single `{PIXELS}` input of a model "
                "`unet export` wrote; export the checkpoint again."
            )

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        return self.session.run(None, {PIXELS: np.ascontiguousarray(pixels)})[0]
