"""Data for segmentation: a synthetic data set, readers for CamVid / VOC / folders,
palettes, joint transforms, a NumPy batch iterator and class weights.

Every data set is a sequence: ``len(ds)`` and ``ds[i] -> (image (H, W, 3) uint8,
mask (H, W) int64)``, with attributes ``num_classes``, ``class_names``,
``palette`` (``(num_classes, 3)`` uint8) and ``ignore_index`` (int or None).

Instance data sets (:mod:`~minitorchseg.data.instances`: synthetic shapes, the Kaggle
nuclei layout, COCO JSON) give ``ds[i] -> (image (H, W, 3) uint8, target dict)`` with
``boxes``, ``labels``, ``masks``, ``area``, ``iscrowd`` and ``image_id``.
"""

from minitorchseg.data.base import PairedSegmentationDataset, read_image, read_mask
from minitorchseg.data.camvid import CamVid
from minitorchseg.data.coco import CocoInstances, coco_detections, coco_ground_truth, write_coco_json
from minitorchseg.data.dsb2018 import NucleiDSB2018
from minitorchseg.data.folder import ImageMaskFolder
from minitorchseg.data.instance_transforms import (
    ColorJitter,
    InstanceCompose,
    InstanceHorizontalFlip,
    InstanceRandomCrop,
    InstanceResize,
    InstanceVerticalFlip,
)
from minitorchseg.data.instances import InstanceShapes, masks_to_boxes
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
    "InstanceShapes",
    "NucleiDSB2018",
    "CocoInstances",
    "coco_ground_truth",
    "coco_detections",
    "write_coco_json",
    "masks_to_boxes",
    "InstanceCompose",
    "InstanceHorizontalFlip",
    "InstanceVerticalFlip",
    "InstanceResize",
    "InstanceRandomCrop",
    "ColorJitter",
]
