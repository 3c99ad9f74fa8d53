"""asyncfix: find and fix asyncio bugs."""

__version__ = "0.1.0"
