"""The exercises of each chapter, one module per chapter (see learn/catalog.py)."""
