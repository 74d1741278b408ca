"""The signer flow: one Signer actor at /root/signer when keys are configured."""

from __future__ import annotations

from teller.actors.signer import Signer
from teller.flows.base import AppContext, Flow
from teller.runtime import ChildSpec

__all__ = ["build", "SIGNER_PATH"]

SIGNER_PATH = "signer"


def build(ctx: AppContext) -> Flow:
    signer = ctx.settings.signer
    if not (signer.mnemonic or signer.keystore):
        return Flow(name="signing")
    return Flow(name="signing", children={"signer": (ChildSpec(name="signer", factory=lambda: Signer(signer)),)})
