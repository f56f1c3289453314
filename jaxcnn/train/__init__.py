"""Training engine: a train-state pytree, pure jittable steps, losses and metrics in JAX,
evaluation that counts every example once, ``fit`` with run folders and orbax checkpoints.
"""

from jaxcnn.train._checkpoint import Checkpoints
from jaxcnn.train._config import parse_config
from jaxcnn.train._evaluate import evaluate, make_evaluator
from jaxcnn.train._losses import binary_cross_entropy, mse, softmax_cross_entropy
from jaxcnn.train._metrics import (accuracy, binary_scores, confusion_matrix, roc_auc,
                                   top_k_accuracy)
from jaxcnn.train._pixel_losses import (pixel_binary_cross_entropy, pixel_cross_entropy,
                                        soft_dice_loss)
from jaxcnn.train._pixel_metrics import (evaluate_reconstruction, evaluate_segmentation,
                                         psnr, segmentation_confusion, segmentation_scores)
from jaxcnn.train._state import TrainState, create_train_state, num_params
from jaxcnn.train._step import apply_gradients, jit_train_step, make_eval_step, make_train_step
from jaxcnn.train._loop import FitResult, fit
from jaxcnn.train._loggers import TensorBoardLogger
from jaxcnn.train._inference import LoadedRun, load_run, predict
from jaxcnn.train._run import update_result
from jaxcnn.train._ensemble import (best_member, create_ensemble_state, ensemble_predict,
                                    evaluate_ensemble, hyperparam_sweep,
                                    make_ensemble_train_step, select_member)
from jaxcnn.train._privacy import (clip_per_example, dp_aggregate, make_dp_train_step,
                                   per_example_grads, per_example_norms)
