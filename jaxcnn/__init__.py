"""jaxcnn: pure-function CNN layers for JAX, on ``lax.conv_general_dilated`` and
``lax.reduce_window``, in 1, 2 and 3 spatial dimensions.

Two levels: :mod:`jaxcnn.ops` (array functions) and the layers exported here
(``init``/``apply`` pairs, see :class:`jaxcnn.Layer`).
"""

from jaxcnn import _host_memory, _host_threads

_host_memory.apply()  # before XLA's threads first allocate: see jaxcnn/_host_memory.py
_host_threads.apply()  # before XLA's CPU client sizes its thread pool: jaxcnn/_host_threads.py

from jaxcnn import geometry, initializers, interpret, ops
from jaxcnn._jit import compiler_options, enable_compilation_cache, jit
from jaxcnn.layers import *  # noqa: F401,F403  (the public layer factories)
from jaxcnn.layers import Layer, layer, stateless

from jaxcnn.summary import Summary, receptive_field, summary

from jaxcnn import train  # noqa: E402  (the training engine; needs the layers above)
from jaxcnn import data, distributed, models  # noqa: E402  (datasets, the model zoo; meshes)
from jaxcnn._export import export, load_exported  # noqa: E402
from jaxcnn.convert import from_torch  # noqa: E402

__version__ = "0.1.0"
