"""``bank policy new``: write a complete, installable policy package.

The package is rendered from ``bank_cli/templates/policy/*.tmpl`` (package
data, ``string.Template`` syntax) into a new directory:

    NAME/                       (or --dir PATH)
      pyproject.toml            distribution NAME-policies, entry points NAME.<rule>
      README.md
      NAME_policies/            the import package: fees.py, limits.py, approvals.py,
                                and profile.toml, a sample bank profile, id NAME
                                (package data: the wheel carries it; profile_resource())
      tests/                    conformance (bank_core.testing), package and behaviour tests

The import package is ``NAME_policies``, not ``NAME``: a short institution
name as a top-level module would collide too easily with other modules (the
same reason the kernel's folders hold ``bank_cli``, not ``cli``).
"""

from __future__ import annotations

import importlib.metadata
import keyword
import os
import re
import shutil
import tempfile
from importlib.resources import files
from pathlib import Path
from string import Template

import typer

from bank_cli.state import EXIT_INVALID, command, emit, fail, out, state

app = typer.Typer(help="Policy packages: start a new institution's drivers.\n\n"
                       "Example: bank policy new acme",
                  no_args_is_help=True)

NAME_RE = re.compile(r"\A[a-z][a-z0-9_]*\Z")
MAX_NAME_LENGTH = 40
RESERVED_NAMES = frozenset({"core", "bank", "test", "tests"})  # core.* are the kernel's drivers

# (template, target) pairs; targets are Templates over the same values.
FILES = [
    ("pyproject.toml.tmpl", "pyproject.toml"),
    ("README.md.tmpl", "README.md"),
    ("gitignore.tmpl", ".gitignore"),
    ("package/__init__.py.tmpl", "${package}/__init__.py"),
    ("package/profile.toml.tmpl", "${package}/profile.toml"),
    ("package/fees.py.tmpl", "${package}/fees.py"),
    ("package/limits.py.tmpl", "${package}/limits.py"),
    ("package/approvals.py.tmpl", "${package}/approvals.py"),
    ("tests/test_conformance.py.tmpl", "tests/test_${name}_conformance.py"),
    ("tests/test_drivers.py.tmpl", "tests/test_${name}_drivers.py"),
    ("tests/test_package.py.tmpl", "tests/test_${name}_package.py"),
]
DRIVERS = {"fee": "transfer_fee", "limit": "daily_withdrawal", "approval": "large_transfer_review"}


class ScaffoldError(Exception):
    """The package cannot be written; the message is one line."""


def check_name(name: str) -> None:
    if not NAME_RE.match(name) or not name.isidentifier():
        raise ScaffoldError(f"name {name!r} must be a lowercase Python identifier: a letter, then "
                            "letters, digits or '_' (for example 'acme' or 'acme_bank')")
    if keyword.iskeyword(name):
        raise ScaffoldError(f"name {name!r} is a Python keyword; choose another")
    if len(name) > MAX_NAME_LENGTH:
        raise ScaffoldError(f"name {name!r} is longer than {MAX_NAME_LENGTH} characters")
    if name in RESERVED_NAMES:
        raise ScaffoldError(f"name {name!r} is reserved; choose your institution's name")
    taken = {ep.dist.name if ep.dist else "?" for namespace in ("bank.policy.fee", "bank.policy.limit",
                                                               "bank.policy.approval")
             for ep in importlib.metadata.entry_points(group=namespace) if ep.name.startswith(f"{name}.")}
    if taken:
        raise ScaffoldError(f"entry points {name}.* are already installed by {', '.join(sorted(taken))}; "
                            "choose another name")


def distribution_name(name: str) -> str:
    return f"{name.replace('_', '-')}-policies"


def values_for(name: str) -> dict[str, str]:
    from bank_core.contract import CONTRACT_VERSION

    title = name.replace("_", " ").title()
    return {"name": name, "package": f"{name}_policies", "distribution": distribution_name(name),
            "title": title, "title_class": title.replace(" ", ""),
            "contract_version": str(CONTRACT_VERSION)}


def write_package(name: str, target: Path) -> list[Path]:
    """Render the package into ``target`` (which must not exist) and return
    the files written. All or nothing: rendered into a temporary sibling
    directory, then renamed into place."""
    check_name(name)
    if target.exists() or target.is_symlink():
        raise ScaffoldError(f"{target} already exists; choose a new directory with --dir")
    values = values_for(name)
    templates = files("bank_cli").joinpath("templates", "policy")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        written = []
        for template, relative in FILES:
            text = Template(templates.joinpath(template).read_text("utf-8")).substitute(values)
            path = Path(Template(relative).substitute(values))
            (staging / path).parent.mkdir(parents=True, exist_ok=True)
            (staging / path).write_text(text, encoding="utf-8")
            written.append(path)
        staging.chmod(0o777 & ~_umask())  # mkdtemp makes it private; make it like any new directory
        os.rename(staging, target)  # fails if target appeared meanwhile: never overwrite
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [target / path for path in written]


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


@app.command("new")
@command
def new(ctx: typer.Context,
        name: str = typer.Argument(..., metavar="NAME",
                                   help="Institution name: lowercase letters, digits, '_'."),
        directory: str = typer.Option(None, "--dir", metavar="PATH",
                                      help="Directory to create (default: ./NAME); must not exist.")
        ) -> None:
    """Write a complete, installable policy package for a new institution.

    One fee, one limit and one approval driver (each with a Params model and
    a docstring saying what to change), pyproject.toml with their entry
    points NAME.<rule>, a sample profile.toml (in the package), a README and tests that pass
    out of the box. Exit 5 if NAME is not a lowercase identifier or the
    directory exists.

    Example: bank policy new acme && pip install -e 'acme[test]' && bank profile apply acme/acme_policies/profile.toml
    """
    st = state(ctx)
    target = Path(directory if directory is not None else name)
    try:
        written = write_package(name, target)
    except (ScaffoldError, OSError) as exc:
        fail(EXIT_INVALID, str(exc))
    values = values_for(name)
    document = {"path": str(target), "name": name, "package": values["package"],
                "distribution": values["distribution"],
                "entry_points": {slot: f"{name}.{rule}" for slot, rule in DRIVERS.items()},
                "files": [str(p) for p in written]}

    def human() -> None:
        out.print(f"created {target}: distribution {values['distribution']}, "
                  f"package {values['package']}", highlight=False, markup=False)
        for path in written:
            out.print(f"  {path}", highlight=False, markup=False)
        out.print(f"next:\n  pip install -e '{target}[test]'\n  (cd {target} && pytest)\n"
                  f"  bank profile apply {target / values['package'] / 'profile.toml'}", highlight=False,
                  markup=False)

    emit(st, document, human)
