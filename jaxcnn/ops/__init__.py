"""Pure array functions: no parameters to manage, channels-last inputs, spatial-first
kernels, PyTorch's numeric arguments and ``lax``'s padding strings."""

from jaxcnn.ops._conv import conv, conv_transpose, separable_conv
from jaxcnn.ops._padding import crop, pad
from jaxcnn.ops._norm import batch_norm, group_norm, instance_norm, layer_norm
from jaxcnn.ops._resize import pixel_shuffle, pixel_unshuffle, upsample
from jaxcnn.ops._pool import avg_pool, lp_pool, max_pool, max_unpool, min_pool, sum_pool
from jaxcnn.ops._adaptive_pool import (adaptive_avg_pool, adaptive_max_pool, global_avg_pool,
                                       global_max_pool)
from jaxcnn.ops._lowering import lowering
