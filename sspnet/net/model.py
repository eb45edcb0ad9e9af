"""SSPNet: shared encoder + per-scale transformers, two saliency decoders, SSM = ReLU(SM_d - SM_r).

`encode` is shared by both images; `decode(..., "r"|"d")` picks a decoder. Because the shift is
a difference of two independent decodings, the pristine side (features and SM_r) is computed
once and reused for any number of distorted candidates (`PristineCache`).
"""
from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

from sspnet.device import autocast, resolve_device  # noqa: F401 (resolve_device re-exported)
from sspnet.maps import shift_map
from sspnet.net.backbones import build_backbone
from sspnet.net.configs import ModelConfig, get_config
from sspnet.net.decoder import SaliencyDecoder, gaussian_blur
from sspnet.net.prior import SaliencyPrior, centre_weighting
from sspnet.net.transformer import TokenEncoder
from sspnet.preprocess import Box, letterbox, unletterbox

ImageLike = np.ndarray | Image.Image
Features = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
View = tuple[float, bool]  # (scale of the canvas, mirrored)
SINGLE_PASS: View = (1.0, False)  # the one pass every shift uses


def test_time_views(scales: Sequence[float], mirror: bool) -> list[View]:
    """The views a saliency map is averaged over: the canvas at each scale, and each one mirrored
    too when `mirror` (`ModelConfig.saliency_scales`, `flip_saliency`)."""
    return [(float(s), f) for s in scales for f in ((False, True) if mirror else (False,))]


@dataclass
class ShiftPrediction:
    """Maps at the image's own size, float32 in [0, 1]."""

    ssm: np.ndarray
    sm_pristine: np.ndarray
    sm_distorted: np.ndarray


@dataclass
class PristineCache:
    """What the pristine image contributes to every shift prediction, computed once."""

    shape: tuple[int, int]
    box: Box
    sm: torch.Tensor  # (1, 1, H, W) SM_r at the model's input size, one pass: what shifts use
    view: torch.Tensor | None = None  # SM_r as saliency on its own (test-time views); None: `sm`
    passes: int = 1  # network passes the pristine side took (the single pass and any other views)
    # the pristine image as the network saw it (1, 3, H, W): a distorted image equal to it is no
    # distortion, so its shift is exactly zero whatever the decoders and the batch do
    pixels: torch.Tensor | None = field(default=None, repr=False)

    def crop(self, canvas_maps: np.ndarray) -> np.ndarray:
        """The part of maps at the model's input size (..., H, W) that covers the image."""
        b = self.box
        return canvas_maps[..., b.top : b.top + b.height, b.left : b.left + b.width]

    def saliency_crop(self) -> np.ndarray:
        """SM_r as saliency on its own (where people look: the codec's weights) at the model's
        input resolution, cropped to the image (float32 in [0, 1])."""
        sm = self.sm if self.view is None else self.view
        return np.ascontiguousarray(self.crop(sm[0, 0].float().cpu().numpy())).clip(0, 1)


def as_rgb_array(image: ImageLike) -> np.ndarray:
    """HxWx3 uint8 RGB from a PIL image or an array (greyscale is replicated, alpha dropped)."""
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"expected an HxWx3 RGB image, got an array of shape {arr.shape}")
    if arr.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {arr.dtype}")
    return np.ascontiguousarray(arr[..., :3])


class SSPNet(nn.Module):
    def __init__(self, config: ModelConfig, pretrained_backbone: bool = False, backbone_weights: str | None = None):
        super().__init__()
        self.config = config
        self.backbone = build_backbone(config.backbone, pretrained_backbone, backbone_weights)
        h, w = config.input_size
        self.reduce = nn.ModuleList(nn.Conv2d(c, d, 1) for c, d in zip(self.backbone.channels, config.dims))
        grids = [(-(-h // s), -(-w // s)) for s in (8, 16, 32)]
        self.tokens = nn.ModuleList(
            TokenEncoder(d, n, k, g) if n > 0 else nn.Identity()
            for d, n, k, g in zip(config.dims, config.depths, config.heads, grids)
        )
        make = lambda: SaliencyDecoder(config.dims, config.stage3, config.tail, config.out_stride)  # noqa: E731
        self.decoder_r = make()
        self.decoder_d = make() if config.dual_decoder else self.decoder_r
        image_features = config.dims[2] if config.prior_image_features else 0
        self.prior = SaliencyPrior(image_features) if config.prior else None

    # ---- tensors in, tensors out (training and batched inference) ----
    def encode(self, x: torch.Tensor) -> Features:
        """Float RGB in [0, 1], (B, 3, H, W) -> token features at strides 8, 16, 32."""
        feats = self.backbone(x)
        return tuple(t(r(f)) for f, r, t in zip(feats, self.reduce, self.tokens))  # type: ignore[return-value]

    def decode(
        self, feats: Features, which: str, size: tuple[int, int], boxes: Sequence[Box] | None = None
    ) -> torch.Tensor:
        """Saliency at `size` from one decoder; with a prior, mixed in on each image's `boxes`
        (where the image sits on the canvas; None = the whole canvas)."""
        return self._output_stage(self._decoder(which)(feats, size), feats, boxes)

    def _decoder(self, which: str) -> SaliencyDecoder:
        return {"r": self.decoder_r, "d": self.decoder_d}[which]

    def _output_stage(self, raw: torch.Tensor, feats: Features | None, boxes: Sequence[Box] | None) -> torch.Tensor:
        """Decoder maps -> output maps: blur, centre weighting, mixed-in prior (as configured)."""
        sm = gaussian_blur(raw, self.config.output_blur)
        sm = centre_weighting(sm, boxes, self.config.centre_sigma)
        if self.prior is None:
            return sm
        scene = feats[2].float().mean((2, 3)) if self._reads_scene() else None
        return self.prior(sm, boxes, scene)

    def _reads_scene(self) -> bool:
        """Whether the output stage reads the image's features (a prior gate that sees the scene)."""
        return self.prior is not None and self.prior.gate_image is not None

    def forward(
        self, pristine: torch.Tensor, distorted: torch.Tensor, boxes: Sequence[Box] | None = None
    ) -> dict[str, torch.Tensor]:
        """Both images in one pass through the shared encoder (one batch of 2B)."""
        b, size = pristine.shape[0], pristine.shape[-2:]
        f_r, f_d = zip(*(f.split(b) for f in self.encode(torch.cat([pristine, distorted]))))
        sm_r = self.decode(f_r, "r", size, boxes)
        sm_d = self.decode(f_d, "d", size, boxes)
        return {"sm_r": sm_r, "sm_d": sm_d, "ssm": self.shift(sm_d, sm_r)}

    def shift(self, sm_d: torch.Tensor, sm_r: torch.Tensor) -> torch.Tensor:
        """Eq. 2, SSM = ReLU(SM_d - SM_r) (`sspnet.maps.shift_map`); on max-1 maps when the
        config's `shift_from_normalized` asks for it. Every SSM of this model goes through here.

        With `shift_blur` / `shift_spread` the positive part D becomes a map people could have
        made: (G * D + s * sum(D) * Q) / (1 + s), Q = G * SM_d / sum(G * SM_d), G a Gaussian of
        sigma `shift_blur`. Attention that moves lands somewhere near where people look in the
        distorted image, at the scale of a few observers' fixations, not on isolated pixels. The
        total, sum(D), is kept: an identical pair is still exactly zero, a stronger distortion
        still gives a larger shift, and image means are unchanged.
        """
        d = shift_map(sm_d, sm_r, normalize=self.config.shift_from_normalized)
        blur, spread = self.config.shift_blur, self.config.shift_spread
        if blur <= 0 and spread <= 0:
            return d
        d = d.float()
        mass = d.sum((-2, -1), keepdim=True)
        smooth = gaussian_blur(d, blur)
        smooth = smooth * (mass / smooth.sum((-2, -1), keepdim=True).clamp_min(1e-12))
        q = gaussian_blur(sm_d.float(), blur)
        q = q / q.sum((-2, -1), keepdim=True).clamp_min(1e-12)
        return (smooth + spread * mass * q) / (1 + spread)

    def saliency(
        self, x: torch.Tensor, which: str = "r", boxes: Sequence[Box] | None = None, tta: bool = False
    ) -> torch.Tensor:
        """Maps of one decoder; `tta` averages the decoder's maps over the config's test-time views
        (mirror image, other scales; `views`) before the output stage: one pass per view, used
        for saliency on its own, never inside a shift, where both maps of a pair must come from
        the same single pass."""
        views = self.views()
        if not tta or views == [SINGLE_PASS]:
            return self.decode(self.encode(x), which, x.shape[-2:], boxes)
        if SINGLE_PASS in views or self._reads_scene():
            own, _, averaged = self.single_and_averaged(x, which)
        else:  # no view is the single pass and nothing reads its features: skip that pass
            own, averaged = None, self._averaged(x, which)
        return self._output_stage(averaged, own, boxes)

    def views(self) -> list[View]:
        """The test-time views saliency on its own is averaged over (`test_time_views`)."""
        return test_time_views(self.config.saliency_scales, self.config.flip_saliency)

    def view_raw(self, x: torch.Tensor, which: str, scale: float, mirrored: bool) -> torch.Tensor:
        """The decoder's map of one view of `x`, brought back to x's size and orientation."""
        size = tuple(x.shape[-2:])
        if scale != 1.0:
            h, w = (max(32, round(n * scale / 32) * 32) for n in size)
            x = F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
        if mirrored:
            x = x.flip(-1)
        raw = self._decoder(which)(self.encode(x), tuple(x.shape[-2:]))
        if mirrored:
            raw = raw.flip(-1)
        return raw if scale == 1.0 else F.interpolate(raw, size=size, mode="bilinear", align_corners=False)

    def single_and_averaged(self, x: torch.Tensor, which: str) -> tuple[Features, torch.Tensor, torch.Tensor]:
        """The images' features and decoder maps from one pass, and the decoder maps averaged over
        the test-time views. The single pass is a pass of its own, so its maps are bit for bit
        those of `decode` (a batch of another size may round differently, and an identical pair
        must give exactly zero shift); it is reused as the view it is when (1, unmirrored) is one."""
        own = self.encode(x)
        raw = self._decoder(which)(own, x.shape[-2:])
        return own, raw, self._averaged(x, which, raw)

    def _averaged(self, x: torch.Tensor, which: str, raw: torch.Tensor | None = None) -> torch.Tensor:
        """The decoder maps averaged over the test-time views; `raw`, the single pass's maps when
        already computed, stands in for the view it is."""
        maps = [raw if v == SINGLE_PASS and raw is not None else self.view_raw(x, which, *v) for v in self.views()]
        return maps[0] if len(maps) == 1 else torch.stack(maps).mean(0)

    def tie_decoders(self) -> None:
        """Copy decoder_r into decoder_d: the 'intuitive approach' in dual-decoder form, used
        after saliency-only training so that an identical pair predicts exactly zero shift."""
        if self.decoder_d is not self.decoder_r:
            self.decoder_d.load_state_dict(self.decoder_r.state_dict())

    # ---- images in, maps out (the public API) ----
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def _autocast(self) -> contextlib.AbstractContextManager:
        return autocast(self.device)

    def to_canvas(self, image: ImageLike) -> np.ndarray:
        """The image letterboxed onto the model's input canvas (uint8 RGB): all the model sees of
        it, so a caller with many large images can keep these instead of the images."""
        return letterbox(as_rgb_array(image), self.config.input_size)[0]

    def _canvas_batch(self, canvases: Sequence[np.ndarray]) -> torch.Tensor:
        x = torch.from_numpy(np.stack(canvases)).to(self.device).permute(0, 3, 1, 2).float().div_(255)
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _to_input(self, images: Sequence[ImageLike]) -> tuple[torch.Tensor, list[Box], list[tuple[int, int]]]:
        arrays = [as_rgb_array(im) for im in images]
        boxes, canvases = [], []
        for a in arrays:
            canvas, box = letterbox(a, self.config.input_size)
            canvases.append(canvas)
            boxes.append(box)
        return self._canvas_batch(canvases), boxes, [a.shape[:2] for a in arrays]

    def _to_maps(self, sm: torch.Tensor, boxes: list[Box], shapes: list[tuple[int, int]]) -> list[np.ndarray]:
        maps = sm[:, 0].float().cpu().numpy()
        return [unletterbox(m, b, s, self.config.input_size).clip(0, 1) for m, b, s in zip(maps, boxes, shapes)]

    @torch.inference_mode()
    def predict_saliency(self, image: ImageLike | list[ImageLike], batch_size: int = 8):
        """Saliency of the pristine decoder, HxW float32 in [0, 1] at each image's own size
        (averaged over the config's test-time views; the maps of `predict_shift` never are)."""
        single = not isinstance(image, list)
        images = [image] if single else image
        out: list[np.ndarray] = []
        for i in range(0, len(images), batch_size):
            x, boxes, shapes = self._to_input(images[i : i + batch_size])
            with self._autocast():
                sm = self.saliency(x, "r", boxes, tta=True)
            out += self._to_maps(sm, boxes, shapes)
        return out[0] if single else out

    @torch.inference_mode()
    def prepare(self, pristine: ImageLike) -> PristineCache:
        """Encode and decode the pristine image once. The shift is ReLU(SM_d - SM_r) of two
        independent decodings, so SM_r is all a candidate needs from the pristine side."""
        x, boxes, shapes = self._to_input([pristine])
        with self._autocast():
            others = [v for v in self.views() if v != SINGLE_PASS]
            if others:  # the codec's weights: saliency on its own
                own, raw, averaged = self.single_and_averaged(x, "r")
                sm, view = (self._output_stage(r, own, boxes) for r in (raw, averaged))
                return PristineCache(shapes[0], boxes[0], sm.float(), view.float(), 1 + len(others), x)
            sm = self.saliency(x, "r", boxes)
        return PristineCache(shapes[0], boxes[0], sm.float(), pixels=x)

    def cached_saliency(self, cache: PristineCache) -> np.ndarray:
        """SM_r of a prepared pristine image at its own size (no new model evaluation)."""
        return self._to_maps(cache.sm, [cache.box], [cache.shape])[0]

    @torch.inference_mode()
    def shift_on_canvases(self, cache: PristineCache, canvases: Sequence[np.ndarray]) -> list[np.ndarray]:
        """SSM of distorted images given as canvases (:meth:`to_canvas`) at the model's input
        resolution, cropped to the image: float32 maps in [0, 1] (NaN passes through, for the
        caller to refuse). Resized to the image's size they equal `predict_shift_cached`'s SSM;
        the model has no finer detail to give, and keeping them small keeps memory bounded."""
        if any(c.shape[:2] != tuple(self.config.input_size) for c in canvases):
            raise ValueError(f"canvases must be {self.config.input_size} (use to_canvas)")
        with self._autocast():
            sm_d = self.saliency(self._canvas_batch(canvases), "d", [cache.box] * len(canvases)).float()
        ssm = cache.crop(self.shift(sm_d, cache.sm)[:, 0].cpu().numpy())
        return [np.ascontiguousarray(m).clip(0, 1) for m in ssm]

    @torch.inference_mode()
    def predict_shift_cached(
        self, cache: PristineCache, distorted: list[ImageLike], batch_size: int = 8
    ) -> list[ShiftPrediction]:
        sm_r_map = self.cached_saliency(cache)
        out: list[ShiftPrediction] = []
        for i in range(0, len(distorted), batch_size):
            x, boxes, shapes = self._to_input(distorted[i : i + batch_size])
            if any(s != cache.shape for s in shapes):
                raise ValueError(f"distorted images must have the pristine size {cache.shape}, got {shapes}")
            with self._autocast():
                sm_d = self.saliency(x, "d", boxes).float()
            ssm = self.shift(sm_d, cache.sm)
            if cache.pixels is not None:  # the pristine image itself: no shift, exactly
                for j in range(len(x)):
                    if torch.equal(x[j], cache.pixels[0]):
                        ssm[j], sm_d[j] = 0.0, cache.sm[0]
            for s, d in zip(self._to_maps(ssm, boxes, shapes), self._to_maps(sm_d, boxes, shapes)):
                out.append(ShiftPrediction(ssm=s, sm_pristine=sm_r_map.copy(), sm_distorted=d))
        return out

    def predict_shift(self, pristine: ImageLike, distorted: ImageLike | list[ImageLike], batch_size: int = 8):
        """SSM (and both saliency maps) at the image's size; a list of distorted images is batched
        with the pristine image encoded once."""
        single = not isinstance(distorted, list)
        preds = self.predict_shift_cached(self.prepare(pristine), [distorted] if single else distorted, batch_size)
        return preds[0] if single else preds


def build_model(
    config: str | ModelConfig | dict = "default",
    pretrained_backbone: bool = False,
    backbone_weights: str | None = None,
) -> SSPNet:
    """A fresh (untrained) SSPNet; `pretrained_backbone` loads ImageNet weights found offline."""
    return SSPNet(get_config(config), pretrained_backbone, backbone_weights)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
