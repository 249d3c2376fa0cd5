"""Adapters that plug tensorpager into LLM inference engines.

Each adapter lives in its own module and imports its engine lazily (or not
at all), so importing this package never requires an engine:

* :mod:`tensorpager.integrations.lmcache`: LMCache's remote-storage
  plugin (``TensorPagerConnector``, a ``RemoteConnector``, and
  ``TensorPagerConnectorAdapter`` for ``tensorpager://`` URLs).
* :mod:`tensorpager.integrations.sglang`: SGLang's HiCache L3 storage
  backend (``TensorPagerHiCacheStorage``).
* :mod:`tensorpager.integrations.vllm`: vLLM's secondary offloading tier
  (``TensorPagerSecondaryTier``, a ``SecondaryTierManager``).
"""

__all__ = ["lmcache", "sglang", "vllm"]
