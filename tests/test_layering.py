"""The import layering of DESIGN.md, held by walking every module's imports (ast)."""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# room -> layer; a room may import only rooms of a strictly lower layer (and itself)
LAYERS = {
    "modq": 0,
    "modq.broker": 1,  # what producers and workers share of the broker
    "modq.producer": 2,  # the producer rules: checks, routing, admission, redaction
    "modq.client": 5,  # what apps import: the producer API
    "celeryconfig": 3,
    "policy": 1,
    "cache": 1,
    "registry": 1,
    "db": 2,
    "gpu_worker": 2,
    "migrations": 3,  # uses db.models
    "training": 3,
    "lifecycle": 3,
    "experiments": 3,
    "reviews": 3,
    "tasks": 4,
    "api": 5,  # the HTTP front: a producer through `from modq import moderate` (the client)
    "cli": 6,
}
# modq/__init__.py re-exports the client lazily (on first attribute access)
EXCEPTIONS = {("modq", "modq.client")}
SUBROOMS = ("modq.broker", "modq.producer", "modq.client")
HEAVY = {"torch", "transformers", "onnxruntime", "mlflow", "sklearn"}


def _room_of(module: str) -> str:
    for sub in SUBROOMS:
        if module == sub or module.startswith(sub + "."):
            return sub
    return module.split(".")[0]


def _imports(path: Path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node, _room_of(alias.name)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node, _room_of(node.module)


def _modules():
    for room in LAYERS:
        folder = REPO / room.replace(".", "/")
        files = sorted(folder.rglob("*.py")) if folder.is_dir() else [REPO / f"{room}.py"]
        for file in files:
            module = ".".join(file.relative_to(REPO).with_suffix("").parts)
            if _room_of(module) == room:
                yield room, file


def test_imports_flow_down_the_layers():
    bad = []
    for room, file in _modules():
        for _, target in _imports(file):
            if target == room or target not in LAYERS or (room, target) in EXCEPTIONS:
                continue
            if LAYERS[target] >= LAYERS[room]:
                bad.append(f"{file.relative_to(REPO)} imports {target}")
    assert not bad, "\n".join(bad)


def test_gpu_worker_knows_nothing_of_celery_http_or_sql():
    for room, file in _modules():
        if room != "gpu_worker":
            continue
        targets = {t for _, t in _imports(file)}
        assert not targets & {"celery", "kombu", "sqlalchemy", "fastapi", "tasks", "db"}, file


def test_heavy_imports_are_inside_functions_only():
    """Producers and the API must start without loading torch/onnxruntime at import."""
    bad = []
    for _, file in _modules():
        tree = ast.parse(file.read_text())
        for node in tree.body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                )
                if any(n.split(".")[0] in HEAVY for n in names):
                    bad.append(str(file.relative_to(REPO)))
    assert not bad, bad
