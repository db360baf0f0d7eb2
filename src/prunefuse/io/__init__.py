"""What the toolkit keeps on disk: checkpoints (safetensors plus JSON), atomic JSON and text files,
run directories, and figures. Nothing here ever unpickles a file."""

from .checkpoint import load_model, model_spec
from .storage import atomic_write, read_json, write_json, write_text

__all__ = ["atomic_write", "load_model", "model_spec", "read_json", "write_json", "write_text"]
