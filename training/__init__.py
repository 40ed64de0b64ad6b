"""Builds the default model from packaged parts only (no network): data, heads, ONNX export."""
