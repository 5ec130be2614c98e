"""Probe placement over hand-written prologues (pure logic)."""

from gohook.sites.probesite import find_probe_site

ENTRY = 0x401000
CMP_R14 = bytes.fromhex("493b6610")  # cmp rsp, [r14+0x10]
JBE = bytes.fromhex("7620")  # jbe +0x20
PUSH_RBP = b"\x55"
MOV_RBP_RSP = bytes.fromhex("4889e5")
SUB_RSP = bytes.fromhex("4883ec58")  # sub rsp, 0x58
LEA_R12 = bytes.fromhex("4c8da424f8feffff")  # lea r12, [rsp-0x108]
CMP_R12 = bytes.fromhex("4d3b6610")  # cmp r12, [r14+0x10]


def test_go121_prologue_probes_push_rbp() -> None:
    site = find_probe_site(CMP_R14 + JBE + PUSH_RBP + MOV_RBP_RSP, ENTRY)
    assert (site.kind, site.address) == ("push-rbp", ENTRY + 6)


def test_big_frame_prologue() -> None:
    site = find_probe_site(LEA_R12 + CMP_R12 + JBE + PUSH_RBP, ENTRY)
    assert (site.kind, site.address) == ("push-rbp", ENTRY + 14)


def test_go119_prologue_probes_branch() -> None:
    site = find_probe_site(CMP_R14 + JBE + SUB_RSP, ENTRY)
    assert (site.kind, site.address) == ("stack-check-branch", ENTRY + 4)


def test_leaf_with_push_first() -> None:
    assert find_probe_site(PUSH_RBP + MOV_RBP_RSP, ENTRY).address == ENTRY


def test_frame_set_up_without_push_falls_back_to_entry() -> None:
    site = find_probe_site(SUB_RSP + PUSH_RBP, ENTRY)
    assert site.kind == "entry" and "sub rsp" in site.reason


def test_garbage() -> None:
    assert find_probe_site(b"\xff\xff", ENTRY).kind == "entry"
