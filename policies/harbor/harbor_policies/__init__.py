"""Harbor Credit Union policy drivers for the bank engine.

Drivers are registered as entry points (see ``pyproject.toml``) and import
nothing from the kernel but ``bank_core.contract``. The bank profile that
names them ships beside this module as ``profile.toml``.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable

PROFILE_RESOURCE = "profile.toml"


def profile_resource() -> Traversable:
    """Harbor's bank profile (TOML) as an installed package resource."""
    return files(__name__).joinpath(PROFILE_RESOURCE)
