"""Data for segmentation: a synthetic data set, readers for CamVid / VOC / folders,
palettes, joint transforms, a NumPy batch iterator and class weights.

Every data set is a sequence: ``len(ds)`` and ``ds[i] -> (image (H, W, 3) uint8,
mask (H, W) int64)``, with attributes ``num_classes``, ``class_names``,
``palette`` (``(num_classes, 3)`` uint8) and ``ignore_index`` (int or None).
"""

from minitorchseg.data.base import PairedSegmentationDataset, read_image, read_mask
from minitorchseg.data.camvid import CamVid
from minitorchseg.data.folder import ImageMaskFolder
from minitorchseg.data.loader import DataLoader
from minitorchseg.data.palettes import (
    CAMVID_CLASSES,
    CAMVID_IGNORE_INDEX,
    CAMVID_PALETTE,
    CAMVID_SEGNET_WEIGHTS,
    SHAPES_CLASSES,
    SHAPES_PALETTE,
    VOC_CLASSES,
    VOC_IGNORE_INDEX,
    VOC_PALETTE,
    colorize,
    voc_colormap,
)
from minitorchseg.data.shapes import SyntheticShapes
from minitorchseg.data.transforms import (
    Compose,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    RandomScale,
    Resize,
    ToArray,
)
from minitorchseg.data.voc import VOCSegmentation
from minitorchseg.data.weights import class_pixel_counts, median_frequency_weights

__all__ = [
    "PairedSegmentationDataset",
    "read_image",
    "read_mask",
    "CamVid",
    "VOCSegmentation",
    "ImageMaskFolder",
    "SyntheticShapes",
    "DataLoader",
    "Compose",
    "RandomCrop",
    "RandomHorizontalFlip",
    "RandomScale",
    "Resize",
    "Normalize",
    "ToArray",
    "class_pixel_counts",
    "median_frequency_weights",
    "colorize",
    "voc_colormap",
    "CAMVID_CLASSES",
    "CAMVID_PALETTE",
    "CAMVID_IGNORE_INDEX",
    "CAMVID_SEGNET_WEIGHTS",
    "VOC_CLASSES",
    "VOC_PALETTE",
    "VOC_IGNORE_INDEX",
    "SHAPES_CLASSES",
    "SHAPES_PALETTE",
]
