"""Write ``ImagesClient``'s public methods from ``AsyncImagesClient``'s, as httpcore does.

Reads ``openai_images/_client.py`` with ``ast`` and replaces the generated regions of
``openai_images/_sync.py`` (between the ``BEGIN GENERATED``/``END GENERATED`` markers):

- the ``TYPE_CHECKING`` imports of the names the generated signatures use;
- inside ``ImagesClient``: ``__init__`` (the same keyword arguments, kept to rebuild the
  async client in a forked child), each public property, and each public method with its
  overloads, parameters, defaults and docstring. ``await x`` becomes ``x``,
  ``async with``/``async for`` become ``with``/``for``, and the async classes become
  their sync twins (``AsyncImageStream`` -> ``ImageStream`` ...).

A method's body hands the call to the runner (``async def``), wraps a stream it returns in
an ``ImageStream``, or, for a method returning an ``AsyncBatchIterator``, builds a
``BatchIterator`` around it. ``aclose`` and the dunder methods stay hand-written.

Usage, from the repository root::

    python tools/unasync.py          # rewrite openai_images/_sync.py
    python tools/unasync.py --check  # exit 1 if it is stale (nox -s lint runs this)

The result is passed through ``ruff`` (import sorting and formatting), which must be
installed.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "openai_images" / "_client.py"
TARGET = ROOT / "openai_images" / "_sync.py"
ASYNC_CLASS, SYNC_CLASS = "AsyncImagesClient", "ImagesClient"

# Async names and their sync twins, in annotations and docstrings alike.
RENAMES = {
    "AsyncImagesClient": "ImagesClient",
    "AsyncImageStream": "ImageStream",
    "AsyncBatchIterator": "BatchIterator",
    "AsyncRawResponses": "RawResponses",
    "BatchAPI": "SyncBatchAPI",
}
# Async helper objects a member returns, and the sync twin that wraps one with the runner.
WRAPPED = {"AsyncRawResponses": "RawResponses", "BatchAPI": "SyncBatchAPI"}
# Decorators carried over to the sync twin as written (the others are understood here).
CARRIED = {"deprecated"}
# Hand-written in the sync client under another name, or not at all.
HAND_WRITTEN = {"aclose"}

IMPORTS = ("# ---- BEGIN GENERATED IMPORTS", "# ---- END GENERATED IMPORTS")
MEMBERS = ("# ---- BEGIN GENERATED METHODS", "# ---- END GENERATED METHODS")
NOTE = "(tools/unasync.py; do not edit by hand) ----"


def translate(text: str) -> str:
    """Turn async prose or code into its sync twin.

    >>> translate("async with client.map(r) as results: await client.send(x)")
    'with client.map(r) as results: client.send(x)'
    """
    text = re.sub(r"\bawait\s+", "", text)
    text = re.sub(r"\basync\s+(with|for)\b", r"\1", text)
    for old, new in RENAMES.items():
        text = re.sub(rf"\b{old}\b", new, text)
    return text


def _segment(source: str, node: ast.AST) -> str:
    text = ast.get_source_segment(source, node)
    if text is None or "\n" in text:
        text = ast.unparse(node)
    return text


def _decorators(node: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    return {name for decorator in node.decorator_list for name in _decorators_of(decorator)}


def _decorators_of(decorator: ast.expr) -> set[str]:
    """The name a decorator is known by (``deprecated`` for ``@deprecated("...")``)."""
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, ast.Attribute):
        return {target.attr}
    return set()


def _names(node: ast.AST) -> set[str]:
    """The top-level names an expression uses (``os`` for ``os.PathLike``)."""
    return {child.id for child in ast.walk(node) if isinstance(child, ast.Name)}


class _Writer:
    """Collects the generated members and the names their annotations use."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: list[str] = []
        self.annotation_names: set[str] = set()
        # Default values and decorators are evaluated when the class is made: these names
        # are imported for real, not only for type checkers.
        self.runtime_names: set[str] = set()

    def annotation(self, node: ast.expr) -> str:
        # The names of the sync annotation, not the async one: a wrapped twin
        # (``RawResponses``) needs no import of what it wraps.
        text = translate(_segment(self.source, node))
        self.annotation_names |= _names(ast.parse(text, mode="eval"))
        return text

    def parameters(self, args: ast.arguments) -> list[str]:
        """The parameter list, one entry each, without ``self``."""
        positional = [*args.posonlyargs, *args.args]
        defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
        defaults += args.defaults
        entries: list[str] = []

        def entry(arg: ast.arg, default: ast.expr | None, prefix: str = "") -> str:
            text = prefix + arg.arg
            if arg.annotation is not None:
                text += f": {self.annotation(arg.annotation)}"
            if default is not None:
                self.runtime_names |= _names(default)
                joiner = " = " if arg.annotation is not None else "="
                text += joiner + _segment(self.source, default)
            return text

        for index, (arg, default) in enumerate(zip(positional, defaults, strict=True)):
            if index == 0 and arg.arg == "self":
                continue
            entries.append(entry(arg, default))
            if args.posonlyargs and arg is args.posonlyargs[-1]:
                entries.append("/")
        if args.vararg is not None:
            entries.append(entry(args.vararg, None, "*"))
        elif args.kwonlyargs:
            entries.append("*")
        for arg, kw_default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
            entries.append(entry(arg, kw_default))
        if args.kwarg is not None:
            entries.append(entry(args.kwarg, None, "**"))
        return entries

    @staticmethod
    def forwarded(args: ast.arguments) -> list[str]:
        """The arguments that pass every parameter on, as the call received them."""
        positional = [arg.arg for arg in [*args.posonlyargs, *args.args] if arg.arg != "self"]
        out = list(positional)
        if args.vararg is not None:
            out.append(f"*{args.vararg.arg}")
        out += [f"{arg.arg}={arg.arg}" for arg in args.kwonlyargs]
        if args.kwarg is not None:
            out.append(f"**{args.kwarg.arg}")
        return out

    def signature(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
        entries = self.parameters(node.args)
        returns = f" -> {self.annotation(node.returns)}" if node.returns is not None else ""
        if not entries:
            return f"    def {node.name}(self){returns}:"
        params = "".join(f"        {entry},\n" for entry in entries)
        return f"    def {node.name}(\n        self,\n{params}    ){returns}:"

    def docstring(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
        first = node.body[0] if node.body else None
        if (
            isinstance(first, ast.Expr)
            and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)
        ):
            literal = ast.get_source_segment(self.source, first)
            assert literal is not None
            return ["        " + translate(literal)]
        return []

    def emit(self, *lines: str) -> None:
        self.lines.extend(lines)


def _body(
    writer: _Writer,
    node: ast.FunctionDef | ast.AsyncFunctionDef,
    *,
    properties: bool,
    overloaded: bool,
) -> list[str]:
    """The statements of a generated member."""
    name = node.name
    arguments = "".join(f"{argument}, " for argument in writer.forwarded(node.args))
    returned = _names(node.returns) if node.returns is not None else set()
    wrapped = returned & set(WRAPPED)
    if properties and wrapped:
        (twin,) = (WRAPPED[found] for found in wrapped)
        return [f"        return {twin}(self._async.{name}, self._runner.run)"]
    if properties:
        return [f"        return self._async.{name}"]
    if name == "__init__":
        return [f"        self._setup(functools.partial({ASYNC_CLASS}, {arguments}))"]
    returns = node.returns
    if isinstance(node, ast.AsyncFunctionDef):
        lines = []
        method = f"self._async.{name}"
        if overloaded:
            # The overloads take ``stream=True`` or ``stream=False``; the implementation,
            # called here with the caller's ``bool``, takes both.
            assert returns is not None
            result = _segment(writer.source, returns)
            writer.annotation_names |= {"Awaitable", "Callable"}
            lines.append(f'        {name} = cast("Callable[..., Awaitable[{result}]]", {method})')
            method = name
        call = f"self._runner.run({method}, {arguments})"
        if "AsyncImageStream" not in returned:
            return [*lines, f"        return {call}"]
        if isinstance(returns, ast.Subscript) and _names(returns.value) == {"AsyncImageStream"}:
            return [*lines, f"        return ImageStream({call}, self._runner)"]
        return [
            *lines,
            f"        result = {call}",
            "        if isinstance(result, AsyncImageStream):",
            "            return ImageStream(result, self._runner)",
            "        return result",
        ]
    if "AsyncBatchIterator" in returned:
        partial = f"functools.partial(self._async.{name}, {arguments})"
        return [f"        return self._batch_iterator({partial})"]
    if returned == {ASYNC_CLASS}:
        # A copy with other settings (with_options): it shares this client's loop and pool.
        return [f"        return self._derive(lambda client: client.{name}({arguments}))"]
    unknown = returned & set(RENAMES)
    if unknown:
        raise SystemExit(f"{ASYNC_CLASS}.{name} returns {unknown}: teach tools/unasync.py its twin")
    return [f"        return self._async.{name}({arguments})"]


def _members(source: str) -> tuple[list[str], set[str], set[str]]:
    module = ast.parse(source)
    (cls,) = [
        node for node in module.body if isinstance(node, ast.ClassDef) and node.name == ASYNC_CLASS
    ]
    writer = _Writer(source)
    overloads: set[str] = set()
    for node in cls.body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        public = not node.name.startswith("_") or node.name == "__init__"
        if not public or node.name in HAND_WRITTEN:
            continue
        decorators = _decorators(node)
        if decorators - {"overload", "property", *CARRIED}:
            raise SystemExit(f"{ASYNC_CLASS}.{node.name}: unknown decorators {decorators}")
        writer.emit("")
        for decorator in node.decorator_list:
            if _decorators_of(decorator) & CARRIED:
                writer.runtime_names |= _names(decorator)
                writer.emit(f"    @{_segment(writer.source, decorator)}")
        if "property" in decorators:
            writer.emit("    @property")
        if "overload" in decorators:
            writer.emit("    @overload", writer.signature(node) + " ...")
            overloads.add(node.name)
            continue
        writer.emit(writer.signature(node), *writer.docstring(node))
        overloaded = node.name in overloads
        writer.emit(
            *_body(writer, node, properties="property" in decorators, overloaded=overloaded)
        )
    return writer.lines, writer.annotation_names, writer.runtime_names


def _imported(tree: ast.Module) -> dict[str, ast.stmt]:
    """Each name a module binds at its top level (TYPE_CHECKING blocks included)."""
    bound: dict[str, ast.stmt] = {}

    def visit(statements: list[ast.stmt]) -> None:
        for statement in statements:
            if isinstance(statement, ast.If):
                visit(statement.body)
            elif isinstance(statement, (ast.Import, ast.ImportFrom)):
                for alias in statement.names:
                    bound[(alias.asname or alias.name).split(".")[0]] = statement
            elif isinstance(statement, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                bound[statement.name] = statement
            elif isinstance(statement, (ast.Assign, ast.AnnAssign)):
                targets = (
                    statement.targets if isinstance(statement, ast.Assign) else [statement.target]
                )
                for target in targets:
                    bound.update(dict.fromkeys(_names(target), statement))

    visit(tree.body)
    return bound


def _import_lines(
    needed: set[str], runtime: set[str], client: ast.Module, hand_written: set[str]
) -> list[str]:
    """``from`` imports of the names still missing: the ``runtime`` ones for real, the
    others (annotations only) in a TYPE_CHECKING block."""
    where = _imported(client)
    abc = ast.parse("from collections.abc import Awaitable, Callable").body[0]
    where = {"Awaitable": abc, "Callable": abc, **where}

    def line(name: str, indent: str) -> str:
        statement = where.get(name)
        if isinstance(statement, ast.ImportFrom):
            module = "." * statement.level + (statement.module or "")
            return f"{indent}from {module} import {name}"
        if isinstance(statement, ast.Import):
            return f"{indent}import {name}"
        if statement is not None:  # defined in _client.py itself
            return f"{indent}from ._client import {name}"
        raise SystemExit(f"tools/unasync.py: where does {name!r} come from?")

    missing = (needed | runtime) - hand_written - set(dir(__builtins__))
    now = [line(name, "") for name in sorted(missing & runtime)]
    later = [line(name, "    ") for name in sorted(missing - runtime)]
    return [*now, *(["if TYPE_CHECKING:", *later] if later else [])]


def _replace(text: str, markers: tuple[str, str], lines: list[str], indent: str) -> str:
    begin, end = markers
    pattern = re.compile(
        rf"^(?P<indent>[ ]*){re.escape(begin)}.*?\n.*?^[ ]*{re.escape(end)}[^\n]*\n",
        re.DOTALL | re.MULTILINE,
    )
    if not pattern.search(text):
        raise SystemExit(f"{TARGET.name} has no '{begin}' ... '{end}' region")
    region = "\n".join([f"{indent}{begin} {NOTE}", *lines, f"{indent}{end} ----", ""])
    return pattern.sub(lambda _: region, text, count=1)


def _without_generated(text: str) -> str:
    for begin, end in (IMPORTS, MEMBERS):
        text = re.sub(
            rf"^[ ]*{re.escape(begin)}.*?^[ ]*{re.escape(end)}[^\n]*\n",
            "",
            text,
            flags=re.DOTALL | re.MULTILINE,
        )
    return text


def _ruff(text: str) -> str:
    """Sort the imports and format, as ``nox -s lint`` expects the file."""
    for command in (
        ["check", "--select", "I", "--fix-only", "--quiet", "--exit-zero"],
        ["format", "--quiet"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *command, "--stdin-filename", str(TARGET), "-"],
            input=text,
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
        )
        if done.returncode != 0:
            raise SystemExit(f"ruff {command[0]} failed:\n{done.stderr}")
        text = done.stdout
    return text


def generate(client_source: str, sync_source: str) -> str:
    """The new text of ``_sync.py``."""
    members, needed, runtime = _members(client_source)
    hand_written = set(_imported(ast.parse(_without_generated(sync_source))))
    imports = _import_lines(needed, runtime, ast.parse(client_source), hand_written)
    text = _replace(sync_source, IMPORTS, imports, "")
    text = _replace(text, MEMBERS, members, "    ")
    return _ruff(text)


def _diff(old: str, new: str) -> Iterator[str]:
    return difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"{TARGET.name} (on disk)",
        tofile=f"{TARGET.name} (generated)",
    )


def main(argv: list[str] | None = None) -> int:
    """Rewrite ``_sync.py``, or with ``--check`` report whether it is stale."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if _sync.py is stale")
    args = parser.parse_args(argv)
    old = TARGET.read_text(encoding="utf-8")
    new = generate(SOURCE.read_text(encoding="utf-8"), old)
    if args.check:
        if new != old:
            sys.stdout.writelines(_diff(old, new))
            print(f"\n{TARGET} is stale: run python tools/unasync.py", file=sys.stderr)
            return 1
        return 0
    if new != old:
        TARGET.write_text(new, encoding="utf-8")
        print(f"rewrote {TARGET}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
