"""minires: ResNet from first principles in NumPy, with hand-written backward passes."""
__version__ = "0.1.0"
