"""The offline replica of woshipm.com: a deterministic corpus (``Corpus``), its pages, and an HTTP
server with fault modes (``ReplicaServer``). ``python -m woshipm_replica --help``."""

from .corpus import SPECIAL_INDEX, Article, Corpus
from .server import FAULT_NAMES, FaultSpec, ReplicaServer

__all__ = ["Article", "Corpus", "FAULT_NAMES", "FaultSpec", "ReplicaServer", "SPECIAL_INDEX"]
