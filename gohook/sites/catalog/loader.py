"""Load catalog.yaml into the model (gohook.sites.catalog.model), validating it strictly.

Every mistake in the data raises one :class:`CatalogError` naming the file and the place
("catalog.yaml: hooks[3] syscall.openat.rule.mask: ..."), at load time: unknown keys, capabilities
that do not exist, argument locations that disagree with the Go signature (re-derived with
gohook.sites.catalog.goabi), overlapping per-release variants, deny plans the function's results
cannot carry, and the like.

How a hook denies under ``action: error`` (its :class:`ReturnPlan`) is derived from the signature's
results where that is mechanical, and stated by the entry's ``deny`` otherwise:

* a function with an error result (``error``, or ``syscall.Errno`` for syscall.Syscall*) denies with
  ``error``: the error is EPERM, pointer, string, slice, interface and bool results their zero value;
  an integer result has no safe default (the generated wrappers return -1 for an fd, os's internal
  ones 0), so ``deny: {kind: error, values: {fd: -1}}`` must state it, as the function's own failure
  path returns it (an unnamed result is named by its position: ``{0: 0}``);
* a function without results denies with ``noop``;
* any other function needs an explicit ``deny: kill`` (the value cannot say "denied"), ``deny: unset``
  (``(string, bool)``: syscall.Getenv) or ``deny: empty`` (one slice: syscall.Environ).

Every word a plan sets must be returned in a register: a result on the stack (one that did not fit,
or any result of an ABI0 function) is refused except for ``kill``.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from gohook.sites.catalog.goabi import Location, Param, Result, integer_bits, parse_results, parse_signature
from gohook.sites.catalog.model import (
    ALL,
    ARG_WORDS,
    EPERM,
    GAP_KINDS,
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
    ValueCase,
    ValueKind,
    ValueRule,
    VersionRange,
)

SCHEMA = 1
#: Capslock's capability names (google/capslock proto), for the mapping check.
CAPSLOCK_NAMES = frozenset(
    {
        "CAPABILITY_SAFE",
        "CAPABILITY_FILES",
        "CAPABILITY_NETWORK",
        "CAPABILITY_RUNTIME",
        "CAPABILITY_READ_SYSTEM_STATE",
        "CAPABILITY_MODIFY_SYSTEM_STATE",
        "CAPABILITY_OPERATING_SYSTEM",
        "CAPABILITY_SYSTEM_CALLS",
        "CAPABILITY_ARBITRARY_EXECUTION",
        "CAPABILITY_CGO",
        "CAPABILITY_UNANALYZED",
        "CAPABILITY_UNSAFE_POINTER",
        "CAPABILITY_REFLECT",
        "CAPABILITY_EXEC",
    }
)
_CAPABILITY_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$")
_GO_FIELD = re.compile(r"^[\w/.]+\.\w+\.\w+$")


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Load and validate the packaged catalog (or the YAML file at ``path``)."""
    if path is None:
        return _packaged_catalog()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise CatalogError(f"{p}: cannot read: {e.strerror}") from e
    return parse_catalog(text, str(p))


@functools.cache
def _packaged_catalog() -> Catalog:
    """The packaged catalog, parsed once per process: it is package data and the Catalog is frozen (parsing it
    costs ~0.3 s, and inspect and the system-call table each wanted it: issue 17 §6)."""
    text = resources.files("gohook.sites").joinpath("catalog.yaml").read_text(encoding="utf-8")
    return parse_catalog(text, "catalog.yaml")


def parse_catalog(text: str, source: str = "catalog.yaml") -> Catalog:
    """Parse and validate catalog YAML; every problem raises :class:`CatalogError`."""
    try:
        doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # libyaml: 8x faster
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise CatalogError(f"{source}{line}: invalid YAML: {problem}") from e
    return _Loader(source).catalog(doc)


class _Loader:
    """Turns the YAML document into a Catalog, naming the place of every error."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> CatalogError:
        return CatalogError(f"{self.source}: {where}: {message}", where)

    # generic field readers

    def mapping(self, value: Any, where: str, required: Sequence[str], optional: Sequence[str] = ()) -> dict:
        if not isinstance(value, Mapping):
            raise self.fail(where, f"expected a mapping, got {type(value).__name__}")
        unknown = sorted(set(value) - set(required) - set(optional), key=str)
        if unknown:
            raise self.fail(where, f"unknown key(s) {', '.join(map(str, unknown))}")
        missing = [k for k in required if k not in value]
        if missing:
            raise self.fail(where, f"missing key(s) {', '.join(missing)}")
        return dict(value)

    def string(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, f"expected a non-empty string, got {value!r}")
        return value.strip()

    def integer(self, value: Any, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"expected an integer, got {value!r}")
        return value

    def boolean(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(where, f"expected true or false, got {value!r}")
        return value

    def listing(self, value: Any, where: str) -> list:
        if not isinstance(value, list):
            raise self.fail(where, f"expected a list, got {type(value).__name__}")
        return value

    def version_range(self, value: Any, where: str) -> VersionRange:
        try:
            return VersionRange.parse(str(value))
        except ValueError as e:
            raise self.fail(where, str(e)) from None

    def location(self, value: Any, where: str) -> Location:
        try:
            return Location.parse(str(value))
        except ValueError as e:
            raise self.fail(where, str(e)) from None

    # top level

    def catalog(self, doc: Any) -> Catalog:
        top = self.mapping(doc, "top level", ("schema", "capabilities", "hooks", "gaps"), ("verified",))
        if top["schema"] != SCHEMA:
            raise self.fail("schema", f"unsupported schema {top['schema']!r} (this gohook reads {SCHEMA})")
        verified = tuple(
            self.version(v, f"verified[{i}]") for i, v in enumerate(self.listing(top.get("verified", []), "verified"))
        )
        caps = self.capabilities(top["capabilities"])
        self.known = {c.name for c in caps}
        entries = tuple(self.entry(e, i) for i, e in enumerate(self.listing(top["hooks"], "hooks")))
        self.check_overlaps(entries)
        self.check_hooked(caps, entries)
        gaps = tuple(self.gap(g, i) for i, g in enumerate(self.listing(top["gaps"], "gaps")))
        return Catalog(caps, entries, gaps, verified, self.source)

    def version(self, value: Any, where: str) -> GoVersion:
        try:
            return GoVersion.parse(str(value))
        except ValueError as e:
            raise self.fail(where, str(e)) from None

    def capabilities(self, value: Any) -> tuple[Capability, ...]:
        caps: list[Capability] = []
        for i, raw in enumerate(self.listing(value, "capabilities")):
            where = f"capabilities[{i}]"
            m = self.mapping(raw, where, ("name", "bit", "description", "capslock"), ("hooked",))
            name = self.string(m["name"], f"{where}.name")
            where = f"{where} {name}"
            if not _CAPABILITY_NAME.match(name) or name == ALL:
                raise self.fail(where, f"bad capability name {name!r} (lower case, 'family' or 'family.name')")
            bit = self.integer(m["bit"], f"{where}.bit")
            if not 0 <= bit < 64:
                raise self.fail(f"{where}.bit", f"{bit} does not fit a u64 mask (0..63)")
            capslock = tuple(
                self.string(c, f"{where}.capslock") for c in self.listing(m["capslock"], f"{where}.capslock")
            )
            for c in capslock:
                if c not in CAPSLOCK_NAMES:
                    raise self.fail(f"{where}.capslock", f"{c!r} is not a Capslock capability")
            hooked = self.boolean(m.get("hooked", True), f"{where}.hooked")
            caps.append(
                Capability(name, bit, self.string(m["description"], f"{where}.description"), capslock, hooked)
            )
        if not caps:
            raise self.fail("capabilities", "no capabilities defined")
        seen_names: set[str] = set()
        seen_bits: dict[int, str] = {}
        for cap in caps:
            if cap.name in seen_names:
                raise self.fail(f"capability {cap.name}", "defined twice")
            if cap.bit in seen_bits:
                raise self.fail(f"capability {cap.name}", f"bit {cap.bit} already belongs to {seen_bits[cap.bit]}")
            seen_names.add(cap.name)
            seen_bits[cap.bit] = cap.name
        if [c.bit for c in caps] != sorted(c.bit for c in caps):
            raise self.fail("capabilities", "list capabilities in bit order")
        families = {c.family for c in caps if "." in c.name}
        for cap in caps:
            if "." not in cap.name and cap.name in families:
                raise self.fail(f"capability {cap.name}", "is also the name of a family")
        return tuple(caps)

    def cap_name(self, value: Any, where: str) -> str:
        name = self.string(value, where)
        if name not in self.known:
            close = difflib.get_close_matches(name, sorted(self.known), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise self.fail(where, f"unknown capability {name!r}{hint}")
        return name

    # hooks

    _ENTRY_KEYS = ("function", "signature", "reaches", "why")
    _ENTRY_OPTIONAL = (
        "go",
        "abi",
        "capability",
        "rule",
        "arguments",
        "not_captured",
        "direct_caller_only",
        "presence",
        "versions",
        "deny",
    )
    _VARIANT_KEYS = ("function", "signature", "arguments", "not_captured", "rule", "capability", "deny")

    def entry(self, raw: Any, index: int) -> HookEntry:
        name = raw.get("function", "?") if isinstance(raw, Mapping) else "?"
        where = f"hooks[{index}] {name}"
        m = self.mapping(raw, where, self._ENTRY_KEYS, self._ENTRY_OPTIONAL)
        base = self.spec(m, where, self.version_range(m.get("go", "-"), f"{where}.go"))
        variants = []
        for j, vraw in enumerate(self.listing(m.get("versions", []), f"{where}.versions")):
            vwhere = f"{where}.versions[{j}]"
            vm = self.mapping(vraw, vwhere, ("go",), self._VARIANT_KEYS)
            rng = self.version_range(vm.pop("go"), f"{vwhere}.go")
            if not rng.within(base.go):
                raise self.fail(vwhere, f"Go range {rng} lies outside the entry's range {base.go}")
            merged = {k: v for k, v in m.items() if k != "versions"}
            if "capability" in vm or "rule" in vm:
                merged.pop("capability", None)
                merged.pop("rule", None)
            merged.update(vm)
            variants.append(self.spec(merged, vwhere, rng))
        for a, b in _pairs(variants):
            if a.go.overlaps(b.go):
                raise self.fail(where, f"variants for Go {a.go} and {b.go} overlap")
        return HookEntry(base, tuple(variants))

    def spec(self, m: Mapping[str, Any], where: str, go: VersionRange) -> HookSpec:
        function = self.string(m["function"], f"{where}.function")
        abi = self.string(m.get("abi", "internal"), f"{where}.abi")
        if abi not in ("internal", "abi0"):
            raise self.fail(f"{where}.abi", f"expected internal or abi0, got {abi!r}")
        signature = self.string(m["signature"], f"{where}.signature")
        try:
            sig_name, params = parse_signature(signature, abi)
            results = parse_results(signature, abi)
        except ValueError as e:
            raise self.fail(f"{where}.signature", str(e)) from None
        short = function.rsplit(".", 1)[-1]
        if sig_name != short:
            raise self.fail(f"{where}.signature", f"declares {sig_name!r}, but the function is {short!r}")
        has_cap, has_rule = "capability" in m, "rule" in m
        if has_cap == has_rule:
            raise self.fail(where, "give exactly one of capability and rule")
        capability = self.cap_name(m["capability"], f"{where}.capability") if has_cap else None
        rule = self.rule(m["rule"], f"{where}.rule", params) if has_rule else None
        arguments = tuple(
            self.argument(a, f"{where}.arguments[{i}]", params)
            for i, a in enumerate(self.listing(m.get("arguments", []), f"{where}.arguments"))
        )
        not_captured = m.get("not_captured")
        if not arguments and not_captured is None:
            raise self.fail(where, "no arguments: say why in not_captured")
        if not_captured is not None:
            not_captured = self.string(not_captured, f"{where}.not_captured")
        presence_text = self.string(m.get("presence", "always"), f"{where}.presence")
        try:
            presence = Presence(presence_text)
        except ValueError:
            raise self.fail(
                f"{where}.presence", f"expected always, cgo or not_inlined, got {presence_text!r}"
            ) from None
        reaches = tuple(self.string(r, f"{where}.reaches") for r in self.listing(m["reaches"], f"{where}.reaches"))
        if not reaches:
            raise self.fail(f"{where}.reaches", "name at least one public API")
        return HookSpec(
            function=function,
            signature=signature,
            abi=abi,
            capability=capability,
            rule=rule,
            arguments=arguments,
            not_captured=not_captured,
            direct_caller_only=self.boolean(m.get("direct_caller_only", False), f"{where}.direct_caller_only"),
            presence=presence,
            reaches=reaches,
            why=self.string(m["why"], f"{where}.why"),
            go=go,
            deny=self.deny(m.get("deny"), f"{where}.deny", results),
        )

    # deny plans (action: error)

    def deny(self, raw: Any, where: str, results: Sequence[Result]) -> ReturnPlan:
        """The hook's :class:`ReturnPlan`: ``raw`` (the entry's ``deny``, None if absent) or derived."""
        values: dict[str, int] = {}
        if raw is None:
            errors = [r for r in results if r.is_error]
            if errors:
                kind = DenyKind.ERROR
            elif not results:
                kind = DenyKind.NOOP
            else:
                types = ", ".join(r.type for r in results)
                raise self.fail(where, f"the results ({types}) have no error to carry a denial: say how the "
                                       "hook denies (deny: kill, unset or empty)")
            explicit = False
        else:
            if isinstance(raw, str):
                raw = {"kind": raw}
            m = self.mapping(raw, where, ("kind",), ("values",))
            kind_text = self.string(m["kind"], f"{where}.kind")
            try:
                kind = DenyKind(kind_text)
            except ValueError:
                kinds = ", ".join(k.value for k in DenyKind)
                raise self.fail(f"{where}.kind", f"expected one of {kinds}, got {kind_text!r}") from None
            if "values" in m:
                if kind is not DenyKind.ERROR:
                    raise self.fail(f"{where}.values", f"only an error deny takes values, not {kind.value}")
                given = m["values"]
                if not isinstance(given, Mapping):
                    raise self.fail(f"{where}.values", f"expected a mapping of result to value, got {given!r}")
                values = {str(k): self.integer(v, f"{where}.values.{k}") for k, v in given.items()}
            explicit = True
        return self.plan(kind, values, explicit, where, results)

    def plan(self, kind: DenyKind, values: Mapping[str, int], explicit: bool, where: str,
             results: Sequence[Result]) -> ReturnPlan:
        """Check ``kind`` against the results and build the words to return."""
        types = ", ".join(r.type for r in results) or "none"
        if kind is DenyKind.KILL:
            return ReturnPlan(kind, explicit=explicit)
        if kind is DenyKind.NOOP:
            if results:
                raise self.fail(where, f"noop returns no value, but the function has results ({types})")
            return ReturnPlan(kind, explicit=explicit)
        for r in results:
            if not r.in_registers:
                at = ", ".join(map(str, r.words))
                raise self.fail(where, f"result {r.label} ({r.type}) is returned on the stack ({at}), which the "
                                       f"{kind.value} deny cannot write (only kill can deny this function)")
        if kind is DenyKind.UNSET:
            if [r.type for r in results] != ["string", "bool"]:
                raise self.fail(where, f"unset needs results (string, bool), not ({types})")
            return self._zero_plan(kind, results, ('""', "false"), explicit)
        if kind is DenyKind.EMPTY:
            if len(results) != 1 or not results[0].type.startswith("[]"):
                raise self.fail(where, f"empty needs one slice result, not ({types})")
            return self._zero_plan(kind, results, ("nil",), explicit)
        errors = [r for r in results if r.is_error]
        if len(errors) != 1:
            raise self.fail(where, f"an error deny needs exactly one error result, the function returns ({types})")
        by_label = {r.label: r for r in results}
        for key in values:
            label = f"#{key}" if key.isdigit() else key
            r = by_label.get(label)
            if r is None:
                raise self.fail(f"{where}.values", f"the function has no result {key!r} ({types})")
            if not r.is_integer:
                raise self.fail(f"{where}.values.{key}", f"only integer results take a value; {r.type} is "
                                                         "returned as its zero value")
        given = {(f"#{k}" if k.isdigit() else k): v for k, v in values.items()}
        words: list[ReturnWord] = []
        shown: list[str] = []
        for r in results:
            if r.is_error:
                if len(r.words) == 2:  # the error interface: (itab, data)
                    words.append(ReturnWord(r.words[0], ValueKind.ERRNO_ITAB, 0, f"{r.label}.itab"))
                    words.append(ReturnWord(r.words[1], ValueKind.ERRNO_DATA, EPERM, f"{r.label}.data"))
                else:  # a bare syscall.Errno
                    words.append(ReturnWord(r.words[0], ValueKind.CONST, EPERM, r.label))
                text = "EPERM"
            elif r.is_integer:
                if r.label not in given:
                    raise self.fail(where, f"say what integer result {r.label} ({r.type}) is on failure "
                                           f"(deny: {{kind: error, values: {{{r.name or r.index}: ...}}}}), as the "
                                           "function's own failure path returns it")
                value = given[r.label]
                self.check_fits(value, r.type, f"{where}.values.{r.name or r.index}")
                words.append(ReturnWord(r.words[0], ValueKind.CONST, value, r.label))
                text = str(value)
            else:
                words += [ReturnWord(w, ValueKind.CONST, 0, r.label) for w in r.words]
                text = "false" if r.type == "bool" else '""' if r.type == "string" else "nil"
            shown.append(f"{r.name}={text}" if r.name else text)
        return ReturnPlan(kind, tuple(words), tuple(shown), EPERM, explicit)

    @staticmethod
    def _zero_plan(kind: DenyKind, results: Sequence[Result], texts: Sequence[str], explicit: bool) -> ReturnPlan:
        words = tuple(ReturnWord(w, ValueKind.CONST, 0, r.label) for r in results for w in r.words)
        shown = tuple(f"{r.name}={t}" if r.name else t for r, t in zip(results, texts, strict=True))
        return ReturnPlan(kind, words, shown, None, explicit)

    def check_fits(self, value: int, typ: str, where: str) -> None:
        """An integer result value must fit its type; an unsigned one may be written -1 (all ones)."""
        bits, signed = integer_bits(typ) or (64, True)
        lo = -(1 << (bits - 1))
        hi = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
        if not lo <= value <= hi:
            raise self.fail(where, f"{value} does not fit a {typ}")

    def param(self, name: str, params: Sequence[Param], where: str) -> int:
        for i, p in enumerate(params):
            if p.name == name:
                return i
        raise self.fail(where, f"the signature has no parameter {name!r} ({', '.join(p.name for p in params)})")

    def words_from(self, params: Sequence[Param], index: int, count: int, where: str) -> tuple[Location, ...]:
        flat = [w for p in params[index:] for w in p.words][:count]
        if len(flat) < count or any(w is None for w in flat):
            raise self.fail(where, f"parameter {params[index].name!r} is not in {count} argument register(s)")
        return tuple(w for w in flat if w is not None)

    def rule(self, raw: Any, where: str, params: Sequence[Param]) -> Rule:
        kind = raw.get("kind") if isinstance(raw, Mapping) else None
        if kind == "flags":
            m = self.mapping(raw, where, ("kind", "param", "at", "mask", "set", "clear"))
        elif kind == "destination":
            m = self.mapping(raw, where, ("kind", "param", "at", "length", "set"))
        elif kind == "value":
            m = self.mapping(raw, where, ("kind", "param", "at", "cases"), ("default",))
        else:
            raise self.fail(f"{where}.kind", f"expected flags, destination or value, got {kind!r}")
        pname = self.string(m["param"], f"{where}.param")
        at = self.location(m["at"], f"{where}.at")
        expected = self.words_from(params, self.param(pname, params, f"{where}.param"), 1, f"{where}.param")
        if expected[0] != at:
            raise self.fail(f"{where}.at", f"parameter {pname!r} is at {expected[0]}, not {at}")
        if kind == "flags":
            mask = self.integer(m["mask"], f"{where}.mask")
            if mask <= 0:
                raise self.fail(f"{where}.mask", "must be a positive bit mask")
            clear = None if m["clear"] is None else self.cap_name(m["clear"], f"{where}.clear")
            return FlagRule(pname, at, mask, self.cap_name(m["set"], f"{where}.set"), clear)
        if kind == "destination":
            index = self.param(pname, params, f"{where}.param")
            if params[index].type != "unsafe.Pointer":
                raise self.fail(f"{where}.param", f"a destination is an unsafe.Pointer, not {params[index].type}")
            lname = self.string(m["length"], f"{where}.length")
            lindex = self.param(lname, params, f"{where}.length")
            length_at = self.words_from(params, lindex, 1, f"{where}.length")[0]
            return DestinationRule(pname, at, (1 << 64) - 1, self.cap_name(m["set"], f"{where}.set"), None,
                                   length_at)
        cases = []
        for i, c in enumerate(self.listing(m["cases"], f"{where}.cases")):
            cw = f"{where}.cases[{i}]"
            cm = self.mapping(c, cw, ("value", "name", "capability"))
            cases.append(
                ValueCase(
                    self.integer(cm["value"], f"{cw}.value"),
                    self.string(cm["name"], f"{cw}.name"),
                    self.cap_name(cm["capability"], f"{cw}.capability"),
                )
            )
        values = [c.value for c in cases]
        if len(set(values)) != len(values):
            raise self.fail(f"{where}.cases", "a value appears twice")
        if not cases:
            raise self.fail(f"{where}.cases", "give at least one case")
        default = m.get("default")
        default = None if default is None else self.cap_name(default, f"{where}.default")
        return ValueRule(pname, at, tuple(cases), default)

    def argument(self, raw: Any, where: str, params: Sequence[Param]) -> ArgSpec:
        m = self.mapping(raw, where, ("name", "kind", "at"), ("fields",))
        name = self.string(m["name"], f"{where}.name")
        kind_text = self.string(m["kind"], f"{where}.kind")
        try:
            kind = ArgKind(kind_text)
        except ValueError:
            kinds = ", ".join(k.value for k in ArgKind)
            raise self.fail(f"{where}.kind", f"unknown kind {kind_text!r} (expected {kinds})") from None
        at = tuple(self.location(a, f"{where}.at") for a in self.listing(m["at"], f"{where}.at"))
        if len(at) != ARG_WORDS[kind]:
            raise self.fail(f"{where}.at", f"a {kind.value} takes {ARG_WORDS[kind]} location(s), got {len(at)}")
        index = self.param(name, params, f"{where}.name")
        ptype = params[index].type
        compatible = {
            ArgKind.STRING: ptype == "string",
            ArgKind.CSTRING: ptype == "*byte",
            ArgKind.STRINGS_FIRST: ptype == "[]string",
            ArgKind.INT: len(params[index].words) == 1,
            ArgKind.SOCKADDR: ptype == "unsafe.Pointer",
            ArgKind.STRUCT: ptype.startswith("*"),
        }[kind]
        if not compatible:
            raise self.fail(f"{where}.kind", f"a {kind.value} cannot be read from parameter {name!r} of type {ptype}")
        expected = self.words_from(params, index, len(at), f"{where}.at")
        if expected != at:
            got = ", ".join(map(str, at))
            want = ", ".join(map(str, expected))
            raise self.fail(f"{where}.at", f"the signature puts {name!r} in [{want}], not [{got}]")
        fields: list[StructField] = []
        if kind is ArgKind.STRUCT:
            for i, f in enumerate(self.listing(m.get("fields"), f"{where}.fields")):
                fw = f"{where}.fields[{i}]"
                fm = self.mapping(f, fw, ("name", "go_field", "offset", "kind"))
                go_field = self.string(fm["go_field"], f"{fw}.go_field")
                if not _GO_FIELD.match(go_field):
                    raise self.fail(f"{fw}.go_field", f"expected package.Type.Field, got {go_field!r}")
                offset = self.integer(fm["offset"], f"{fw}.offset")
                if offset < 0 or offset % 8:
                    raise self.fail(f"{fw}.offset", f"{offset} is not a word-aligned offset")
                fkind_text = self.string(fm["kind"], f"{fw}.kind")
                try:
                    fkind = FieldKind(fkind_text)
                except ValueError:
                    raise self.fail(f"{fw}.kind", f"expected int, string or bytes, got {fkind_text!r}") from None
                fields.append(StructField(self.string(fm["name"], f"{fw}.name"), go_field, offset, fkind))
            if not fields:
                raise self.fail(f"{where}.fields", "a struct argument needs at least one field")
        elif "fields" in m:
            raise self.fail(f"{where}.fields", "only struct arguments have fields")
        return ArgSpec(name, kind, at, tuple(fields))

    def check_overlaps(self, entries: Sequence[HookEntry]) -> None:
        """Two entries may share a function only for disjoint releases or capabilities."""
        specs = [(spec, e) for e in entries for spec in e.specs]
        for (a, ea), (b, eb) in _pairs(specs):
            if ea is eb or a.function != b.function or not a.go.overlaps(b.go):
                continue
            if a.capabilities & b.capabilities:
                raise self.fail(
                    f"hooks {a.function}", f"listed twice for Go {a.go} and {b.go} with the same capability"
                )

    def check_hooked(self, caps: Sequence[Capability], entries: Sequence[HookEntry]) -> None:
        """`hooked: false` means no hook charges the capability (yet); every other capability has a hook.

        Capabilities that come from the system call classification alone (memory.exec, io_uring, ...)
        have no standard-library choke point in the catalog; saying so in the data keeps a forgotten
        hook, or a hook charging a capability marked unhooked, from passing silently.
        """
        charged = {name for e in entries for spec in e.specs for name in spec.capabilities}
        for cap in caps:
            if cap.hooked and cap.name not in charged:
                raise self.fail(f"capability {cap.name}", "no hook charges it (say `hooked: false` if none should)")
            if not cap.hooked and cap.name in charged:
                raise self.fail(f"capability {cap.name}", "is `hooked: false`, but a hook charges it")

    # gaps

    def gap(self, raw: Any, index: int) -> GapSpec:
        name = raw.get("function", "?") if isinstance(raw, Mapping) else "?"
        where = f"gaps[{index}] {name}"
        m = self.mapping(raw, where, ("function", "kind", "detail", "remedy"), ("abi", "go"))
        kind = self.string(m["kind"], f"{where}.kind")
        if kind not in GAP_KINDS:
            raise self.fail(f"{where}.kind", f"expected one of {', '.join(sorted(GAP_KINDS))}, got {kind!r}")
        abi = self.string(m.get("abi", "internal"), f"{where}.abi")
        if abi not in ("internal", "abi0"):
            raise self.fail(f"{where}.abi", f"expected internal or abi0, got {abi!r}")
        return GapSpec(
            function=self.string(m["function"], f"{where}.function"),
            kind=kind,
            abi=abi,
            go=self.version_range(m.get("go", "-"), f"{where}.go"),
            detail=self.string(m["detail"], f"{where}.detail"),
            remedy=self.string(m["remedy"], f"{where}.remedy"),
        )


def _pairs(items: Sequence[Any]) -> Iterable[tuple[Any, Any]]:
    for i, a in enumerate(items):
        for b in items[i + 1 :]:
            yield a, b
