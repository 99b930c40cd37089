from vouch.testbed.registry import RegistryServer, free_port, make_ca_and_cert, start_registry

__all__ = ["RegistryServer", "free_port", "make_ca_and_cert", "start_registry"]
