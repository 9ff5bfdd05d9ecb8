"""The batch every input pipeline yields and every step takes, defined once.

Named arrays: 'image' float32 [B, 32, 32, 3], 'label' int32 [B], and 'mask' bool [B] in evaluation. The tf.data
pipeline yields this process's numpy share, the device pipeline global jax arrays already sharded;
`parallel.put_batch` turns either into the jax arrays the steps take.
"""

import jax
import numpy as np

Batch = dict[str, np.ndarray | jax.Array]
