"""The money-path simulator's parts (test-only; ``teller`` never imports them): a simulated EVM node."""

from tests.simulation.evm_node import SimLimit, SimNode
from tests.simulation.evm_rpc import SimRpcServer
from tests.simulation.evm_types import SimTx, Transfer, TxRejected, TxStatus
from tests.simulation.faults import Fault, FaultPlan

__all__ = ["Fault", "FaultPlan", "SimLimit", "SimNode", "SimRpcServer", "SimTx", "Transfer", "TxRejected",
           "TxStatus"]
