"""Layers (pairs of pure functions, see ``_base``) and combinators."""

from jaxcnn.layers._base import Layer, layer, stateless, with_rank
from jaxcnn.layers._scope import capture
from jaxcnn.layers._combinators import (concat, fan_in_concat, fan_in_mul, fan_in_sum, fan_out,
                                        named, parallel, residual, serial)
from jaxcnn.layers._conv import conv, conv_transpose, depthwise_conv, separable_conv
from jaxcnn.layers._core import (activation, dense, dropout, elu, flatten, gelu, hard_swish,
                                 identity, leaky_relu, log_softmax, relu, relu6, reshape, sigmoid,
                                 silu, softmax, softplus, spatial_dropout, tanh)
from jaxcnn.layers._pool import (adaptive_avg_pool, adaptive_max_pool, avg_pool, global_avg_pool,
                                global_max_pool, lp_pool, max_pool, min_pool, sum_pool)
from jaxcnn.layers._norm import batch_norm, group_norm, instance_norm, layer_norm
from jaxcnn.layers._resize import pixel_shuffle, pixel_unshuffle, upsample
from jaxcnn.layers._channels import channel_shuffle, channel_split
from jaxcnn.layers._padding import crop, match_spatial, pad
