"""The browser sources (pages, scripts, styles), served as they are and shipped in the wheel as ``ticker.web``."""
