"""DiffWave: the weights and the two implementations (see model.py)."""
from network.diffwave.model import DiffWave, ResidualBlock, step_table  # noqa: F401
from network.diffwave.select import choose_impl  # noqa: F401
