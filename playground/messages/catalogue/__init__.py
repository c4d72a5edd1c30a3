"""Service messages, one module an area: EN and ZH_TW, the same keys in both (merged into the UI's)."""
