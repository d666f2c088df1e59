"""A still photograph coloured as a one-shot film would be (:func:`colorize_image`)."""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .color import BT601, YCbCrSpec, gray_to_l, lab_to_rgb, luma_lut, rgb_to_lab, rgb_to_luma, ycbcr_to_rgb
from .config import Config
from .errors import InputError, OutputError
from .io.image import is_image_path, read_image, write_image
from .models.painters import Painters
from .outputs import atomic_output, check_input, default_output
from .pipeline import preload_stills, record_choice, schedule_for
from .references import ReferenceStore
from .references.choose import Chooser
from .runtime import RunReport, resolve_device, set_torch_threads

__all__ = ["colorize_image", "IMAGE_WORKING_SIDE"]

IMAGE_WORKING_SIDE = 1024


def colorize_image(input: str | os.PathLike, output: str | os.PathLike | None = None, *,
                   reference: str | os.PathLike | None = None, reference_map: str | os.PathLike | None = None,
                   config: Config | None = None, overwrite: bool = False) -> RunReport:
    """Colourise a still photograph. Its Lab L is kept; a/b come from the colorizer.

    The choice is a one-shot film's (:class:`~vidcolor.references.choose.Chooser`,
    ``single``): the still named for the photograph is used even when it
    scores low (with a warning); from a folder, the best still if one matches.
    """
    cfg = config or Config()
    t0 = time.monotonic()
    input = Path(input)
    check_input(input)
    schedule = schedule_for(reference, reference_map)
    device = resolve_device(cfg.runtime.device)
    set_torch_threads(cfg.runtime.threads)
    painters = Painters(cfg, schedule, device)
    row = schedule.rows[0] if len(schedule.rows) == 1 else schedule.lookup(0, 0.0)
    if row is None:
        raise InputError("no row starts at 0 for a still image", schedule.origin or None)
    store = ReferenceStore(device)
    preload_stills(schedule, store, None)
    dest = atomic_output(output if output is not None else default_output(input), overwrite=overwrite, input=input)
    out = dest.target
    if not is_image_path(out):
        raise OutputError("the input is a still image; give an image file name for the output (.png, .jpg, .tif)", out)
    img = read_image(input)
    peak = 65535.0 if img.dtype == np.uint16 else 255.0
    with torch.inference_mode():
        rgb = torch.from_numpy(np.ascontiguousarray(img)).to(device).permute(2, 0, 1)[None].float() / peak
        spec = YCbCrSpec(BT601, True, 8)  # a photograph's gray is its JPEG luma
        painters.set_ycbcr(spec)
        y = rgb_to_luma(rgb, spec)
        h, w = y.shape[-2:]
        s = IMAGE_WORKING_SIDE / max(h, w)
        gray = gray_to_l(y)
        small = F.interpolate(gray, scale_factor=s, mode="area") if s < 1 else gray
        chooser = Chooser(cfg, schedule, store, luma_lut(spec, device), ycbcr=spec, single=True)
        choice = chooser.choose_image(small, input.name)
        painter = painters.for_choice(choice)
        if painter is None:  # automatic colour cannot be had: the photograph stays as it is
            L, ab = rgb_to_lab(rgb)[:, :1], torch.zeros(1, 2, h, w, device=device)
            chroma = "lab"
        else:
            L = rgb_to_lab(rgb)[:, :1] if painter.chroma == "lab" else gray
            painter.begin_shot(store.get(choice.still) if choice.still is not None else None, choice)
            ab = painter.colorize(F.interpolate(L, scale_factor=s, mode="area") if s < 1 else L)
            stats = painter.end_shot()
            chroma = painter.chroma
        if ab.shape[-2:] != (h, w):
            ab = F.interpolate(ab, size=(h, w), mode="bilinear", align_corners=False)
        if chroma == "cbcr":
            result = ycbcr_to_rgb(y, ab, spec)[0].permute(1, 2, 0).cpu().numpy()
        else:
            result = lab_to_rgb(torch.cat((L, ab), dim=1))[0].permute(1, 2, 0).cpu().numpy()
    result = (result * peak + 0.5).astype(img.dtype)
    with dest as tmp:
        write_image(tmp, result)
    shot = {"index": 0, "first_frame": 0, "start_time": 0.0, "row": row.source}
    record_choice(shot, choice, painter)
    if painter is not None:
        shot.update(stats.extra)
    return RunReport(str(input), str(out), frames=1, seconds=time.monotonic() - t0, colorizer=cfg.colorizer,
                     device=str(device), shots=[shot])
