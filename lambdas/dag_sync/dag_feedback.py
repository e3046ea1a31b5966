"""Feedback for DAG authors: syntax check and literal dag_ids, without importing the file.

The file is parsed and compiled (never executed), so this is safe to run on any upload and
cheap (a few milliseconds for a typical DAG). Only literal ids are found:
``DAG("x")``, ``DAG(dag_id="x")``, ``models.DAG(...)``, ``@dag(dag_id="x")``, ``@dag("x")`` and
a bare ``@dag`` / ``@dag()``, whose id is the decorated function's name.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass


@dataclass(frozen=True)
class SyntaxProblem:
    line: int | None
    message: str


@dataclass(frozen=True)
class Feedback:
    syntax_error: SyntaxProblem | None
    dag_ids: tuple[str, ...]


def analyse(source: bytes, filename: str) -> Feedback:
    """Compile ``source`` (honouring its coding cookie) and list its literal dag_ids."""
    try:
        tree = ast.parse(source, filename=filename)
        # Some errors (e.g. 'return' outside a function) only appear when compiling.
        compile(tree, filename, "exec", dont_inherit=True)
    except SyntaxError as exc:
        return Feedback(SyntaxProblem(exc.lineno, exc.msg), ())
    except (ValueError, RecursionError, MemoryError) as exc:
        return Feedback(SyntaxProblem(None, f"{type(exc).__name__}: {exc}"), ())
    return Feedback(None, find_dag_ids(tree))


def _callee_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _literal_id(call: ast.Call) -> str | None:
    for keyword in call.keywords:
        if keyword.arg == "dag_id":
            value = keyword.value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                return value.value
            return None
    if call.args:
        first = call.args[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return first.value
    return None


def find_dag_ids(tree: ast.AST) -> tuple[str, ...]:
    """Literal dag_ids in source order, each once."""
    found: list[tuple[int, int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _callee_name(node.func) == "DAG":
            dag_id = _literal_id(node)
            if dag_id:
                found.append((node.lineno, node.col_offset, dag_id))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for decorator in node.decorator_list:
                if isinstance(decorator, ast.Call) and _callee_name(decorator.func) == "dag":
                    has_id = decorator.args or any(k.arg == "dag_id" for k in decorator.keywords)
                    dag_id = _literal_id(decorator) if has_id else node.name
                elif _callee_name(decorator) == "dag":
                    dag_id = node.name
                else:
                    continue
                if dag_id:
                    found.append((decorator.lineno, decorator.col_offset, dag_id))
    return tuple(dict.fromkeys(dag_id for _, _, dag_id in sorted(found)))
