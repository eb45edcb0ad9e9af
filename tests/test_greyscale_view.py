"""The greyscale probe (sspnet.data.GreyscaleView): what prior_study --grey and sspnet eval --greyscale show."""
from __future__ import annotations

import torch

from sspnet.data import GreyscaleView


class _Items(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> dict:
        image = torch.zeros(3, 4, 5)
        image[index] = 1.0  # pure red, then pure green
        return {"image": image, "saliency": torch.ones(1, 4, 5), "name": f"n{index}"}


def test_greyscale_shows_rec601_luma_in_all_channels_and_keeps_the_rest() -> None:
    grey = GreyscaleView(_Items())
    assert len(grey) == 2
    red, green = grey[0], grey[1]
    for item, luma in ((red, 0.299), (green, 0.587)):
        assert item["image"].shape == (3, 4, 5)
        assert torch.allclose(item["image"], torch.full((3, 4, 5), luma))
        assert torch.equal(item["saliency"], torch.ones(1, 4, 5))
    assert red["name"] == "n0" and _Items()[0]["image"][1].abs().max() == 0  # the source is untouched
