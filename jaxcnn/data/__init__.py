"""Datasets as numpy arrays, downloads with checksums, and on-device augmentations.

Loaders return a :class:`Dataset` (``x`` channels-last, ``y`` ``int32`` labels, class
names). Augmentations (:mod:`jaxcnn.data.augment`) are pure ``(key, batch) -> batch``
functions that run inside the jitted training step. Data sets larger than memory stream from
disk (:mod:`jaxcnn.data.streaming`, on grain).
"""

from jaxcnn.data import augment, augment3d
from jaxcnn.data._dataset import Dataset, stratified_split
from jaxcnn.data._download import cache_dir, download, fetch, file_checksum, verify_checksum
from jaxcnn.data.images import (load_cifar10, load_digits, load_image_dataset, load_image_folder,
                                load_mnist, load_npz, read_idx)
from jaxcnn.data.streaming import (Stream, StreamIterator, npz_memmap, stream_image_folder,
                                   stream_npz)
from jaxcnn.data.segmentation import (SegmentationData, load_mnist_seg, load_segmentation_npz,
                                      make_digit_canvases, make_shapes2d, make_shapes3d)
from jaxcnn.data.timeseries import TimeSeriesData, load_mnist1d, load_ucr, read_ts, read_tsv
from jaxcnn.data.voxels import (VoxelData, load_off_folder, load_shapes, load_voxel_npz,
                                make_shapes, read_off, voxelize_mesh)
