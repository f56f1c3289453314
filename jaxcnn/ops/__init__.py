"""Pure array functions: no parameters to manage, channels-last inputs, spatial-first
kernels, PyTorch's numeric arguments and ``lax``'s padding strings."""

from jaxcnn.ops._conv import conv, conv_transpose, separable_conv
from jaxcnn.ops._padding import crop, pad
