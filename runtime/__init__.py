"""The shared runtime: every bot's turns, the ports adapters plug into, and the gateways."""
