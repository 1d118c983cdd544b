"""Ready-made implementations of the ports: stores and channels."""
