"""The user-facing layer: the Textual TUI and the `d11` command line."""
