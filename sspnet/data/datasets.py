"""torch Datasets: letterboxed images with their saliency (and shift) ground truth.

Images are returned in [0, 1], not ImageNet-normalised: normalisation belongs to the model,
so that every caller (training, evaluation, the codec) feeds it the same thing.
Maps are letterboxed with the same geometry as the image (`sspnet.preprocess.letterbox`),
and `valid` marks the non-padded box so losses and metrics can ignore the padding.

Fixation maps are not resized as images: nearest-neighbour shrinking of a sparse binary map
drops most fixations. Each fixation is instead mapped into canvas coordinates and placed at
its nearest canvas pixel, so no fixation is lost.

Horizontal flips (p = 0.5 when `augment`) apply to the image and all its maps together.
The draw is deterministic: after `set_epoch(e)` it depends only on (seed, e, index), so it
does not change with the number of DataLoader workers; before any `set_epoch` it uses the
process's torch RNG, which DataLoader seeds per worker from the main process's seed.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from sspnet import maps
from sspnet.data.cache import get_saliency_map
from sspnet.data.fixations import EyeTrackingImage
from sspnet.data.shift_layout import ShiftScene
from sspnet.files.images import read_image
from sspnet.preprocess import INPUT_SIZE, Box, letterbox

__all__ = ["GreyscaleView", "SaliencyDataset", "ShiftDataset", "letterbox_fixations", "valid_mask"]

FLIP_P = 0.5


def valid_mask(box: Box, size: tuple[int, int]) -> np.ndarray:
    """Boolean (H, W) canvas mask of the letterbox `box` (the real image area)."""
    mask = np.zeros(size, dtype=bool)
    mask[box.top : box.top + box.height, box.left : box.left + box.width] = True
    return mask


def letterbox_fixations(
    xy: np.ndarray, shape: tuple[int, int], box: Box, size: tuple[int, int] = INPUT_SIZE
) -> np.ndarray:
    """Boolean canvas map with each image fixation (0-based x, y) at its nearest canvas pixel."""
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    h, w = shape
    cx = box.left + (xy[:, 0] + 0.5) * (box.width / w) - 0.5
    cy = box.top + (xy[:, 1] + 0.5) * (box.height / h) - 0.5
    # Fixations inside the image stay inside its box even when rounding reaches the padding.
    inside = (xy[:, 0] >= -0.5) & (xy[:, 0] < w - 0.5) & (xy[:, 1] >= -0.5) & (xy[:, 1] < h - 0.5)
    cx = np.clip(cx[inside], box.left, box.left + box.width - 1)
    cy = np.clip(cy[inside], box.top, box.top + box.height - 1)
    return maps.fixation_map(np.stack([cx, cy], axis=1), size)


def _seed_for(seed: int, epoch: int, index: int) -> int:
    digest = hashlib.blake2b(f"{seed}/{epoch}/{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


class _FlipMixin:
    """Deterministic per-item flip decision (see module docstring)."""

    augment: bool
    seed: int
    epoch: int | None

    def set_epoch(self, epoch: int) -> None:
        """Make flips a function of (seed, epoch, index); call once per epoch before iterating."""
        self.epoch = int(epoch)

    def flips(self, index: int) -> bool:
        if not self.augment:
            return False
        if self.epoch is None:
            return bool(torch.rand(()) < FLIP_P)
        g = torch.Generator()
        g.manual_seed(_seed_for(self.seed, self.epoch, index))
        return bool(torch.rand((), generator=g) < FLIP_P)


def _image_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float().div_(255.0)


def _map_tensor(m: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(m))[None]


def _hflip(a: np.ndarray) -> np.ndarray:
    return a[:, ::-1]


class SaliencyDataset(_FlipMixin, Dataset):
    """Free-viewing images with eq. 1 saliency maps (cached) and fixation maps.

    Item: image (3,H,W) float32 [0,1]; saliency (1,H,W) float32; fixations (1,H,W) bool;
    valid (1,H,W) bool; name str (image file name); dataset str.
    """

    def __init__(
        self,
        items: Sequence[EyeTrackingImage],
        size: tuple[int, int] = INPUT_SIZE,
        augment: bool = False,
        cache_dir: str | Path | None = None,
        sigma: float | None = None,
        seed: int = 0,
    ) -> None:
        self.items = list(items)
        self.size = (int(size[0]), int(size[1]))
        self.augment = bool(augment)
        self.cache_dir = cache_dir
        self.sigma = sigma
        self.seed = int(seed)
        self.epoch = None

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        item = self.items[index]
        rgb = read_image(item.image_path)
        if rgb.shape[:2] != item.shape:
            got = f"{rgb.shape[1]}x{rgb.shape[0]}"
            raise ValueError(f"{item.image_path}: image is {got}, expected {item.width}x{item.height}")
        image, box = letterbox(rgb, self.size)
        sm, _ = letterbox(get_saliency_map(item, self.cache_dir, self.sigma), self.size)
        fix = letterbox_fixations(item.fixations.xy, item.shape, box, self.size)
        valid = valid_mask(box, self.size)
        if self.flips(index):
            image, sm, fix, valid = _hflip(image), _hflip(sm), _hflip(fix), _hflip(valid)
        return {
            "image": _image_tensor(image),
            "saliency": _map_tensor(sm.astype(np.float32, copy=False)),
            "fixations": _map_tensor(fix),
            "valid": _map_tensor(valid),
            "name": item.name,
            "dataset": item.dataset,
        }


class ShiftDataset(_FlipMixin, Dataset):
    """One item per (scene, distorted version): both images, SM_r, SM_d and SSM = (SM_d - SM_r)+.

    SSM is computed from the letterboxed maps, so eq. 2 holds exactly on the tensors the
    model is trained on (its own SSM is ReLU(SM_d - SM_r) of its letterboxed outputs).
    Item keys: pristine, distorted (3,H,W); sm_r, sm_d, ssm (1,H,W) float32; valid (1,H,W);
    distortion str; level int; scene_id str.
    """

    def __init__(
        self,
        scenes: Sequence[ShiftScene],
        size: tuple[int, int] = INPUT_SIZE,
        augment: bool = False,
        sigma: float | None = None,
        seed: int = 0,
    ) -> None:
        self.scenes = list(scenes)
        self.size = (int(size[0]), int(size[1]))
        self.augment = bool(augment)
        self.sigma = sigma
        self.seed = int(seed)
        self.epoch = None
        self.pairs = [(s, d) for s, scene in enumerate(self.scenes) for d in range(len(scene.distorted))]

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def scene_ids(self) -> list[str]:
        """Scene of each item, in item order: the input of `splits.kfold_by_scene`."""
        return [self.scenes[s].scene_id for s, _ in self.pairs]

    def __getitem__(self, index: int) -> dict:
        s, d = self.pairs[index]
        scene = self.scenes[s]
        rec_r, rec_d = scene.pristine, scene.distorted[d]
        pristine, box = letterbox(rec_r.load_image(), self.size)
        distorted, box_d = letterbox(rec_d.load_image(), self.size)
        if box_d != box:
            raise ValueError(f"{rec_d.image}: size differs from the pristine image {rec_r.image}")
        sm_r, _ = letterbox(rec_r.load_saliency(self.sigma), self.size)
        sm_d, _ = letterbox(rec_d.load_saliency(self.sigma), self.size)
        ssm = maps.shift_map(sm_d, sm_r)
        valid = valid_mask(box, self.size)
        if self.flips(index):
            pristine, distorted = _hflip(pristine), _hflip(distorted)
            sm_r, sm_d, ssm, valid = _hflip(sm_r), _hflip(sm_d), _hflip(ssm), _hflip(valid)
        return {
            "pristine": _image_tensor(pristine),
            "distorted": _image_tensor(distorted),
            "sm_r": _map_tensor(sm_r.astype(np.float32, copy=False)),
            "sm_d": _map_tensor(sm_d.astype(np.float32, copy=False)),
            "ssm": _map_tensor(ssm.astype(np.float32, copy=False)),
            "valid": _map_tensor(valid),
            "distortion": rec_d.distortion,
            "level": rec_d.level,
            "scene_id": scene.scene_id,
        }


class GreyscaleView(Dataset):
    """A dataset's items with the image shown in greyscale (Rec. 601 luma in all three channels),
    everything else untouched: a probe of how a model does on photos without colour."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> dict:
        item = dict(self.dataset[index])
        r, g, b = item["image"]
        item["image"] = (0.299 * r + 0.587 * g + 0.114 * b).expand(3, -1, -1).contiguous()
        return item
