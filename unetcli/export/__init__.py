"""`unet export`: a checkpoint as ONNX and torch.export programs, with inference.json, verified."""
