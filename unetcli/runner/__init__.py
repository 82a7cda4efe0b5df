"""A runner for exported models that needs only onnxruntime, NumPy and OpenCV (no torch).

`python -m unetcli.runner model.onnx IMAGES_DIR --out OUT_DIR` follows the
inference.json beside model.onnx (resize and back, full images, sliding
windows, overlap tiles, TTA, threshold) and writes the same submission.csv.gz
as `unet predict` with the checkpoint. Nothing under unetcli.runner imports
torch, albumentations or Hydra.
"""
