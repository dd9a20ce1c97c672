"""cffi declarations, one module per s2n-tls header (the pyca/cryptography layout).

Each module defines ``CDEF`` (declarations checked by the C compiler against the
real header in cffi's API mode) and ``INCLUDES`` (the ``#include`` lines). The
unstable headers also define ``PROBE``: a symbol whose presence in the header
tells ``build_s2n.py`` that the installed s2n-tls offers that API.

This package is read by ``build_s2n.py`` by file path, before ``s2npy`` itself
can be imported, so it must not import anything from ``s2npy``.
"""
