"""Your nn.Modules: plain PyTorch, nothing here knows about Lightning or the template. Configs
import them by module (`from models.mlp import MLP`)."""
