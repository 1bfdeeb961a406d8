"""The package's version, in one place: ``blockbuilder.__version__`` and ``blockbuilder --version`` read it.

A leaf, so that a module inside the package can read the version without importing the façade.
"""

__version__ = "0.1.0"
