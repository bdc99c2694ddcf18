"""OPC UA input: subscribe to a plant's nodes and assemble readings at a module's sampling interval."""

from plantwatch.adapters.opcua.reader import OpcuaNodes, OpcuaReader, ReaderStats, read_nodes_file

__all__ = ["OpcuaNodes", "OpcuaReader", "ReaderStats", "read_nodes_file"]
