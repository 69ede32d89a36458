"""Pictures inside other formats' datasets: encoded images (PNG/JPEG bytes) and video files.

``decode_image`` turns encoded bytes into an (H, W, C) uint8 array (Pillow); ``video_frames`` decodes
the frames of a video file at given timestamps (PyAV, the FFmpeg binding LeRobot itself encodes with).
Both libraries are optional: ``image_decoder()`` / ``video_decoder()`` say why one is missing, and the
converters then name the features and skip them with a note. PyAV, Pillow and pyarrow come with
``pip install 'demokit[lerobot]'`` (the README's set-up installs it).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from demokit.errors import UserError


def image_decoder() -> str | None:
    """None when encoded images can be decoded here, else the reason they cannot."""
    try:
        import PIL.Image  # noqa: F401
    except ImportError:
        return "Pillow is not installed (pip install 'demokit[lerobot]')"
    return None


def video_decoder() -> str | None:
    """None when video files can be decoded here, else the reason they cannot."""
    try:
        import av  # noqa: F401
    except ImportError:
        return "PyAV is not installed (pip install 'demokit[lerobot]')"
    return None


def decode_image(data: bytes, *, what: str) -> np.ndarray:
    """PNG/JPEG bytes as an (H, W, C) uint8 array (a grey image gets C = 1)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            arr = np.asarray(img.convert("RGB") if img.mode not in ("RGB", "L") else img)
    except (OSError, ValueError) as exc:
        raise UserError(f"{what}: the image cannot be decoded ({exc})") from None
    return arr[..., None] if arr.ndim == 2 else arr


def encode_png(array: np.ndarray) -> bytes:
    """An (H, W, C) uint8 array (C = 1 or 3) as PNG bytes (lossless)."""
    from PIL import Image

    img = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def video_frames(path: Path, timestamps: np.ndarray, *, tolerance_s: float, what: str) -> np.ndarray:
    """The frames of the video file ``path`` at ``timestamps`` (seconds), (T, H, W, 3) uint8 RGB.

    Each timestamp takes the frame whose presentation time is nearest; one farther than
    ``tolerance_s`` is a UserError naming it (the file does not hold that moment).
    """
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            times, frames = [], []
            for frame in container.decode(stream):
                times.append(float(frame.pts * stream.time_base) if frame.pts is not None else float(frame.time))
                frames.append(frame.to_ndarray(format="rgb24"))
    except (OSError, ValueError, IndexError, av.error.FFmpegError) as exc:
        raise UserError(f"{what}: {path} cannot be decoded as video ({exc})") from None
    if not frames:
        raise UserError(f"{what}: {path} holds no video frames")
    t = np.asarray(times)
    order = np.argsort(t, kind="stable")
    t = t[order]
    pos = np.clip(np.searchsorted(t, timestamps), 1, len(t) - 1) if len(t) > 1 else np.zeros(len(timestamps), int)
    if len(t) > 1:
        left_closer = np.abs(timestamps - t[pos - 1]) <= np.abs(t[pos] - timestamps)
        pos = np.where(left_closer, pos - 1, pos)
    off = np.abs(t[pos] - timestamps)
    if len(off) and off.max() > tolerance_s:
        k = int(np.argmax(off))
        raise UserError(f"{what}: {path} has no frame at {timestamps[k]:.4f} s (nearest {t[pos[k]]:.4f} s); "
                        f"the video does not match the data files")
    picked: Any = [frames[order[i]] for i in pos]
    return np.stack(picked) if picked else np.zeros((0, 0, 0, 3), np.uint8)
