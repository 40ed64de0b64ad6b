"""Bring your own ONNX file: the label mapping is added to the graph itself.

Added nodes: ``token_type_ids`` as zeros shaped like ``input_ids`` (if the graph wants them),
a float cast if needed, the activation, then one Gather per model column and a Max per
category, concatenated into ``scores`` in canonical order. The ONNX backend then serves the
folder like any other; parity is checked against the source graph plus the mapping in numpy.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gpu_worker.backend import open_tokenizer
from gpu_worker.backends.onnx import OnnxBackend
from gpu_worker.labels import LabelMapping, build_label_mapping
from modq.errors import ModelUnavailable
from training.artifacts import onnx_version, publish_folder, staging_folder
from training.byo import (
    DEFAULT_MAX_LENGTH_TOKENS,
    check_name,
    check_parity,
    import_manifest,
    parity_max_abs_diff,
    with_extra,
    write_import_card,
)

REQUIRED_INPUTS = ("input_ids", "attention_mask")
OPTIONAL_INPUTS = ("token_type_ids",)
SCORES = "scores"


def import_onnx_file(
    path: Path,
    *,
    name: str,
    labels: Sequence[str],
    label_map: Mapping[str, str],
    tokenizer: Path,
    ignore: Iterable[str] = (),
    activation: str = "sigmoid",
    max_length: int = DEFAULT_MAX_LENGTH_TOKENS,
    output_name: str | None = None,
    models_root: Path,
) -> Path:
    """Import an ONNX classifier whose output columns are ``labels``; return the new folder.

    The graph must take int64 ``input_ids`` and ``attention_mask`` (``token_type_ids`` too,
    filled with zeros) and output (batch, len(labels)) logits (or probabilities with
    ``activation="none"``).
    """
    import onnx

    check_name(name)
    mapping = build_label_mapping(labels, label_map, ignore, activation)
    source = Path(path)
    try:
        model = onnx.load(str(source))
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx raises DecodeError, ValidationError, OSError ...
        raise ModelUnavailable(f"cannot read ONNX file {source}: {exc}") from exc
    inputs = check_inputs(model)
    output = pick_output(model, output_name, len(mapping.labels))
    composed, scores_name = compose_label_scores(
        model, mapping, output, zero_token_types="token_type_ids" in inputs
    )
    if max_length < 2:
        raise ModelUnavailable(f"max length {max_length} is too small")

    staging = staging_folder(models_root)
    try:
        shutil.copy(tokenizer, staging / "tokenizer.json")
        open_tokenizer(staging / "tokenizer.json", max_length)  # a corrupt file fails here
        onnx_path = staging / "model.onnx"
        onnx.save(composed, str(onnx_path))
        version = onnx_version(onnx_path)
        manifest = import_manifest(name, version, mapping, max_length, source, "onnx-file")
        manifest = with_extra(manifest, source_output=output)
        manifest = _replace_output(manifest, scores_name)
        manifest.write(staging)

        def reference(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
            return mapping.apply(run_source(source, output, inputs, ids, mask))

        diff = parity_max_abs_diff(OnnxBackend(staging, device="cpu"), staging, reference)
        check_parity(diff, "the composed ONNX graph", "source graph + mapping")
        manifest = with_extra(manifest, onnx_parity_max_abs_diff=diff, parity_against="ONNX")
        manifest.write(staging)
        write_import_card(staging / "MODEL_CARD.md", manifest, mapping)
        return publish_folder(staging, models_root, name, manifest.version)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _replace_output(manifest: Any, scores_name: str) -> Any:
    from dataclasses import replace

    return replace(manifest, output_name=scores_name)


def check_inputs(model: Any) -> tuple[str, ...]:
    """The graph's real inputs (not initializers), checked against what modq feeds."""
    from onnx import TensorProto

    initializers = {init.name for init in model.graph.initializer}
    inputs = {i.name: i for i in model.graph.input if i.name not in initializers}
    missing = [n for n in REQUIRED_INPUTS if n not in inputs]
    extra = [n for n in inputs if n not in REQUIRED_INPUTS + OPTIONAL_INPUTS]
    if missing or extra:
        raise ModelUnavailable(
            f"the ONNX graph takes inputs {sorted(inputs)}; modq feeds {list(REQUIRED_INPUTS)} "
            f"(+ {list(OPTIONAL_INPUTS)} as zeros)"
        )
    for input_name, value in inputs.items():
        if value.type.tensor_type.elem_type != TensorProto.INT64:
            raise ModelUnavailable(f"ONNX input {input_name!r} must be int64")
    return tuple(inputs)


def pick_output(model: Any, output_name: str | None, label_count: int) -> str:
    """The logits output: the one named, or the only one, or ``logits``."""
    outputs = {o.name: o for o in model.graph.output}
    if output_name is None:
        if len(outputs) == 1:
            output_name = next(iter(outputs))
        elif "logits" in outputs:
            output_name = "logits"
        else:
            raise ModelUnavailable(f"the ONNX graph has outputs {list(outputs)}: name one")
    if output_name not in outputs:
        raise ModelUnavailable(f"the ONNX graph has no output {output_name!r} ({list(outputs)})")
    dims = outputs[output_name].type.tensor_type.shape.dim
    if len(dims) != 2 or (dims[1].HasField("dim_value") and dims[1].dim_value != label_count):
        shape = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in dims]
        raise ModelUnavailable(
            f"ONNX output {output_name!r} has shape {shape}; expected (batch, {label_count}) "
            f"for {label_count} labels"
        )
    return output_name


def compose_label_scores(
    model: Any, mapping: LabelMapping, output: str, *, zero_token_types: bool
) -> tuple[Any, str]:
    """A copy of ``model`` whose one output is the per-category scores; and that output's name."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    composed = onnx.ModelProto()
    composed.CopyFrom(model)
    graph = composed.graph
    taken = {v for node in graph.node for v in (*node.input, *node.output)}
    taken |= {v.name for v in (*graph.input, *graph.initializer, *graph.output)}

    def fresh(base: str) -> str:
        candidate = base if base not in taken else f"modq_{base}"
        while candidate in taken:
            candidate += "_"
        taken.add(candidate)
        return candidate

    if zero_token_types:
        kept = [i for i in graph.input if i.name != "token_type_ids"]
        del graph.input[:]
        graph.input.extend(kept)
        shape = fresh("input_ids_shape")
        zero = helper.make_tensor("zero", TensorProto.INT64, [1], [0])
        prefix = [
            helper.make_node("Shape", ["input_ids"], [shape]),
            helper.make_node("ConstantOfShape", [shape], ["token_type_ids"], value=zero),
        ]
        body = list(graph.node)
        del graph.node[:]
        graph.node.extend(prefix + body)

    logits = output
    elem_type = next(o for o in graph.output if o.name == output).type.tensor_type.elem_type
    if elem_type != TensorProto.FLOAT:
        logits = fresh("logits_float")
        graph.node.append(helper.make_node("Cast", [output], [logits], to=TensorProto.FLOAT))
    probs = fresh("probs")
    if mapping.activation == "sigmoid":
        graph.node.append(helper.make_node("Sigmoid", [logits], [probs]))
    elif mapping.activation == "softmax":
        graph.node.append(helper.make_node("Softmax", [logits], [probs], axis=1))
    else:
        graph.node.append(helper.make_node("Identity", [logits], [probs]))

    per_category = []
    for category, columns in zip(mapping.categories, mapping.columns(), strict=True):
        picked = []
        for column in columns:
            index = fresh(f"column_{column}")
            graph.initializer.append(numpy_helper.from_array(np.array([column], np.int64), index))
            value = fresh(f"label_{column}")
            graph.node.append(helper.make_node("Gather", [probs, index], [value], axis=1))
            picked.append(value)
        score = picked[0]
        if len(picked) > 1:
            score = fresh(f"{category}_max")
            graph.node.append(helper.make_node("Max", picked, [score]))
        per_category.append(score)
    scores = fresh(SCORES)
    graph.node.append(helper.make_node("Concat", per_category, [scores], axis=1))
    del graph.output[:]
    graph.output.append(
        helper.make_tensor_value_info(scores, TensorProto.FLOAT, ["batch", len(mapping.categories)])
    )
    try:
        onnx.checker.check_model(composed)
    except Exception as exc:  # onnx.checker.ValidationError
        raise ModelUnavailable(f"the composed ONNX graph does not validate: {exc}") from exc
    return composed, scores


def run_source(
    source: Path, output: str, inputs: Sequence[str], ids: np.ndarray, mask: np.ndarray
) -> np.ndarray:
    """The source graph's ``output`` on (ids, mask), zeros for token types."""
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"])
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        return np.asarray(session.run([output], feeds)[0], dtype=np.float32)
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelUnavailable(f"the source ONNX graph fails on sample texts: {exc}") from exc
