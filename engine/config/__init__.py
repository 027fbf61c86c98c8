"""Load and validate the policy configuration (TOML) before any work is done.

The package has one module per job:

- :mod:`~engine.config.model`       the data model, frozen dataclasses (:class:`Config`, ...);
- :mod:`~engine.config.units`       units of claims and targets, conversion to claim hectares;
- :mod:`~engine.config.reading`     reading a run's files into one tree, overrides on it;
- :mod:`~engine.config.validation`  the validation layer of every TOML file the project reads
  (configs, scenario files, grid definitions): :class:`ConfigError`, :class:`Validator`;
- :mod:`~engine.config.sections`    the section validators: tree -> :class:`Config`;
- :mod:`~engine.config.environment` the ``RUIMTEPUZZEL_*`` settings, checked at start.

Every error is a :class:`ConfigError` naming the file, the key, what is wrong and how to fix
it ("did you mean ..."). Nothing in a config is ever evaluated as code.
"""

from __future__ import annotations

from engine.config.environment import SettingError, check_environment
from engine.config.model import (
    Assumption,
    Claim,
    Config,
    LayerSource,
    Novex,
    Option,
    Province,
    Recipe,
    Rule,
    Target,
    Term,
    Zoning,
    slugify,
)
from engine.config.reading import apply_overrides, load_config, load_raw, parse_overrides
from engine.config.sections import validate
from engine.config.units import from_ha, to_ha
from engine.config.validation import (
    ConfigError,
    UnknownKeyError,
    Validator,
    did_you_mean,
    read_toml,
)

__all__ = [
    "ConfigError",
    "UnknownKeyError",
    "SettingError",
    "Assumption",
    "Claim",
    "Option",
    "Term",
    "Recipe",
    "Rule",
    "Target",
    "Zoning",
    "Novex",
    "Province",
    "LayerSource",
    "Config",
    "Validator",
    "load_config",
    "load_raw",
    "apply_overrides",
    "validate",
    "parse_overrides",
    "check_environment",
    "read_toml",
    "did_you_mean",
    "to_ha",
    "from_ha",
    "slugify",
]
