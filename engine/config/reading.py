"""Reading a run's TOML files into one tree, and overrides (``--set``, sweep variants) on it.

A run starts from one file: ``configs/national.toml`` (the twelve provinces at once) or a
province file ``configs/provinces/<province>.toml`` (one province; it points at the national
file for the shared catalogue, rules and the national targets it takes a share of). The files
are read into one tree::

    run, targets, zonings, layers, compactness  national.toml
    assumptions, claims, options        claims.toml
    rules.{exclusions,penalties,ladders,reservations}  rules.toml
    suitability                         suitability.toml
    provinces.<slug>                    provinces/<slug>.toml

A config file may start from another: ``extends = "national.toml"`` at its top, resolved
relative to the file. The parent is read first (it may extend another in turn), and the
child's tables are merged over it key by key: a table merges with the parent's table of
the same name, any other value (a number, a text, a list) replaces the parent's. A path the
parent gives relative to itself (``run.claims``, ``run.provinces``, ``layers.*.path``, a
``run.grid`` that is a path, ...) keeps pointing at the same file; so do the national file's
paths in a province run. ``configs/national-gemeenten.toml`` is the national config
plus a zoning that way. The merged tree is what the run validates and the manifest records
(``config.resolved``); every file of the chain is among the run's input files.

``overrides`` address that tree with dotted keys (``"assumptions.housing_density_urban": 60``,
``"rules.exclusions.natura2000.enabled": False``, ``"provinces.utrecht.shares.nature": 0.1``).
A path must exist in the tree up to its last key; the last key may be new only where the
schema allows a new entry (the validation says so), never silently ignored.
"""

from __future__ import annotations

import copy
import os
import tomllib
from pathlib import Path
from typing import Any

from engine.config.model import Config, slugify
from engine.config.validation import (
    ConfigError,
    Origins,
    UnknownKeyError,
    Validator,
    did_you_mean,
    read_toml,
    show_path,
)

__all__ = [
    "TOP_SECTIONS",
    "RULE_KINDS",
    "load_raw",
    "apply_overrides",
    "parse_overrides",
    "load_config",
    "read_extended",
    "resolve_tree",
]

RULE_KINDS = ("exclusions", "penalties", "ladders", "reservations")
NATIONAL_SECTIONS = ("run", "targets", "zonings", "layers", "compactness")
CLAIMS_SECTIONS = ("assumptions", "claims", "options")
TOP_SECTIONS = NATIONAL_SECTIONS + CLAIMS_SECTIONS + ("rules", "suitability", "provinces")


# Keys whose values are paths relative to the file that writes them ("*": any entry).
RELATIVE_PATHS = (
    ("run", "claims"),
    ("run", "rules"),
    ("run", "suitability"),
    ("run", "provinces"),
    ("province", "national"),
    ("layers", "*", "path"),
)


def read_extended(path: Path, _children: tuple[Path, ...] = ()) -> tuple[dict, list[Path], list]:
    """A config file with its ``extends`` chain merged in (see the module's docstring).

    Returns the tree, the files of the chain (this one first, then each parent) and
    ``(key prefix, file)`` pairs, parents' first, saying which file each top table and each
    of its entries comes from. A missing, malformed or cyclic parent is a
    :class:`ConfigError` naming the file that extends it."""
    path = Path(path)
    data = read_toml(path)
    own = [(prefix, path) for prefix in _table_prefixes(data)]
    if "extends" not in data:
        return data, [path], own
    rel = Validator.of_file(path).string(data.pop("extends"), ("extends",))
    parent = (path.parent / rel).resolve()
    chain = (*_children, path.resolve())
    if parent in chain:
        cycle = " -> ".join(show_path(p) for p in (*chain[chain.index(parent) :], parent))
        raise ConfigError(
            path,
            "extends",
            f"{rel!r} leads back to a file of the chain ({cycle})",
            "let the base config extend nothing, and each variant extend only its base",
        )
    if not parent.is_file():
        raise ConfigError(
            path,
            "extends",
            f"{rel!r}: no such file ({show_path(parent)})",
            "name the config this one starts from, relative to this file's folder",
        )
    tree, files, origins = read_extended(parent, chain)
    _rebase_paths(tree, parent.parent, path.parent.resolve())
    return _merged(tree, data), [path, *files], origins + own


def _table_prefixes(data: dict) -> list[tuple]:
    """Each top table's key and those of its entries: the grain at which messages name a
    file (a child that adds one target is named for it, the parent for the rest)."""
    out = []
    for key, value in data.items():
        out.append((key,))
        if isinstance(value, dict):
            out += [(key, entry) for entry in value]
    return out


def _merged(parent: dict, child: dict) -> dict:
    """``child`` over ``parent``: tables merge key by key, other values replace."""
    out = dict(parent)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def _rebase_paths(tree: dict, parent_dir: Path, child_dir: Path) -> None:
    """Rewrite the parent's relative paths (:data:`RELATIVE_PATHS`) relative to the child's
    folder, so that they name the same files from there."""
    if parent_dir == child_dir:
        return

    def rebase(rel):
        if not isinstance(rel, str) or Path(rel).is_absolute():
            return rel  # the validation says what is wrong with a non-text
        return Path(os.path.relpath(parent_dir / rel, child_dir)).as_posix()

    def visit(node, keys):
        if not isinstance(node, dict) or not keys:
            return
        names = list(node) if keys[0] == "*" else [keys[0]]
        for name in (n for n in names if n in node):
            if len(keys) > 1:
                visit(node[name], keys[1:])
            elif isinstance(node[name], list):
                node[name] = [rebase(rel) for rel in node[name]]
            else:
                node[name] = rebase(node[name])

    for keys in RELATIVE_PATHS:
        visit(tree, keys)
    run = tree.get("run")
    if isinstance(run, dict) and is_grid_path(run.get("grid")):
        run["grid"] = rebase(run["grid"])


def is_grid_path(grid) -> bool:
    """Whether ``run.grid`` names a file or folder (relative to the config that says it)
    rather than a shipped grid (``"nl"``)."""
    return isinstance(grid, str) and (grid.endswith(".toml") or "/" in grid or os.sep in grid)


def load_raw(path) -> tuple[dict, str, Origins, list[Path]]:
    """Read the TOML files of a run into one tree. Returns (tree, scope, origins, files)."""
    path = Path(path)
    first, chain, first_origins = read_extended(path)
    if "province" in first and "run" not in first:
        return _load_province(path, first, chain, first_origins)
    if "run" not in first:
        raise ConfigError(
            path,
            "(file)",
            "neither a national config ([run]) nor a province config ([province])",
            "start from configs/national.toml or configs/provinces/<province>.toml",
        )
    origins = Origins()
    origins.extended = chain[1:]
    files = list(chain)
    Validator.of_file(path).keys(first, (), NATIONAL_SECTIONS)
    tree: dict[str, Any] = {}
    for key in NATIONAL_SECTIONS:
        tree[key] = first.get(key, {})
        origins.add((key,), path)
    for prefix, file in first_origins:
        origins.add(prefix, file)
    run = Validator.of_file(path).table(tree["run"], ("run",))
    for key in ("claims", "rules", "suitability"):
        if key not in run:
            raise ConfigError(
                path, f"run.{key}", "missing", f'name the file, e.g. {key} = "{key}.toml"'
            )
        rel = Validator.of_file(path).string(run[key], ("run", key))
        sub_path = (path.parent / rel).resolve()
        sub = read_toml(sub_path, f"run.{key}")
        files.append(sub_path)
        check = Validator.of_file(sub_path)
        if key == "claims":
            check.keys(sub, (), CLAIMS_SECTIONS)
            for part in CLAIMS_SECTIONS:
                tree[part] = sub.get(part, {})
                origins.add((part,), sub_path)
        elif key == "rules":
            check.keys(sub, (), RULE_KINDS)
            tree["rules"] = {kind: sub.get(kind, {}) for kind in RULE_KINDS}
            origins.add(("rules",), sub_path)
        else:
            tree["suitability"] = sub
            origins.add(("suitability",), sub_path)
    tree["provinces"] = {}
    listed = run.get("provinces", [])
    Validator.of_file(path).strings(listed, ("run", "provinces"))
    for rel in listed:
        p = (path.parent / rel).resolve()
        data = read_toml(p, "run.provinces")
        files.append(p)
        meta = data.get("province")
        name = meta.get("name", p.stem) if isinstance(meta, dict) else p.stem
        slug = slugify(name)
        data["__path__"] = str(p)
        tree["provinces"][slug] = data
        origins.add(("provinces", slug), p)
    return tree, "national", origins, files


def _load_province(
    path: Path, first: dict, chain: list[Path], first_origins: list
) -> tuple[dict, str, Origins, list[Path]]:
    """A province file (``first``, read from the files of ``chain``): the national file it
    names, with this file as that province."""
    prov = first.get("province")
    if not isinstance(prov, dict) or "national" not in prov:
        raise ConfigError(
            path,
            "province.national",
            "missing",
            'name the national file, e.g. national = "../national.toml"',
        )
    rel = Validator.of_file(path).string(prov["national"], ("province", "national"))
    national = (path.parent / rel).resolve()
    tree, _, origins, files = load_raw(national)
    # The national file's paths are relative to its folder; the run's are to this file's.
    _rebase_paths(tree, national.parent, path.parent.resolve())
    slug = slugify(prov.get("name", path.stem))
    listed = tree["provinces"].get(slug)
    # A variant file for a province the national file lists replaces that one.
    if listed is None or Path(listed["__path__"]).resolve() != path.resolve():
        tree["provinces"][slug] = first
        origins.add(("provinces", slug), path)
        for prefix, file in first_origins:
            origins.add(("provinces", slug, *prefix), file)
        files += chain
    origins.extended = chain[1:]
    tree["provinces"][slug]["__path__"] = str(path)
    return tree, slug, origins, files


def apply_overrides(tree: dict, overrides: dict | None, origins: Origins) -> dict:
    """Set dotted keys in a copy of the tree. Every table on the way must exist (an unknown
    one is an :class:`UnknownKeyError` with a suggestion); a new last key is recorded in
    ``origins`` so that the validation, which knows what the schema allows, names it as the
    override's."""
    tree = copy.deepcopy(tree)
    for dotted, value in (overrides or {}).items():
        parts = str(dotted).split(".")
        if not all(parts):
            raise UnknownKeyError(
                "overrides",
                str(dotted),
                "an empty part in the key",
                "write dotted keys like assumptions.solar_yield",
            )
        node = tree
        for depth, part in enumerate(parts[:-1]):
            if not isinstance(node, dict) or part not in node:
                here = ".".join(parts[:depth]) or "the config"
                choices = [c for c in node if c != "__path__"] if isinstance(node, dict) else []
                raise UnknownKeyError(
                    "overrides",
                    dotted,
                    f"'{part}' is not a key of {here}",
                    did_you_mean(part, choices),
                )
            node = node[part]
        last = parts[-1]
        if not isinstance(node, dict):
            raise UnknownKeyError(
                "overrides",
                dotted,
                f"{'.'.join(parts[:-1])} is a value, not a table",
                "address a key inside a table",
            )
        if parts[0] == "assumptions" and len(parts) == 2:
            # Shorthand: an assumption's value. A new assumption is a change of the catalogue
            # (claims.toml), not a variant of a run.
            if last not in node:
                raise UnknownKeyError(
                    "overrides", dotted, "no such assumption", did_you_mean(last, list(node))
                )
            if not isinstance(node[last], dict):
                raise UnknownKeyError(
                    "overrides",
                    dotted,
                    "not an assumption table",
                    "fix the assumption in claims.toml",
                )
            node[last]["value"] = value
            continue
        if last not in node:
            origins.added.add(tuple(parts))
        node[last] = value
    return tree


def parse_overrides(pairs) -> dict:
    """``KEY=VALUE`` texts (the CLI's ``--set``) -> overrides; a value is read as a TOML value
    (number, true/false, "text", [list]) and otherwise kept as plain text, never run as code."""
    out = {}
    for pair in pairs:
        key, sep, raw = str(pair).partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                "--set", str(pair), "expected KEY=VALUE", "e.g. --set assumptions.solar_yield=1.2"
            )
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        out[key.strip()] = value
    return out


def resolve_tree(tree: dict) -> dict:
    """The tree as the manifest records it (without the bookkeeping of file paths)."""
    resolved = copy.deepcopy(tree)
    for p in resolved.get("provinces", {}).values():
        p.pop("__path__", None)
    return resolved


def load_config(path, overrides: dict | None = None) -> Config:
    """Read, override and validate a run's configuration: a path, or the name of a shipped
    config (``national``, ``utrecht``, ...). Raises :class:`ConfigError`."""
    from engine.config.sections import validate
    from engine.resources import find_config

    path = find_config(path)
    tree, scope, origins, files = load_raw(path)
    tree = apply_overrides(tree, overrides, origins)
    config = validate(tree, scope, origins, path)
    config.files = list(dict.fromkeys(Path(f).resolve() for f in files))
    config.extends = [Path(f).resolve() for f in origins.extended]
    config.resolved = resolve_tree(tree)
    config.overrides = dict(overrides or {})
    return config
