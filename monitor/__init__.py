"""claimwatch: watch Telegram and X for claims of responsibility and official statements."""

__version__ = "0.1.0"
