"""cxsim: simulate an ecommerce brand's post-purchase operation."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cxsim")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
