"""The package's import graph points one way: the top (the CLI, the demo) over the four stages over
the lower layers (engine, data, metrics, distributed, forgery, ...). A stage never imports another
stage (it shares code through a lower layer), a lower layer never imports a stage, and no modules
import each other at load time. Read from the source with ``ast`` (function-level imports count)."""
from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

PACKAGE = Path(__file__).resolve().parents[1] / "fakeproof"
STAGES = ("curate", "generate", "train", "infer")
TOP = ("fakeproof.cli", "fakeproof.demo", "fakeproof.models_cli", "fakeproof.stages", "fakeproof.__main__")


def _modules(root: Path = PACKAGE) -> dict[str, Path]:
    out = {}
    for f in sorted(root.rglob("*.py")):
        parts = (root.name, *f.relative_to(root).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def import_edges(root: Path = PACKAGE) -> list[tuple[str, str, int, bool]]:
    """``(importer, imported module, line, at module level)`` for every import of the package by itself."""
    mods = _modules(root)
    edges = []
    for name, f in mods.items():
        pkg = name.split(".") if f.name == "__init__.py" else name.split(".")[:-1]
        tree = ast.parse(f.read_text(encoding="utf-8"))
        top_level = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                base = pkg[: len(pkg) - node.level + 1] if node.level else []
                target = ".".join(base + (node.module.split(".") if node.module else []))
                names = [f"{target}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                target, names = None, [a.name for a in node.names]
            else:
                continue
            for cand in names:
                t = cand if cand in mods else target
                if t in mods and t != name:
                    edges.append((name, t, node.lineno, id(node) in top_level))
    return edges


def layer_of(module: str) -> str:
    if module in TOP:
        return "top"
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else "lower"


def layer_violations(root: Path = PACKAGE) -> list[str]:
    bad = set()
    for src, dst, line, _ in import_edges(root):
        a, b = layer_of(src), layer_of(dst)
        if b in STAGES and a != b and a != "top":
            bad.add(f"{src}:{line} imports {dst} ({a} -> stage {b})")
    return sorted(bad)


def import_cycles(root: Path = PACKAGE, load_time_only: bool = False) -> list[list[str]]:
    """Modules that import each other. A package importing its own submodules (a registry filling
    itself, e.g. ``engine.encoders``) is not counted; a function-level import is, unless
    ``load_time_only`` (the cycles that can break ``import``)."""
    g = nx.DiGraph(
        (s, d) for s, d, _, top in import_edges(root) if (top or not load_time_only) and not d.startswith(s + ".")
    )
    return sorted(sorted(c) for c in nx.strongly_connected_components(g) if len(c) > 1)


def test_stages_import_each_other_only_through_lower_layers():
    assert layer_violations() == []


def test_no_import_cycles():
    assert import_cycles() == []


def test_the_checks_see_a_sideways_import_and_a_cycle(tmp_path):
    """The rule itself, on a throwaway package laid out like fakeproof."""
    root = tmp_path / "fakeproof"
    for d in ("train", "generate", "data"):
        (root / d).mkdir(parents=True)
        (root / d / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "cli.py").write_text("from .train import loop\n")  # the top may import any stage
    (root / "train" / "loop.py").write_text("from ..data import records\n\ndef f():\n    from ..generate.runner import x\n")
    (root / "generate" / "runner.py").write_text("from ..data.records import y\n")
    (root / "data" / "records.py").write_text("from . import meta\n")
    (root / "data" / "meta.py").write_text("from .records import z\n")
    assert layer_violations(root) == ["fakeproof.train.loop:4 imports fakeproof.generate.runner (train -> stage generate)"]
    assert import_cycles(root) == import_cycles(root, load_time_only=True) == [["fakeproof.data.meta", "fakeproof.data.records"]]
    (root / "data" / "meta.py").write_text("def f():\n    from .records import z\n")  # deferred: still a cycle
    assert import_cycles(root) == [["fakeproof.data.meta", "fakeproof.data.records"]] and import_cycles(root, load_time_only=True) == []
    (root / "data" / "engine_hook.py").write_text("import fakeproof.infer\n")
    (root / "infer").mkdir()
    (root / "infer" / "__init__.py").write_text("")
    assert "fakeproof.data.engine_hook:1 imports fakeproof.infer (lower -> stage infer)" in layer_violations(root)
