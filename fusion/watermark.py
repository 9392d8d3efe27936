"""Invisible watermark: a short hash of the content id, hidden in the luma of every frame.

Why our own scheme and not `invisible-watermark`'s DWT-DCT: that one is aligned to 8-pixel blocks of
the frame as it was, so a 5 % crop or a resize to 720p loses it, and the package pulls in PyTorch
(~800 MB) for models we do not use. Ours is built for what happens to a published talking-head
video: re-encoding, downscaling, cropping.

Embedding: one square tile of 16 × 16 cells holds the 64-bit code word, each bit in 4 cells
(fixed pseudo-random places, each with its own ±1 polarity). The tile repeats across the frame,
10 tiles per frame width (cells of 12 px at 1080p), as a smooth luma offset of ± strength grey
levels (2 by default, PSNR ~44 dB). The same pattern is in every frame, so the encoder keeps it
rather than treating it as noise. Code word: 16 fixed sync bits, 32 bits of the content id and a
CRC-16 of them, so a wrong read is refused.

Decoding is blind (no original needed) and survives crops of any size and rescaling:
1. average the luma of sampled frames (moving content averages out, the pattern does not), keep
   the cell-scale detail, and weight each pixel by how quiet the content is there;
2. find the tile period along x and y from the autocorrelation peak (the pattern repeats, the
   content does not), which gives the scale;
3. fold the image into one tile (sum modulo the period): every tile of the frame adds up;
4. find the tile's cyclic offset (what a crop shifted) by correlating with the sync bits, then
   read the 64 bits and check the sync bits and the CRC.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

TILE_CELLS = 16
TILES_ACROSS = 10
CELLS_PER_BIT = 4
CODE_BITS = TILE_CELLS * TILE_CELLS // CELLS_PER_BIT  # 64
SYNC_BITS, PAYLOAD_BITS, CRC_BITS = 16, 32, 16
SEED = 0x0D4F_2026  # fixed forever for this watermark version: decoders depend on it
VERSION = "dhf-wm-2"
SAMPLES_PER_CELL = 4  # resolution of the folded tile


def _layout() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which code bit each tile cell carries, its polarity, and the fixed sync bits (same for every video)."""
    rng = np.random.default_rng(SEED)
    bits = rng.permutation(np.arange(TILE_CELLS * TILE_CELLS) % CODE_BITS).reshape(TILE_CELLS, TILE_CELLS)
    polarity = rng.choice(np.array([-1.0, 1.0]), size=(TILE_CELLS, TILE_CELLS))
    sync = rng.choice(np.array([-1.0, 1.0]), size=SYNC_BITS)
    return bits, polarity, sync


def crc16(data: int, bits: int = PAYLOAD_BITS) -> int:
    """CRC-16/CCITT over the payload bits (MSB first)."""
    crc = 0xFFFF
    for i in range(bits - 1, -1, -1):
        top = (crc >> 15) & 1
        crc = (crc << 1) & 0xFFFF
        if top ^ ((data >> i) & 1):
            crc ^= 0x1021
    return crc


def payload_of(content_id: str) -> int:
    """The 32-bit payload for a content id (its first 8 hex digits; content ids are hashes)."""
    return int(content_id[:8], 16)


def code_word(payload: int) -> np.ndarray:
    """±1 per code bit: sync bits, then payload and CRC (MSB first)."""
    _, _, sync = _layout()
    word = (payload << CRC_BITS) | crc16(payload)
    data = [1.0 if (word >> (PAYLOAD_BITS + CRC_BITS - 1 - i)) & 1 else -1.0 for i in range(PAYLOAD_BITS + CRC_BITS)]
    return np.concatenate([sync, np.array(data)])


def tile_cells(payload: int) -> np.ndarray:
    bits, polarity, _ = _layout()
    return (code_word(payload)[bits] * polarity).astype(np.float32)


def pattern(width: int, height: int, payload: int, strength: float) -> np.ndarray:
    """The signed luma offset image (float32, height × width): the tile repeated, smoothly interpolated."""
    cell = width / (TILES_ACROSS * TILE_CELLS)
    # Cell coordinates modulo the tile (remap's BORDER_WRAP only wraps one period; it supplies the
    # neighbours across the tile edge for the cubic interpolation).
    xs = np.mod((np.arange(width, dtype=np.float64) + 0.5) / cell - 0.5, TILE_CELLS).astype(np.float32)
    ys = np.mod((np.arange(height, dtype=np.float64) + 0.5) / cell - 0.5, TILE_CELLS).astype(np.float32)
    xs, ys = xs[None, :].repeat(height, 0), ys[:, None].repeat(width, 1)
    smooth = cv2.remap(tile_cells(payload), xs, ys, cv2.INTER_CUBIC, borderMode=cv2.BORDER_WRAP)
    return np.clip(smooth, -1.0, 1.0) * np.float32(strength)


class WatermarkEmbedder:
    """Adds the pattern to BGR frames: the same offset on B, G and R changes luma and leaves chroma."""

    def __init__(self, width: int, height: int, payload: int, strength: float) -> None:
        offset = np.rint(pattern(width, height, payload, strength))
        self.positive = np.repeat(np.clip(offset, 0, 255)[..., None], 3, axis=2).astype(np.uint8)
        self.negative = np.repeat(np.clip(-offset, 0, 255)[..., None], 3, axis=2).astype(np.uint8)

    def apply(self, frame: np.ndarray, out: np.ndarray, rect: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """`out` = `frame` + pattern (saturating), over `rect` only when given (the rest of `out` is kept)."""
        x0, y0, x1, y1 = rect if rect is not None else (0, 0, frame.shape[1], frame.shape[0])
        region = (slice(y0, y1), slice(x0, x1))
        out[region] = cv2.subtract(cv2.add(frame[region], self.positive[region]), self.negative[region])
        return out


@dataclass(frozen=True)
class WatermarkReading:
    found: bool
    payload: int | None  # the 32-bit payload when the sync bits and the CRC matched
    snr: float  # sync-bit signal / noise; a clear read is > ~4
    sync_agreement: int  # of 16 sync bits read correctly
    period_px: tuple[float, float]  # tile period found along x and y, in analysed pixels
    frames: int

    def matches(self, content_id: str) -> bool:
        return self.found and self.payload == payload_of(content_id)


class WatermarkDecoder:
    """Accumulates sampled frames (any size), then reads the code word."""

    def __init__(self, work_width: int = 640, max_crop: float = 0.12) -> None:
        self.work_width = work_width
        self.max_crop = max_crop
        self.sum: np.ndarray | None = None
        self.frames = 0

    def add(self, frame_bgr: np.ndarray) -> None:
        height, width = frame_bgr.shape[:2]
        size = (self.work_width, max(8, round(height * self.work_width / width)))
        luma = cv2.cvtColor(cv2.resize(frame_bgr, size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
        if self.sum is None:
            self.sum = np.zeros(luma.shape, np.float64)
        self.sum += luma
        self.frames += 1

    def add_all(self, frames: Iterable[np.ndarray]) -> WatermarkDecoder:
        for frame in frames:
            self.add(frame)
        return self

    def read(self) -> WatermarkReading:
        if self.sum is None:
            return WatermarkReading(False, None, 0.0, 0, (0.0, 0.0), 0)
        weighted = _weighted_detail((self.sum / self.frames).astype(np.float32), self.work_width)
        nominal = self.work_width / TILES_ACROSS  # the period when nothing was cropped
        period_x = _refine_period(weighted, _period(weighted, nominal, nominal / (1 - self.max_crop), axis=1), axis=1)
        period_y = _refine_period(weighted, _period(weighted, period_x * 0.88, period_x * 1.12, axis=0), axis=0)
        folded = _fold(weighted, period_x, period_y)
        strengths = _read_bits(folded)
        _, _, sync = _layout()
        sync_read = strengths[:SYNC_BITS] * sync
        agreement = int((sync_read > 0).sum())
        snr = float(sync_read.mean() / (sync_read.std() + 1e-9))
        word = 0
        for value in strengths[SYNC_BITS:]:
            word = (word << 1) | int(value > 0)
        payload, check = word >> CRC_BITS, word & 0xFFFF
        found = agreement >= SYNC_BITS - 1 and crc16(payload) == check
        return WatermarkReading(
            found, payload if found else None, round(snr, 2), agreement, (round(period_x, 2), round(period_y, 2)),
            self.frames,
        )  # fmt: skip


def _weighted_detail(mean: np.ndarray, work_width: int) -> np.ndarray:
    """Cell-scale detail of the mean frame, divided by the local content energy (quiet areas count more)."""
    cell = work_width / (TILES_ACROSS * TILE_CELLS)
    detail = mean - cv2.GaussianBlur(mean, (0, 0), cell)
    energy = cv2.GaussianBlur(detail * detail, (0, 0), 3 * cell)
    return detail / (energy + 0.25)


def _period(image: np.ndarray, low: float, high: float, axis: int) -> float:
    """The lag in [low, high] (pixels, along `axis`) where the image best matches itself shifted."""
    best_lag, best = low, -np.inf
    length = image.shape[axis]
    for lag in np.arange(low, high, 0.1):
        whole, fraction = int(lag), lag - int(lag)
        if whole + 2 >= length:
            break
        a = np.take(image, np.arange(0, length - whole - 1), axis=axis)
        b0 = np.take(image, np.arange(whole, length - 1), axis=axis)
        b1 = np.take(image, np.arange(whole + 1, length), axis=axis)
        score = float((a * ((1 - fraction) * b0 + fraction * b1)).mean())
        if score > best:
            best_lag, best = float(lag), score
    return best_lag


def _refine_period(image: np.ndarray, estimate: float, axis: int) -> float:
    """Sharpen the period: the one whose fold along `axis` (each line folded on its own) adds up most
    coherently. The autocorrelation favours whole-pixel lags (interpolation blurs the others)."""
    lines = image if axis == 1 else image.T
    size = TILE_CELLS * SAMPLES_PER_CELL
    rows = np.arange(lines.shape[0])[:, None] * size
    best_period, best = estimate, -np.inf
    for period in np.arange(estimate - 1.0, estimate + 1.0, 0.05):
        u = (np.floor((np.arange(lines.shape[1]) % period) / period * size).astype(np.int64)) % size
        folded = np.bincount((rows + u[None, :]).ravel(), weights=lines.ravel(), minlength=lines.shape[0] * size)
        energy = float((folded * folded).sum())
        if energy > best:
            best_period, best = float(period), energy
    return best_period


def _fold(image: np.ndarray, period_x: float, period_y: float) -> np.ndarray:
    """Sum the image modulo the tile period into one tile sampled at SAMPLES_PER_CELL per cell."""
    size = TILE_CELLS * SAMPLES_PER_CELL
    height, width = image.shape
    u = (np.floor((np.arange(width) % period_x) / period_x * size).astype(np.int64)) % size
    v = (np.floor((np.arange(height) % period_y) / period_y * size).astype(np.int64)) % size
    index = (v[:, None] * size + u[None, :]).ravel()
    return np.bincount(index, weights=image.ravel(), minlength=size * size).reshape(size, size)


def _read_bits(folded: np.ndarray) -> np.ndarray:
    """Find the tile's cyclic offset with the sync cells, then the 64 bit correlations at that offset."""
    bits, polarity, sync = _layout()
    s = SAMPLES_PER_CELL
    # Per-cell sums at every cyclic offset: box-sum s × s samples (cyclic), then pick every s-th sample.
    box = np.zeros_like(folded)
    for dy in range(s):
        for dx in range(s):
            box += np.roll(folded, (-dy, -dx), axis=(0, 1))
    sync_template = np.zeros((TILE_CELLS, TILE_CELLS))
    for bit in range(SYNC_BITS):
        sync_template[bits == bit] = sync[bit]
    sync_template *= polarity
    best, best_offset = -np.inf, (0, 0)
    for oy in range(s):
        rows = np.roll(box, -oy, axis=0)[::s]
        for ox in range(s):
            cells = rows[:, ox::s]
            # the cyclic cell shift along x and y is found at once by FFT correlation
            spectrum = np.fft.ifft2(np.fft.fft2(cells) * np.conj(np.fft.fft2(sync_template))).real
            shift = np.unravel_index(int(np.argmax(spectrum)), spectrum.shape)
            if spectrum[shift] > best:
                best, best_offset = float(spectrum[shift]), (oy, ox, shift)
    oy, ox, (cy, cx) = best_offset
    cells = np.roll(np.roll(box, -oy, axis=0)[::s][:, ox::s], (-cy, -cx), axis=(0, 1))
    return np.bincount(bits.ravel(), weights=(cells * polarity).ravel(), minlength=CODE_BITS)
