"""The paper's trajectory datasets: linear regression, 15-parameter MLPs, NAS-Bench-201
cell CNNs and image Transformers (``gfm-accel generate``), plus a reusable classifier
trajectory recorder.

Example:
    >>> from gfm_accel.lab.generate import RegressionConfig, sample_regression_tasks, train_linreg_batched
    >>> run = train_linreg_batched(sample_regression_tasks(RegressionConfig(n_trajectories=2, steps=3), 0), "sgd")
    >>> tuple(run.weights.shape)
    (2, 4, 2)
"""

from ..training import ClassifierRun, evaluate_classifier, train_classifier
from .generate import (
    TASKS,
    VISION_PRESETS,
    VisionConfig,
    build_vision_model_factory,
    generate_linreg,
    generate_mlp,
    generate_vision,
    trajectory_filename,
)
from .linreg import (
    INITS,
    RegressionConfig,
    RegressionTasks,
    TrajectoryBatch,
    linreg_init,
    linreg_loss,
    sample_regression_tasks,
    train_linreg_batched,
    train_linreg_sequential,
)
from .mlp import (
    MLP_ARCHS,
    MLPTasks,
    make_mlp,
    mlp_forward,
    mlp_init,
    mlp_loss,
    sample_mlp_tasks,
    train_mlp_batched,
    train_mlp_sequential,
)
from .nets import (
    CELL_EDGES,
    CELL_OPS,
    TRANSFORMER_GRID,
    Cell,
    CellCNN,
    ImageTransformer,
    TransformerArch,
    cnn_param_count,
    count_params,
    sample_cell,
    sample_transformer_arch,
)
from ..optim import OPTIMIZERS, PAPER_HPARAMS, PAPER_OPTIMIZERS, build_optimizer, optimizer_hparams, parse_optimizers
from ..datasets import DATASETS, ImageDataset, load_image_dataset

__all__ = [
    "ClassifierRun",
    "evaluate_classifier",
    "train_classifier",
    "TASKS",
    "VISION_PRESETS",
    "VisionConfig",
    "build_vision_model_factory",
    "generate_linreg",
    "generate_mlp",
    "generate_vision",
    "trajectory_filename",
    "INITS",
    "RegressionConfig",
    "RegressionTasks",
    "TrajectoryBatch",
    "linreg_init",
    "linreg_loss",
    "sample_regression_tasks",
    "train_linreg_batched",
    "train_linreg_sequential",
    "MLP_ARCHS",
    "MLPTasks",
    "make_mlp",
    "mlp_forward",
    "mlp_init",
    "mlp_loss",
    "sample_mlp_tasks",
    "train_mlp_batched",
    "train_mlp_sequential",
    "CELL_EDGES",
    "CELL_OPS",
    "TRANSFORMER_GRID",
    "Cell",
    "CellCNN",
    "ImageTransformer",
    "TransformerArch",
    "cnn_param_count",
    "count_params",
    "sample_cell",
    "sample_transformer_arch",
    "OPTIMIZERS",
    "PAPER_HPARAMS",
    "PAPER_OPTIMIZERS",
    "build_optimizer",
    "optimizer_hparams",
    "parse_optimizers",
    "DATASETS",
    "ImageDataset",
    "load_image_dataset",
]
