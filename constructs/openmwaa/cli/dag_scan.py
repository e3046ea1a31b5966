"""The pure core of ``openmwaa dag-check``: which DAG findings break on Airflow 3.

Findings come from two places:

* ruff's Airflow rules (``AIR...``), which Airflow documents as its upgrade checker. The adapter
  (:mod:`openmwaa.cli.dag_check`) runs ruff; this module reads its JSON and classifies each
  finding with :data:`RULES`.
* openmwaa's own checks (``OMW...``) for common Airflow 3 breakages that ruff 0.17.6 does not
  see, written with :mod:`ast` and plain text matching: no Airflow import, no I/O.

Every finding is either **breaking** (the DAG fails to import, a task fails, or the DAG runs
differently on Airflow 3) or **advisory** (still works on Airflow 3; deprecated, a best practice,
or a behaviour that depends on configuration). ``dag-check`` exits 1 when any finding is breaking.

openmwaa's codes:

======  ========  ========================================================================
code    severity  what it finds
======  ========  ========================================================================
OMW301  breaking  a context variable removed in Airflow 3 inside a Jinja template (a string
                  in a DAG file, or a ``.sql``/``.hql``/``.sh``/``.j2``/``.jinja2`` template):
                  ``{{ execution_date }}``, ``{{ next_ds }}``, ``{{ prev_ds }}``,
                  ``{{ tomorrow_ds }}``, ``{{ ti.execution_date }}``, ...
OMW302  breaking  the same variables read in Python where ruff does not look: context keys in
                  ``PythonOperator`` callables, callbacks and ``execute(self, context)``,
                  callable parameters named after them, ``.execution_date`` and
                  ``.external_trigger`` attributes
OMW303  breaking  an import from a module Airflow 3 removed (``airflow.contrib``, SubDAGs, the
                  Airflow 1.10-style ``*_operator``/``*_sensor``/``*_hook`` modules) that ruff
                  does not report, for example because the imported name is never used
OMW304  breaking  direct access to the metadata database (``airflow.settings.Session``,
                  ``provide_session``, ``create_session``, ``DagRun.find``): Airflow 3 task
                  code cannot use the ORM
OMW311  advisory  a cron or timedelta schedule in a DAG file that reads run dates: Airflow 3
                  runs them with a *trigger* timetable unless
                  ``[scheduler] create_cron_data_intervals = True``, so ``ds`` and
                  ``logical_date`` become the time of the run, one interval later than on
                  Airflow 2
OMW312  advisory  a scheduled DAG without ``catchup=``: the default became ``False``
OMW313  advisory  an ``.airflowignore``: Airflow 3 reads its patterns as globs, not regexps
======  ========  ========================================================================
"""

from __future__ import annotations

import ast
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, Literal

Severity = Literal["breaking", "advisory"]
BREAKING: Severity = "breaking"
ADVISORY: Severity = "advisory"

TESTED_RUFF_VERSION = "0.17.6"
"""The ruff whose Airflow rules :data:`RULES` classifies (the ``cli`` extra pins it)."""

SYNTAX_ERROR_CODE = "invalid-syntax"
"""ruff reports a file that does not parse without a rule code; this is the code we give it."""

RUFF_SELECTION = ("--select", "AIR", "--preview")
"""Every Airflow rule, preview ones included (``AIR003``, ``AIR004``, ``AIR201``, ``AIR202``,
``AIR304``, ``AIR321`` exist only in preview)."""


@dataclass(frozen=True)
class Rule:
    """One rule code: its name, its severity and why it has that severity."""

    code: str
    name: str
    severity: Severity
    why: str


def _rules(*rules: Rule) -> dict[str, Rule]:
    return {rule.code: rule for rule in rules}


RULES: Mapping[str, Rule] = _rules(
    # ruff 0.17.6, `ruff rule --all --output-format json`, every code starting with AIR.
    Rule("AIR001", "airflow-variable-name-task-id-mismatch", ADVISORY, "naming style"),
    Rule(
        "AIR002",
        "airflow-dag-no-schedule-argument",
        BREAKING,
        "Airflow 3's default schedule is None: a DAG without one silently stops running daily",
    ),
    Rule("AIR003", "airflow-variable-get-outside-task", ADVISORY, "slows DAG parsing"),
    Rule("AIR004", "airflow-task-branch-as-short-circuit", ADVISORY, "readability"),
    Rule("AIR201", "airflow-xcom-pull-in-template-string", ADVISORY, "readability"),
    Rule("AIR202", "airflow-task-implicit-multiple-outputs", ADVISORY, "explicitness"),
    Rule("AIR301", "airflow3-removal", BREAKING, "removed in Airflow 3"),
    Rule(
        "AIR302",
        "airflow3-moved-to-provider",
        BREAKING,
        "gone from Airflow 3 core, with no alias; lives in a provider now",
    ),
    Rule(
        "AIR303",
        "airflow3-incompatible-function-signature",
        BREAKING,
        "raises at run time on Airflow 3",
    ),
    Rule(
        "AIR304",
        "airflow3-dag-dynamic-value",
        BREAKING,
        "a new DAG version on every parse: the metadata database grows without bound",
    ),
    Rule(
        "AIR311",
        "airflow3-suggested-update",
        ADVISORY,
        "deprecated; still works on Airflow 3 through a compatibility layer",
    ),
    Rule(
        "AIR312",
        "airflow3-suggested-to-move-to-provider",
        ADVISORY,
        "deprecated; still works on Airflow 3 through the standard provider's alias",
    ),
    Rule("AIR321", "airflow31-moved", ADVISORY, "moved in Airflow 3.1; the old path still works"),
    Rule(SYNTAX_ERROR_CODE, "invalid-syntax", BREAKING, "the file does not parse"),
    # openmwaa's own checks: see the module docstring.
    Rule(
        "OMW301",
        "removed-context-variable-in-template",
        BREAKING,
        "Airflow 3 templates no longer define it: rendering fails",
    ),
    Rule(
        "OMW302",
        "removed-context-variable-in-code",
        BREAKING,
        "Airflow 3 no longer puts it in the task context or on the object",
    ),
    Rule("OMW303", "removed-module-import", BREAKING, "the import fails: the DAG does not load"),
    Rule(
        "OMW304",
        "metadata-database-access",
        BREAKING,
        "Airflow 3 tasks cannot use the metadata database directly",
    ),
    Rule(
        "OMW311",
        "schedule-logical-date",
        ADVISORY,
        "dates move unless [scheduler] create_cron_data_intervals = True",
    ),
    Rule("OMW312", "implicit-catchup", ADVISORY, "catchup_by_default changed from True to False"),
    Rule("OMW313", "airflowignore-syntax", ADVISORY, "dag_ignore_file_syntax changed to glob"),
)


def classify(code: str) -> Severity:
    """The severity of a rule code.

    A code missing from :data:`RULES` (another ruff than :data:`TESTED_RUFF_VERSION`) follows
    ruff's numbering: ``AIR30x`` codes are removals in Airflow 3, so breaking; others advisory.
    """
    rule = RULES.get(code)
    if rule is not None:
        return rule.severity
    return BREAKING if code.startswith("AIR30") else ADVISORY


# --- Airflow 3 facts ------------------------------------------------------------------------

REMOVED_CONTEXT_VARIABLES: Mapping[str, str] = {
    "execution_date": "use `logical_date` (or `data_interval_start`)",
    "next_execution_date": "use `data_interval_end`",
    "next_ds": "use `{{ data_interval_end | ds }}`",
    "next_ds_nodash": "use `{{ data_interval_end | ds_nodash }}`",
    "prev_execution_date": "use `prev_data_interval_start_success`, or compute from "
    "`data_interval_start`",
    "prev_execution_date_success": "use `prev_data_interval_start_success`",
    "prev_ds": "use `{{ macros.ds_add(ds, -1) }}` on a daily schedule, or "
    "`prev_data_interval_start_success`",
    "prev_ds_nodash": "use `{{ macros.ds_add(ds, -1) | replace('-', '') }}` on a daily schedule",
    "tomorrow_ds": "use `{{ macros.ds_add(ds, 1) }}`",
    "tomorrow_ds_nodash": "use `{{ macros.ds_add(ds, 1) | replace('-', '') }}`",
    "yesterday_ds": "use `{{ macros.ds_add(ds, -1) }}`",
    "yesterday_ds_nodash": "use `{{ macros.ds_add(ds, -1) | replace('-', '') }}`",
    "conf": "the Airflow configuration is no longer in the context; pass the value as a "
    "Variable or a param",
    "triggering_dataset_events": "use `triggering_asset_events`",
}
"""Context variables Airflow 3 removed, with what to use instead."""

REMOVED_ATTRIBUTES: Mapping[str, str] = {
    "execution_date": "use `logical_date`: TaskInstance and DagRun no longer have this attribute",
    "external_trigger": "use `dag_run.run_type == 'manual'`",
}
"""Attributes Airflow 3 removed from ``TaskInstance``/``DagRun`` (``ti.x``, ``dag_run.x``)."""

_CONTEXT_OBJECTS = frozenset({"ti", "task_instance", "dag_run"})
_DATE_VARIABLES = frozenset(
    {
        "ds",
        "ds_nodash",
        "ts",
        "ts_nodash",
        "ts_nodash_with_tz",
        "logical_date",
        "data_interval_start",
        "data_interval_end",
    }
    | set(REMOVED_CONTEXT_VARIABLES)
)
_CONTEXT_HOLDERS = frozenset({"context", "ctx", "kwargs", "kw", "airflow_context", "task_context"})
_CONTEXT_METHODS = frozenset(
    {"execute", "poke", "pre_execute", "post_execute", "execute_complete", "on_kill"}
)
_CRON_PRESETS = frozenset(
    {"@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly", "@annually", "@midnight"}
)
_CRON_FIELD = re.compile(r"^[\w*/,?#-]+$")
_SCHEDULE_KEYWORDS = ("schedule", "schedule_interval", "timetable")
_DELTA_TYPES = frozenset({"timedelta", "relativedelta", "duration"})
_LEGACY_MODULE = re.compile(r"^airflow\.(operators|sensors|hooks)\.\w+_(operator|sensor|hook)$")
_REMOVED_MODULES = (
    "airflow.contrib",
    "airflow.operators.subdag",
    "airflow.operators.subdag_operator",
)
_SESSION_NAMES = frozenset({"provide_session", "create_session", "NEW_SESSION", "Session"})

TEMPLATE_SUFFIXES = (".sql", ".hql", ".sh", ".j2", ".jinja2")
"""Template files ``dag-check`` reads for removed context variables (besides DAG files)."""

AIRFLOWIGNORE = ".airflowignore"


def is_scanned_file(name: str) -> bool:
    """Whether openmwaa's own checks read a file of this name (ruff reads the ``.py`` files)."""
    return name.endswith(".py") or name.endswith(TEMPLATE_SUFFIXES) or name == AIRFLOWIGNORE


# --- findings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One problem at one place. ``line`` and ``column`` count from 1."""

    path: str
    line: int
    column: int
    code: str
    message: str
    fix: str | None = None
    source: Literal["ruff", "openmwaa"] = "openmwaa"
    subject: str = field(default="", compare=False)
    """The name the finding is about (``execution_date``, a module path): used to drop our
    findings that ruff already reports."""

    @property
    def severity(self) -> Severity:
        """``breaking`` or ``advisory``, from :func:`classify`."""
        return classify(self.code)

    def as_dict(self) -> dict[str, Any]:
        """The finding as ``--format json`` prints it."""
        rule = RULES.get(self.code)
        return {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "code": self.code,
            "rule": rule.name if rule else None,
            "severity": self.severity,
            "message": self.message,
            "fix": self.fix,
            "source": self.source,
        }


_BACKTICKED = re.compile(r"`([^`]+)`")


def _subject(message: str) -> str:
    match = _BACKTICKED.search(message)
    return match.group(1) if match else ""


def _ruff_hint(code: str, subject: str) -> str | None:
    """What to do, for common ruff findings that come without ruff's own fix."""
    if code == "AIR002":
        return "Set `schedule=` explicitly; Airflow 2's default was `timedelta(days=1)`"
    if code == "AIR304":
        return "Use a fixed value, e.g. `start_date=pendulum.datetime(2024, 1, 1, tz='UTC')`"
    if subject in REMOVED_CONTEXT_VARIABLES:
        return _capitalized(REMOVED_CONTEXT_VARIABLES[subject])
    if subject == "airflow.utils.dates.days_ago":
        return "Use a fixed start date, e.g. `pendulum.datetime(2024, 1, 1, tz='UTC')`"
    if subject.startswith("airflow.contrib"):
        return "Import it from its `airflow.providers.*` package"
    if "SubDagOperator" in subject:
        return "Use a TaskGroup"
    if subject == "provide_context":
        return "Remove it: the context always reaches the callable's keyword arguments"
    return None


def findings_from_ruff(diagnostics: Sequence[Mapping[str, Any]]) -> list[Finding]:
    """Turn ``ruff check --output-format json`` diagnostics into findings.

    A fix's message (ruff's ``help:`` line) becomes the finding's ``fix``; when ruff has none,
    a hint for common cases (``days_ago``, ``airflow.contrib``, context variables) is used.
    """
    findings = []
    for diagnostic in diagnostics:
        message = str(diagnostic.get("message", ""))
        subject = _subject(message)
        fix = diagnostic.get("fix") or {}
        location = diagnostic.get("location") or {}
        code = str(diagnostic.get("code") or SYNTAX_ERROR_CODE)
        findings.append(
            Finding(
                path=str(diagnostic.get("filename", "")),
                line=int(location.get("row") or 0),
                column=int(location.get("column") or 0),
                code=code,
                message=message,
                fix=fix.get("message") or _ruff_hint(code, subject),
                source="ruff",
                subject=subject,
            )
        )
    return findings


def drop_covered(own: Iterable[Finding], ruff: Iterable[Finding]) -> list[Finding]:
    """Our findings minus those ruff already reports.

    A context variable (``OMW302``) is covered by a ruff finding about the same name on the
    same line; a removed module (``OMW303``) by a ruff finding about anything from that module
    anywhere in the file.
    """
    by_line = {(f.path, f.line, f.subject) for f in ruff}
    subjects_by_file: dict[str, set[str]] = {}
    for f in ruff:
        subjects_by_file.setdefault(f.path, set()).add(f.subject)
    kept = []
    for finding in own:
        if finding.code == "OMW302" and (finding.path, finding.line, finding.subject) in by_line:
            continue
        if finding.code == "OMW303" and any(
            s == finding.subject or s.startswith(finding.subject + ".")
            for s in subjects_by_file.get(finding.path, ())
        ):
            continue
        kept.append(finding)
    return kept


# --- templates ------------------------------------------------------------------------------

_JINJA_BLOCK = re.compile(r"\{\{(.*?)\}\}|\{%(.*?)%\}", re.DOTALL)
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_IDENTIFIER = re.compile(r"(?<![\w.])([A-Za-z_]\w*)(?:\s*\.\s*([A-Za-z_]\w*))?")


def template_variables(text: str) -> Iterator[tuple[int, str, str]]:
    """``(offset, name, replacement)`` for each removed context variable inside a Jinja
    ``{{ }}`` or ``{% %}`` block of ``text``; quoted strings inside the block are skipped."""
    for block in _JINJA_BLOCK.finditer(text):
        group = 1 if block.group(1) is not None else 2
        start = block.start(group)
        inner = _QUOTED.sub(lambda m: " " * len(m.group(0)), block.group(group))
        for ident in _IDENTIFIER.finditer(inner):
            name, attribute = ident.group(1), ident.group(2)
            if name in REMOVED_CONTEXT_VARIABLES:
                yield start + ident.start(1), name, REMOVED_CONTEXT_VARIABLES[name]
            elif name in _CONTEXT_OBJECTS and attribute in REMOVED_ATTRIBUTES:
                yield start + ident.start(2), f"{name}.{attribute}", REMOVED_ATTRIBUTES[attribute]


def _template_date_names(text: str) -> set[str]:
    names = set()
    for block in _JINJA_BLOCK.finditer(text):
        inner = _QUOTED.sub(" ", block.group(1) or block.group(2) or "")
        names |= {m.group(1) for m in _IDENTIFIER.finditer(inner)} & _DATE_VARIABLES
    return names


def _line_and_column(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def scan_template(path: str, text: str) -> list[Finding]:
    """``OMW301`` findings in a template file (``.sql``, ``.sh``, ...)."""
    findings = []
    for offset, name, replacement in template_variables(text):
        line, column = _line_and_column(text, offset)
        findings.append(_template_finding(path, line, column, name, replacement))
    return findings


def _template_finding(path: str, line: int, column: int, name: str, fix: str) -> Finding:
    return Finding(
        path=path,
        line=line,
        column=column,
        code="OMW301",
        message=f"`{name}` is not in the Airflow 3 template context",
        fix=_capitalized(fix),
        subject=name,
    )


def scan_airflowignore(path: str, text: str) -> list[Finding]:
    """``OMW313`` for an ``.airflowignore`` with at least one pattern."""
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw.strip() and not raw.lstrip().startswith("#"):
            return [
                Finding(
                    path=path,
                    line=number,
                    column=1,
                    code="OMW313",
                    message="Airflow 3 reads `.airflowignore` patterns as globs; "
                    "Airflow 2 read them as regular expressions",
                    fix="Rewrite the patterns as globs, or set "
                    "`[core] dag_ignore_file_syntax = regexp`",
                    subject=AIRFLOWIGNORE,
                )
            ]
    return []


# --- Python DAG files -----------------------------------------------------------------------


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def _last_name(node: ast.expr) -> str:
    target = node.func if isinstance(node, ast.Call) else node
    return _dotted(target).rsplit(".", 1)[-1]


def _is_task_decorator(node: ast.expr) -> bool:
    target = node.func if isinstance(node, ast.Call) else node
    dotted = _dotted(target)
    return dotted == "task" or dotted.startswith("task.") or dotted.endswith(".task")


def _is_dag_call(node: ast.Call) -> bool:
    return _last_name(node.func) == "DAG"


def _is_dag_decorator(node: ast.expr) -> bool:
    return _last_name(node) == "dag"


def _interval_kind(value: ast.expr) -> str | None:
    """``cron`` for a cron string or preset, ``timedelta`` for a timedelta-like call; else None.

    Airflow 3 turns both into trigger timetables by default (logical date = run time).
    """
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        text = value.value.strip()
        fields = text.split()
        cron = len(fields) in (5, 6) and all(map(_CRON_FIELD.match, fields))
        return "cron" if text in _CRON_PRESETS or cron else None
    if isinstance(value, ast.Call) and _last_name(value.func) in _DELTA_TYPES:
        return "timedelta"
    return None


def _docstrings(tree: ast.Module) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                ids.add(id(body[0].value))
    return ids


_Located = ast.expr | ast.stmt | ast.arg


class _Scanner:
    """One pass over one module's tree, collecting openmwaa findings."""

    def __init__(self, path: str, source: str, tree: ast.Module) -> None:
        self.path = path
        self.source = source
        self.lines = source.splitlines(keepends=True)
        self.tree = tree
        self.findings: list[Finding] = []
        self.date_names: set[str] = set()
        self.callables = {
            kw.value.id
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            for kw in node.keywords
            if kw.arg == "python_callable" and isinstance(kw.value, ast.Name)
        }
        self.context_names = set(_CONTEXT_HOLDERS) | _context_names(tree)
        self.settings_aliases = {  # from airflow import settings [as alias]
            alias.asname or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "airflow" and node.level == 0
            for alias in node.names
            if alias.name == "settings"
        }

    def column(self, node: _Located) -> int:
        """The 1-based character column of a node (ast counts UTF-8 bytes from 0)."""
        line = self.lines[node.lineno - 1] if node.lineno <= len(self.lines) else ""
        return len(line.encode()[: node.col_offset].decode(errors="replace")) + 1

    def add(self, node: _Located, code: str, message: str, fix: str | None, subject: str) -> None:
        self.findings.append(
            Finding(self.path, node.lineno, self.column(node), code, message, fix, subject=subject)
        )

    def run(self) -> list[Finding]:
        docstrings = _docstrings(self.tree)
        skip = {
            id(part)
            for n in ast.walk(self.tree)
            if isinstance(n, ast.JoinedStr)
            for part in n.values
        }
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                self.imports(node)
            elif isinstance(node, ast.Constant | ast.JoinedStr):
                if id(node) not in docstrings and id(node) not in skip:
                    self.string(node)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                self.function(node)
            elif isinstance(node, ast.Attribute):
                self.attribute(node)
            elif isinstance(node, ast.Subscript):
                self.subscript(node)
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Call):
                self.call(node)
        self.schedules()
        return sorted(self.findings, key=lambda f: (f.line, f.column, f.code))

    # imports: removed modules (OMW303) and the ORM session (OMW304)
    def imports(self, node: ast.Import | ast.ImportFrom) -> None:
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            modules = [node.module or ""] if node.level == 0 else []
        for module in modules:
            if (
                module in _REMOVED_MODULES
                or module.startswith("airflow.contrib.")
                or _LEGACY_MODULE.match(module)
            ):
                hint = "Use a TaskGroup" if "subdag" in module else _legacy_hint(module)
                self.add(node, "OMW303", f"`{module}` does not exist in Airflow 3", hint, module)
        if not isinstance(node, ast.ImportFrom) or node.level != 0:
            return
        names = {alias.name for alias in node.names}
        source = node.module or ""
        if (source == "airflow.settings" and names & {"Session", "engine"}) or (
            source in ("airflow.utils.session", "airflow.utils.db") and names & _SESSION_NAMES
        ):
            self.add(
                node,
                "OMW304",
                f"`{source}` gives direct metadata database access, which Airflow 3 task "
                "code does not have",
                "Use the Airflow REST API (or the Airflow Python client) instead of ORM sessions",
                source,
            )

    # strings: Jinja templates (OMW301)
    def string(self, node: ast.Constant | ast.JoinedStr) -> None:
        if isinstance(node, ast.Constant) and not isinstance(node.value, str):
            return
        segment = ast.get_source_segment(self.source, node)
        if segment is None or ("{{" not in segment and "{%" not in segment):
            return
        self.date_names |= _template_date_names(segment)
        for offset, name, replacement in template_variables(segment):
            line, column = _line_and_column(segment, offset)
            if line == 1:
                column += self.column(node) - 1
            self.findings.append(
                _template_finding(self.path, node.lineno + line - 1, column, name, replacement)
            )

    # callable parameters named after removed variables (OMW302)
    def function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        arguments = node.args
        params = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
        is_callable = node.name in self.callables or any(
            _is_task_decorator(d) for d in node.decorator_list
        )
        if not is_callable:
            return
        for param in params:
            self.date_names |= {param.arg} & _DATE_VARIABLES
            if param.arg in REMOVED_CONTEXT_VARIABLES:
                self.add(
                    param,
                    "OMW302",
                    f"`{param.arg}` is not in the Airflow 3 task context: this parameter is "
                    "never filled",
                    _capitalized(REMOVED_CONTEXT_VARIABLES[param.arg]),
                    param.arg,
                )

    # ti.execution_date, dag_run.external_trigger (OMW302); settings.Session (OMW304)
    def attribute(self, node: ast.Attribute) -> None:
        if not isinstance(node.ctx, ast.Load):
            return
        base = _dotted(node.value)
        if base == "airflow.settings" or base in self.settings_aliases:
            if node.attr in ("Session", "engine"):
                self.add(
                    node,
                    "OMW304",
                    f"`airflow.settings.{node.attr}` gives direct metadata database access, "
                    "which Airflow 3 task code does not have",
                    "Use the Airflow REST API (or the Airflow Python client) instead",
                    f"airflow.settings.{node.attr}",
                )
            return
        if node.attr in REMOVED_ATTRIBUTES and not (
            isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
        ):
            self.date_names |= {node.attr} & _DATE_VARIABLES
            self.add(
                node,
                "OMW302",
                f"`{node.attr}` is removed from TaskInstance and DagRun in Airflow 3",
                _capitalized(REMOVED_ATTRIBUTES[node.attr]),
                node.attr,
            )

    # context["execution_date"] (OMW302)
    def subscript(self, node: ast.Subscript) -> None:
        if isinstance(node.value, ast.Name) and node.value.id in self.context_names:
            self.context_key(node.slice)

    def context_key(self, key: ast.expr) -> None:
        if not isinstance(key, ast.Constant) or not isinstance(key.value, str):
            return
        self.date_names |= {key.value} & _DATE_VARIABLES
        if key.value in REMOVED_CONTEXT_VARIABLES:
            self.add(
                key,
                "OMW302",
                f"`{key.value}` is not in the Airflow 3 task context",
                _capitalized(REMOVED_CONTEXT_VARIABLES[key.value]),
                key.value,
            )

    # context.get("execution_date") (OMW302); DagRun.find(...) (OMW304)
    def call(self, node: ast.Call) -> None:
        func = node.func
        if not isinstance(func, ast.Attribute) or not isinstance(func.value, ast.Name):
            return
        if func.attr == "get" and func.value.id in self.context_names and node.args:
            self.context_key(node.args[0])
        elif func.value.id == "DagRun" and func.attr == "find":
            self.add(
                node,
                "OMW304",
                "`DagRun.find` queries the metadata database, which Airflow 3 task code cannot",
                "Use the Airflow REST API (or the Airflow Python client) instead",
                "DagRun.find",
            )

    # schedules whose dates move (OMW311) and implicit catchup (OMW312)
    def schedules(self) -> None:
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Call) and _is_dag_call(node):
                self.dag_arguments(node, node.keywords)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for decorator in node.decorator_list:
                    if isinstance(decorator, ast.Call) and _is_dag_decorator(decorator):
                        self.dag_arguments(decorator, decorator.keywords)

    def dag_arguments(self, node: ast.Call, keywords: list[ast.keyword]) -> None:
        if any(kw.arg is None for kw in keywords):  # DAG(**settings): cannot tell
            return
        by_name = {kw.arg: kw.value for kw in keywords if kw.arg}
        schedule = next((by_name[k] for k in _SCHEDULE_KEYWORDS if k in by_name), None)
        if schedule is None or not _runs_on_time(schedule):
            return
        kind = _interval_kind(schedule)
        if kind is not None and self.date_names:
            if isinstance(schedule, ast.Constant):
                text = str(schedule.value).strip()
            else:
                text = ast.get_source_segment(self.source, schedule) or kind
            dates = ", ".join(f"`{n}`" for n in sorted(self.date_names))
            timetable = (
                "CronDataIntervalTimetable" if kind == "cron" else "DeltaDataIntervalTimetable"
            )
            self.add(
                schedule,
                "OMW311",
                f"{kind} schedule `{text}` with {dates}: on Airflow 3 a run's logical date is the "
                "time it runs, not the start of the interval it covers",
                f"Keep Airflow 2 dates with `schedule={timetable}(...)` (airflow.sdk), or set "
                "`[scheduler] create_cron_data_intervals = True`",
                text,
            )
        if "catchup" not in by_name:
            self.add(
                node,
                "OMW312",
                "no `catchup=`: Airflow 3 does not run missed intervals by default "
                "(MWAA on Airflow 2 did)",
                "Set `catchup=` explicitly",
                "catchup",
            )


def _context_names(tree: ast.Module) -> set[str]:
    """Names that hold a task context: ``x = get_current_context()``, the ``context`` parameter
    of ``execute``-like methods and every ``**kwargs`` parameter."""
    names = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and _last_name(node.value.func) == "get_current_context"
        ):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            arguments = node.args
            if node.name in _CONTEXT_METHODS and len(arguments.args) >= 2:
                names.add(arguments.args[1].arg)
            if arguments.kwarg is not None:
                names.add(arguments.kwarg.arg)
    return names


def _runs_on_time(schedule: ast.expr) -> bool:
    """Whether a schedule runs on the clock (cron, timedelta, timetable), not on demand, once,
    continuously or on assets, which catchup does not concern."""
    if isinstance(schedule, ast.Constant):
        return schedule.value not in (None, "@once", "@continuous")
    if isinstance(schedule, ast.List | ast.Tuple | ast.Set | ast.BinOp):
        return False
    if isinstance(schedule, ast.Call):
        name = _last_name(schedule.func)
        return not any(word in name for word in ("Dataset", "Asset"))
    return True


def _capitalized(text: str) -> str:
    return text[0].upper() + text[1:]


def _legacy_hint(module: str) -> str:
    if module.startswith("airflow.contrib"):
        return "Import it from its `airflow.providers.*` package"
    return "Import it from `airflow.providers.standard` or the provider that now holds it"


def scan_python(path: str, source: str) -> list[Finding]:
    """openmwaa's checks on one Python file; none when it does not parse (ruff reports that)."""
    try:
        tree = ast.parse(source, filename=path)
    except (SyntaxError, ValueError):
        return []
    return _Scanner(path, source, tree).run()


def scan_text(path: str, text: str) -> list[Finding]:
    """openmwaa's checks on one file, chosen by its name (see :func:`is_scanned_file`)."""
    name = PurePath(path).name
    if name == AIRFLOWIGNORE:
        return scan_airflowignore(path, text)
    if name.endswith(".py"):
        return scan_python(path, text)
    if name.endswith(TEMPLATE_SUFFIXES):
        return scan_template(path, text)
    return []


# --- the report -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    """Everything ``dag-check`` found, sorted by file and position."""

    findings: tuple[Finding, ...]
    files_scanned: int
    ruff_version: str
    target_version: str = "3"

    @classmethod
    def build(
        cls,
        ruff: Iterable[Finding],
        own: Iterable[Finding],
        *,
        files_scanned: int,
        ruff_version: str,
        target_version: str = "3",
    ) -> Report:
        """Merge ruff's findings and ours, dropping ours that ruff already reports."""
        ruff = list(ruff)
        merged = sorted(
            {*ruff, *drop_covered(own, ruff)},
            key=lambda f: (f.path, f.line, f.column, f.code, f.message),
        )
        return cls(tuple(merged), files_scanned, ruff_version, target_version)

    @property
    def breaking(self) -> list[Finding]:
        """The findings that break on Airflow 3."""
        return [f for f in self.findings if f.severity == BREAKING]

    @property
    def advisory(self) -> list[Finding]:
        """The findings that still work on Airflow 3."""
        return [f for f in self.findings if f.severity == ADVISORY]

    @property
    def exit_code(self) -> int:
        """1 when any finding is breaking, else 0."""
        return 1 if self.breaking else 0

    def as_dict(self, display: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The report as ``--format json`` prints it; ``display`` renames paths."""
        display = display or {}
        findings = []
        for finding in self.findings:
            item = finding.as_dict()
            item["path"] = display.get(finding.path, finding.path)
            findings.append(item)
        return {
            "target_version": self.target_version,
            "ruff_version": self.ruff_version,
            "summary": {
                "breaking": len(self.breaking),
                "advisory": len(self.advisory),
                "files_scanned": self.files_scanned,
                "files_with_findings": len({f.path for f in self.findings}),
                "by_code": dict(sorted(Counter(f.code for f in self.findings).items())),
            },
            "exit_code": self.exit_code,
            "findings": findings,
        }


def render_json(report: Report, display: Mapping[str, str] | None = None) -> str:
    """The machine-readable report (``--format json``)."""
    return json.dumps(report.as_dict(display), indent=2)


def render_text(report: Report, display: Mapping[str, str] | None = None) -> str:
    """The readable report: findings grouped by file, then totals."""
    display = display or {}
    out = [
        f"Airflow {report.target_version} readiness (ruff {report.ruff_version} AIR rules "
        "and openmwaa checks)"
    ]
    if report.ruff_version != TESTED_RUFF_VERSION:
        out.append(
            f"note: openmwaa classifies the rules of ruff {TESTED_RUFF_VERSION}; "
            f"this is ruff {report.ruff_version}"
        )
    current = None
    for finding in report.findings:
        if finding.path != current:
            current = finding.path
            out += ["", display.get(finding.path, finding.path)]
        place = f"{finding.line}:{finding.column}"
        out.append(f"  {place:<8} {finding.code:<7} {finding.severity:<8}  {finding.message}")
        if finding.fix:
            out.append(f"  {'':<8} {'':<7} {'':<8}  fix: {finding.fix}")
    out.append("")
    breaking, advisory = report.breaking, report.advisory
    out.append(
        f"{len(breaking)} breaking in {len({f.path for f in breaking})} file(s), "
        f"{len(advisory)} advisory in {len({f.path for f in advisory})} file(s); "
        f"{report.files_scanned} file(s) scanned."
    )
    if report.findings:
        counts = Counter(f.code for f in report.findings)
        out.append("By rule: " + ", ".join(f"{code} {n}" for code, n in sorted(counts.items())))
    if breaking:
        out.append(
            "Breaking findings stop a DAG from loading, fail a task or change how the DAG runs "
            "on Airflow 3: fix them before moving."
        )
    else:
        out.append("No breaking findings.")
    return "\n".join(out) + "\n"
