"""The money-path simulator's parts (issue 16; test-only, ``teller`` never imports them).

- ``SimNode`` (``evm_node``): a deterministic in-memory EVM chain; its docstring is the driver's API.
  Accounts, tokens and execution live in ``evm_state``, the records in ``evm_types``.
- ``SimRpcServer`` (``evm_rpc``): the node as JSON-RPC on 127.0.0.1, the subset Teller uses.
- ``FaultPlan`` (``faults``): what the served node does wrong, from one seed; ``heal()`` ends it.

``test_conformance`` keeps the node honest against a real anvil; ``bench/sim_node.py`` measures it.
"""

from tests.simulation.evm_node import SimLimit, SimNode
from tests.simulation.evm_rpc import SimRpcServer
from tests.simulation.evm_types import SimTx, Transfer, TxRejected, TxStatus
from tests.simulation.faults import Fault, FaultPlan

__all__ = ["Fault", "FaultPlan", "SimLimit", "SimNode", "SimRpcServer", "SimTx", "Transfer", "TxRejected",
           "TxStatus"]
