"""One enforcement program per probed file: plan, load, attach, pin; reload in place; events out.

Why per file: uprobes belong to a file (an inode), so one attached program covers every process of that
file, those started later included, from their first instruction. The agent keeps one FileSession per
file version it probed, under the policy that matched it.

Reload (a policy edit): the new plan is built for the same binary; when it needs the same programs and
probes (gohook.bpf.loader.Attached.refill), the maps are rewritten in place and no probe is detached.
Otherwise a new program is compiled and attached first, and only then is the old one closed
(make-before-break): there is no moment without enforcement, only a moment with both.

Pins: every link of a session is pinned under PIN_ROOT/<session>/ (gohook.bpf.loader.Attached.pin), so the
agent's death does not lift enforcement: the kernel keeps the probes, the program and its maps, with the
last policy, until a new agent has attached its own and removes the old pins (docs/agent.md).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from gohook.agent import PIN_ROOT
from gohook.agent.identity import FileVersion, Program
from gohook.agent.policies import AgentPolicy
from gohook.errors import GohookError
from gohook.events.decode import decode_events
from gohook.events.symbolize import EventRecord, Symbolizer
from gohook.gosym import GoBinary
from gohook.policy.format import Action, Mode, Policy

if TYPE_CHECKING:
    from gohook.bpf.loader import Attached
    from gohook.plan.build import PlanBuild
    from gohook.sites.catalog.model import Catalog
    from gohook.sites.hooks import HookReport

log = logging.getLogger("gohook")


class PlanningError(GohookError):
    """A matched program could not be planned or attached (its processes are killed, never run unenforced)."""


_serial = itertools.count(1)


def _policy_for_mode(policy: Policy, mode: Mode) -> Policy:
    """--mode audit: every module's action becomes audit (nothing is denied, violations are recorded)."""
    if mode is not Mode.AUDIT:
        return policy
    import dataclasses

    rules = tuple(dataclasses.replace(r, action=None) for r in policy.modules)
    return dataclasses.replace(policy, action=Action.AUDIT, modules=rules)


class FileSession:
    """The enforcement program of one program file under one agent policy."""

    def __init__(self, program: Program, policy: AgentPolicy, catalog: Catalog, *, mode: Mode = Mode.ENFORCE,
                 pin_root: str | None = PIN_ROOT) -> None:
        from gohook.sites.hooks import find_hook_sites

        self.program = program
        self.policy = policy
        self.catalog = catalog
        self.mode = mode
        self.pin_root = pin_root
        self.pin_dir: str | None = None
        self.reloads = 0
        self.in_place = 0
        self.copies: dict[FileVersion, tuple[Program, list[tuple[str, int]]]] = {}  # shared copies' links
        self.created = time.time()
        start = time.monotonic()
        try:
            self.binary = GoBinary.open(program.path)
            self.binary.require_amd64("gohook agent")
            self.hooks: HookReport = find_hook_sites(self.binary, catalog)
            self.build = self._plan(policy)
        except GohookError as exc:
            raise PlanningError(f"{program.path}: {exc}") from None
        except OSError as exc:
            raise PlanningError(f"{program.path}: cannot read: {exc.strerror or exc}") from None
        self.plan_seconds = time.monotonic() - start
        start = time.monotonic()
        self.attached = self._attach(self.build)
        self.attach_seconds = time.monotonic() - start
        self.symbolizer = Symbolizer(self.binary, self.build.plan)
        self._pin()

    # -- planning and attaching ------------------------------------------------------------------

    def _plan(self, policy: AgentPolicy) -> PlanBuild:
        from gohook.plan.build import build_plan

        build = build_plan(self.binary, self.hooks, self.catalog, _policy_for_mode(policy.policy, self.mode),
                           Mode.AUDIT if self.mode is Mode.AUDIT else Mode.ENFORCE)
        return build

    def _attach(self, build: PlanBuild) -> Attached:
        from gohook.bpf.loader import attach
        from gohook.bpf.render import ProgramOptions

        if not build.plan.hooks:
            raise PlanningError(f"{self.program.path}: no hookable capability function found")
        try:
            return attach(build.plan, options=ProgramOptions(report_allowed=False, count_calls=True))
        except GohookError as exc:
            raise PlanningError(f"{self.program.path}: {exc}") from None

    def _pin(self) -> None:
        if self.pin_root is None:
            return
        v = self.program.version
        name = f"{v.dev:x}-{v.ino}-{os.getpid()}-{next(_serial)}"
        path = str(Path(self.pin_root) / name)
        try:
            self.attached.pin(path)
        except GohookError as exc:
            log.warning("gohook agent: cannot pin the probes of %s (%s): they end with the agent",
                        self.program.path, exc)
            return
        old, self.pin_dir = self.pin_dir, path
        if old is not None:
            unpin(old)

    # -- copies ---------------------------------------------------------------------------------

    def same_content(self, program: Program) -> bool:
        """Whether program's file is a copy of this session's: the same Go build ID and the same bytes in
        every executable section (where the probes go and the ranges point). A stripped copy qualifies
        (strip keeps the loaded sections); another build, or a patched copy, does not."""
        if program.build_id != self.program.build_id:
            return False
        image = self.binary.image
        try:
            with open(program.path, "rb") as f:
                for sec in image.sections:
                    if not sec.executable or sec.nobits or not sec.size:
                        continue
                    f.seek(sec.offset)
                    if f.read(sec.size) != image.section_bytes(sec):
                        return False
        except OSError:
            return False
        return True

    def add_copy(self, program: Program) -> None:
        """Enforce a copy of this session's file with the same program: only its uprobes are attached (no plan,
        no compile), and pinned beside the session's. PlanningError when they cannot be attached."""
        try:
            links = self.attached.attach_copy(program.path)
        except GohookError as exc:
            raise PlanningError(f"{program.path}: {exc}") from None
        self.copies[program.version] = (program, links)
        if self.pin_dir is not None:
            from gohook.bpf.links import pin

            v = program.version
            for name, fd in links:
                try:
                    pin(fd, str(Path(self.pin_dir) / f"{name}_copy_{v.dev:x}_{v.ino}"))
                except GohookError as exc:
                    log.warning("gohook agent: cannot pin a probe of %s: %s", program.path, exc)
                    break

    def drop_copy(self, version: FileVersion) -> list[tuple[str, int]]:
        """Forget a copy (no process runs it any more): its pins are removed; its links are returned for the
        caller to close (closing detaches, which takes the kernel ~0.1 s per uprobe)."""
        _program, links = self.copies.pop(version)
        if self.pin_dir is not None:
            for name, _fd in links:
                with contextlib.suppress(OSError):
                    os.unlink(Path(self.pin_dir) / f"{name}_copy_{version.dev:x}_{version.ino}")
        return links

    # -- reload --------------------------------------------------------------------------------

    def reload(self, policy: AgentPolicy) -> str:
        """Enforce another version of the policy: "in place" (maps rewritten) or "replaced" (a new program,
        attached before the old one is closed). PlanningError leaves the session as it was."""
        try:
            build = self._plan(policy)
        except GohookError as exc:
            raise PlanningError(f"{self.program.path} under {policy.path}: {exc}") from None
        self.reloads += 1
        if self.attached.refill(build.plan):
            self.in_place += 1
            how = "in place"
        else:
            new = self._attach(build)  # raises PlanningError: the old program stays
            copies = list(self.copies.values())
            old, self.attached = self.attached, new
            self._pin()
            self.copies = {}
            for program, links in copies:  # the copies' probes move to the new program (a gone one is dropped)
                with contextlib.suppress(PlanningError):
                    self.add_copy(program)
                for _name, fd in links:
                    os.close(fd)
            # detaching takes the kernel ~0.1 s per uprobe: in the background (the new probes already enforce)
            threading.Thread(target=old.close, name="gohook-retire", daemon=True).start()
            how = "replaced"
        self.policy, self.build = policy, build
        self.symbolizer = Symbolizer(self.binary, build.plan)
        return how

    # -- events --------------------------------------------------------------------------------

    def poll(self) -> list[EventRecord]:
        """Events the kernel reported since the last poll (no wait: the ring buffers are consumed, not polled,
        since a record submitted without a wakeup does not make epoll ready)."""
        return [self.symbolizer.record(ev) for ev in decode_events(self.attached.drain(), self.attached.options.layout)]

    def call_counts(self) -> dict[tuple[str, str], int]:
        """Hooked calls the kernel counted, by (module, capability), since the session started."""
        plan = self.build.plan
        out: dict[tuple[str, str], int] = {}
        for (_hook, module, cap), n in self.attached.learned_counts().items():
            if cap < len(plan.capabilities):
                key = (plan.module_name(module), plan.capabilities[cap])
                out[key] = out.get(key, 0) + n
        return out

    def close(self, *, unpin_probes: bool) -> None:
        """Close the program. unpin_probes: also remove the pins (enforcement of this file ends); else the
        pinned probes go on enforcing the last policy after this process is gone."""
        for _program, links in self.copies.values():
            for _name, fd in links:
                os.close(fd)
        self.copies = {}
        with contextlib.suppress(GohookError):
            self.attached.close()
        if unpin_probes and self.pin_dir is not None:
            unpin(self.pin_dir)
            self.pin_dir = None


def unpin(path: str) -> int:
    """Remove a session's pins (the links detach when nothing else holds them); the count removed."""
    from gohook.bpf.links import unpin_dir

    try:
        return unpin_dir(path)
    except (GohookError, OSError) as exc:
        log.warning("gohook agent: cannot remove the pins in %s: %s", path, exc)
        return 0


def stale_pin_dirs(pin_root: str) -> list[str]:
    """The session pin directories an earlier agent left (adopted by removal once ours are attached)."""
    root = Path(pin_root)
    try:
        return sorted(str(p) for p in root.iterdir() if p.is_dir())
    except OSError:
        return []
