"""The import layering of DESIGN.md, held by walking every module's imports (ast)."""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# room -> layer; a room may import only rooms of a strictly lower layer (and itself)
LAYERS = {
    "modq": 0,
    "celeryconfig": 0,
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
    "cli": 6,
}
EXCEPTIONS = {("celeryconfig", "modq")}  # celeryconfig reads settings (same layer 0)
HEAVY = {"torch", "transformers", "onnxruntime", "mlflow", "sklearn"}


def _imports(path: Path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node, node.module.split(".")[0]


def _modules():
    for room in LAYERS:
        folder = REPO / room
        files = sorted(folder.rglob("*.py")) if folder.is_dir() else [REPO / f"{room}.py"]
        for file in files:
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
