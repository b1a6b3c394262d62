"""One AST walker for the layering tests (tests/test_layers.py, tests/lab/test_lab_layers.py)."""

import ast
from pathlib import Path


def imports_of(path: Path, package: str) -> set[str]:
    """Absolute names of the modules (and ``module.name`` of the names) ``path`` imports,
    relative imports resolved against ``package`` (the package the file lives in), lazy
    imports inside functions included."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            out.add(module)
            out.update(f"{module}.{a.name}" for a in node.names)
    return out
