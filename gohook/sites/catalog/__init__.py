"""The capability catalog: which standard-library functions gohook hooks.

The data lives in ``gohook/sites/catalog.yaml`` (documented in
docs/capabilities.md); gohook.sites.catalog.loader loads it into the frozen
dataclasses of gohook.sites.catalog.model and validates it strictly, so that
a mistake in the data fails at load time with one clear :class:`CatalogError`
instead of as a wrong register read in the kernel. Argument locations follow
Go's amd64 register ABI (gohook.sites.catalog.goabi), re-derived from each
entry's Go signature. This package re-exports the public names of the three.

Typical use by the code that plans hook points and renders the BPF program::

    catalog = load_catalog()
    version = GoVersion.parse(binary.go_version)          # "go1.21.13"
    for hook in catalog.hooks_for(version):               # one Go release's view
        ...  # look hook.function up in the pclntab, attach at its probe offset
        bit = catalog.capability(hook.capability).bit     # fixed capability, or
        hook.rule                                         # FlagRule / DestinationRule / ValueRule
        hook.argument                                     # what to read, where
        hook.deny                                         # ReturnPlan: how `action: error` returns
    allowed = catalog.mask(["files", "network.connect"])  # policy -> u64 bitmask
"""

from __future__ import annotations

from gohook.sites.catalog.goabi import (
    ERROR_TYPES,
    INT_REGISTERS,
    Location,
    Param,
    Register,
    Result,
    parse_results,
    parse_signature,
)
from gohook.sites.catalog.loader import CAPSLOCK_NAMES, SCHEMA, load_catalog, parse_catalog
from gohook.sites.catalog.model import (
    ALL,
    ALL_VERSIONS,
    ARG_WORDS,
    EPERM,
    GAP_KINDS,
    KILL_PLAN,
    ArgKind,
    ArgSpec,
    Capability,
    Catalog,
    CatalogError,
    DenyKind,
    DestinationRule,
    FieldKind,
    FlagRule,
    GapSpec,
    GoVersion,
    HookEntry,
    HookSpec,
    Presence,
    ReturnPlan,
    ReturnWord,
    Rule,
    StructField,
    UnknownCapabilityError,
    ValueCase,
    ValueKind,
    ValueRule,
    VersionRange,
)

__all__ = [
    "ALL",
    "ALL_VERSIONS",
    "ARG_WORDS",
    "CAPSLOCK_NAMES",
    "EPERM",
    "ERROR_TYPES",
    "GAP_KINDS",
    "INT_REGISTERS",
    "KILL_PLAN",
    "SCHEMA",
    "ArgKind",
    "ArgSpec",
    "Capability",
    "Catalog",
    "CatalogError",
    "DenyKind",
    "DestinationRule",
    "FieldKind",
    "FlagRule",
    "GapSpec",
    "GoVersion",
    "HookEntry",
    "HookSpec",
    "Location",
    "Param",
    "Presence",
    "Register",
    "Result",
    "ReturnPlan",
    "ReturnWord",
    "Rule",
    "StructField",
    "UnknownCapabilityError",
    "ValueCase",
    "ValueKind",
    "ValueRule",
    "VersionRange",
    "load_catalog",
    "parse_catalog",
    "parse_results",
    "parse_signature",
]
