"""One module a page area: EN and ZH_TW, the same keys in both."""
