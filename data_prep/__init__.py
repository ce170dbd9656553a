"""data_prep: the bottom layer (audio in, features, datasets); every package imports it first.

TensorFlow's own CPU kernel for a depthwise convolution takes only equal strides; TF routes
around it through oneDNN, which it turns on by default only on CPUs with AVX-512-class
features. On an AVX2-only machine BC-ResNet's frequency-strided depthwise convolution (stride
1 x 2) therefore did not run at all ("Current implementation only supports equal length
strides"), while it ran where every figure here was measured. oneDNN is asked for here, before
anything imports TensorFlow, unless the user set the variable.
"""

import os

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
