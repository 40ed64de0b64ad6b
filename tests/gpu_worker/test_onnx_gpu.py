"""The GPU path of the ONNX backend, as far as a CPU can test it: I/O binding and the fp16 copy
with its parity check run on the CPU execution provider; the CPU defaults stay untouched.
Tests marked ``gpu`` need a real CUDA device and are skipped without one."""

import logging

import numpy as np
import pytest

from gpu_worker.backends.onnx import CUDA, OnnxBackend
from gpu_worker.backends.onnx_fp16 import PROBE_TEXTS
from modq.settings import get_settings

# held-out from the probe texts the parity check uses at load
TEXTS = [
    "have a great weekend everyone",
    "you pathetic moron, nobody wants you here",
    "I am going to burn your house down tonight",
    "limited offer: earn $5000 a week from home, reply now",
    "what time does the match start?",
    "go back to where you came from, you people ruin everything " * 6,
    "¿Dónde está la biblioteca? Gracias.",
    "lol",
]


def _cuda_available() -> bool:
    import onnxruntime

    return CUDA in onnxruntime.get_available_providers()


@pytest.fixture
def model_copy(fp32_model_dir, tmp_path):
    """The real fp32 model's files linked into a folder of our own (the fp16 copy lands
    there)."""
    folder = tmp_path / "model"
    folder.mkdir()
    for path in fp32_model_dir.iterdir():
        (folder / path.name).symlink_to(path)
    return folder


@pytest.fixture(scope="module")
def fp32_scores(fp32_model_dir):
    return OnnxBackend(fp32_model_dir, device="cpu").score(TEXTS)


def test_cpu_defaults_neither_bind_nor_convert(model_copy, fp32_scores):
    backend = OnnxBackend(model_copy, device="cpu")
    assert (backend.io_binding, backend.precision, backend.fp16_max_abs_diff) == (
        False,
        "fp32",
        None,
    )
    assert np.array_equal(backend.score(TEXTS), fp32_scores)
    assert backend.bound_runs == 0
    assert not list(model_copy.glob("*.fp16-*.onnx"))


def test_io_binding_path_gives_the_same_scores_on_cpu(model_copy, fp32_scores):
    backend = OnnxBackend(model_copy, device="cpu", io_binding=True)
    bound = backend.score(TEXTS)
    assert backend.bound_runs == 1 and backend.model_calls == 1
    assert bound.dtype == np.float32 and bound.shape == fp32_scores.shape
    np.testing.assert_allclose(bound, fp32_scores, rtol=0, atol=1e-6)


def test_fp16_copy_is_made_once_and_scores_within_the_bound(model_copy, fp32_scores):
    bound = get_settings().gpu_fp16_max_abs_diff
    backend = OnnxBackend(model_copy, device="cpu", fp16=True)
    assert backend.precision == "fp16" and backend.fp16_refused is None
    assert backend.fp16_max_abs_diff is not None and 0 < backend.fp16_max_abs_diff <= bound
    (copy,) = model_copy.glob(f"model.fp16-{backend.manifest.version}.onnx")
    scores = backend.score(TEXTS)
    assert scores.dtype == np.float32
    diff = float(np.max(np.abs(scores - fp32_scores)))
    assert 0 < diff <= bound  # really another graph, and close to fp32 on unseen texts
    made_ns = copy.stat().st_mtime_ns
    again = OnnxBackend(model_copy, device="cpu", fp16=True)
    assert again.precision == "fp16" and copy.stat().st_mtime_ns == made_ns  # reused


def test_fp16_that_fails_parity_falls_back_to_fp32_and_says_why(model_copy, fp32_scores, caplog):
    with caplog.at_level(logging.WARNING, logger="gpu_worker.backends.onnx"):
        backend = OnnxBackend(model_copy, device="cpu", fp16=True, fp16_max_abs_diff=1e-9)
    assert backend.precision == "fp32"
    assert backend.fp16_refused is not None and "parity" in backend.fp16_refused
    assert "staying on fp32" in caplog.text and "parity" in caplog.text
    assert np.array_equal(backend.score(TEXTS), fp32_scores)


def test_a_quantized_model_is_not_converted(model_copy, tmp_path):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantized = tmp_path / "int8"
    quantized.mkdir()
    for path in model_copy.iterdir():
        if path.name != "model.onnx":
            (quantized / path.name).symlink_to(path.resolve())
    quantize_dynamic(
        str(model_copy / "model.onnx"), str(quantized / "model.onnx"), weight_type=QuantType.QInt8
    )
    backend = OnnxBackend(quantized, device="cpu", fp16=True)
    assert backend.precision == "fp32" and "quantized" in (backend.fp16_refused or "")
    assert not list(quantized.glob("*.fp16-*.onnx"))


def test_probe_texts_reach_the_length_limit(model_dir):
    backend = OnnxBackend(model_dir, device="cpu")
    lengths = [len(ids) for ids in backend.tokenize(PROBE_TEXTS)]
    assert max(lengths) == backend.manifest.max_length_tokens and min(lengths) < 8


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda_available(), reason="needs ONNX Runtime's CUDA provider")
def test_cuda_binds_and_runs_fp16_within_the_bound(model_copy, fp32_scores):
    backend = OnnxBackend(model_copy, device="cuda")
    assert backend.device == "cuda" and backend.providers[0] == CUDA
    assert backend.io_binding is True
    assert backend.precision == "fp16", backend.fp16_refused
    scores = backend.score(TEXTS)
    assert backend.bound_runs == 1
    assert float(np.max(np.abs(scores - fp32_scores))) <= get_settings().gpu_fp16_max_abs_diff


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda_available(), reason="needs ONNX Runtime's CUDA provider")
def test_cuda_fp32_with_binding_matches_cpu(model_copy, fp32_scores):
    backend = OnnxBackend(model_copy, device="cuda", fp16=False)
    assert backend.precision == "fp32" and backend.io_binding is True
    np.testing.assert_allclose(backend.score(TEXTS), fp32_scores, rtol=0, atol=1e-4)
